import Foundation

extension Processor {
    /// How a processor runs, fixed when it is made (nothing changes it afterwards).
    package struct Configuration: Sendable {
        /// Seconds a drop must stay unchanged before it is taken (nil: the spool config's).
        package var settleSeconds: Double?
        /// Seconds an incomplete drop is waited for before it is rejected (nil: the spool config's).
        package var rejectAfterSeconds: Double?
        /// Treat every job as a dry run.
        package var forceDryRun = false
        /// Shows scan progress (nil: none).
        package var progress: ScanProgress?
        /// Most jobs scanned together in one pass over the sources (nil: the spool config's `max_batch_jobs`).
        package var maxBatchJobs: Int?
        /// How many jobs are sealed at once: CPU work (ZIP, encryption, signing) and fsyncs, so twice
        /// the cores keeps them busy while other seals wait for the disk.
        package var sealConcurrency = max(2, min(8, 2 * ProcessInfo.processInfo.activeProcessorCount))
        /// Maximum scan rounds: the first, plus re-scans for jobs whose identity grew.
        package var maxExpansionRounds = 4
        /// When an earlier process last ended without a failed or partial job (from `--metrics-file`).
        package var previousLastSuccess: Date?

        package init() {}
    }
}
