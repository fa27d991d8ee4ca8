import Foundation

/// What one `dsar run` or `dsar watch` process has done so far (the source of `--metrics-file`).
public struct RunStats: Sendable {
    /// Totals of one connector over every batch and round of this process.
    public struct ConnectorTotals: Sendable {
        /// Records found for the jobs that finished (after identity expansion).
        public var records = 0
        /// Bytes read, every round (a job whose identity grew is scanned again).
        public var bytesScanned: Int64 = 0
        public var seconds = 0.0
        /// Scans run (one per batch and expansion round) and how many of them failed after retries.
        public var scans = 0
        public var failures = 0
    }

    public var startedAt = Date()
    /// Jobs that ended, by final status.
    public var jobsFinished: [JobStatus: Int] = [:]
    /// Requests rejected at intake.
    public var rejected = 0
    /// Batches run (one per `runPending` with work).
    public var batches = 0
    /// Wall seconds of the last batch (scan, erasure, sealing).
    public var lastBatchSeconds = 0.0
    /// Per connector, by name.
    public var connectors: [String: ConnectorTotals] = [:]
    /// When a run (or watch pass) last ended without a failed or partial job.
    public var lastSuccess: Date?

    public init() {}

    /// Jobs that ended FAILED or PARTIAL.
    public var unsuccessfulJobs: Int { (jobsFinished[.failed] ?? 0) + (jobsFinished[.partial] ?? 0) }
}
