import Foundation

/// What one `dsar run` or `dsar watch` process has done so far (the source of `--metrics-file`).
package struct RunStats: Sendable {
    /// Totals of one connector over every batch and round of this process.
    package struct ConnectorTotals: Sendable {
        /// Records found for the jobs that finished (after identity expansion).
        package var records = 0
        /// Bytes read, every round (a job whose identity grew is scanned again).
        package var bytesScanned: Int64 = 0
        package var seconds = 0.0
        /// Scans run (one per batch and expansion round) and how many of them failed after retries.
        package var scans = 0
        package var failures = 0
    }

    package var startedAt = Date()
    /// Jobs that ended, by final status.
    package var jobsFinished: [JobStatus: Int] = [:]
    /// Requests rejected at intake.
    package var rejected = 0
    /// Batches run (one per `runPending` with work).
    package var batches = 0
    /// Wall seconds of the last batch (scan, erasure, sealing).
    package var lastBatchSeconds = 0.0
    /// Per connector, by name.
    package var connectors: [String: ConnectorTotals] = [:]
    /// When a run (or watch pass) last ended without a failed or partial job.
    package var lastSuccess: Date?

    package init() {}

    /// Jobs that ended FAILED or PARTIAL.
    package var unsuccessfulJobs: Int { (jobsFinished[.failed] ?? 0) + (jobsFinished[.partial] ?? 0) }
}
