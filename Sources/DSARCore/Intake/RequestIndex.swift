import Foundation
import Logging

/// Which job each `request_id` was received as: the duplicate rule's memory. Loaded from `jobs/`
/// on first use (after recovery, so recreated records count), kept up to date with each claim.
struct RequestIndex {
    private var jobs: [String: String]?

    init() {}

    /// Records that `requestID` was received as `jobID`.
    mutating func record(_ requestID: String, jobID: String, store: JobStore, logger: Logger) throws {
        var all = try load(store, logger)
        all[requestID] = jobID
        jobs = all
    }

    private mutating func load(_ store: JobStore, _ logger: Logger) throws -> [String: String] {
        if let jobs { return jobs }
        var all: [String: String] = [:]
        for r in try store.all(onError: { logger.error("\($0.message)") }) {
            if let rid = r.requestID { all[rid] = r.jobID }
        }
        jobs = all
        return all
    }

    /// The duplicate rule: a `request_id` already received makes a new request a duplicate, unless
    /// its first job was a dry run that has ended (one still pending or running does count).
    /// Returns the first job and its status now.
    mutating func duplicate(
        of requestID: String?, store: JobStore, logger: Logger
    ) throws -> (jobID: String, status: JobStatus)? {
        guard let rid = requestID, let first = try load(store, logger)[rid] else { return nil }
        let rec = try? store.load(first)
        if let rec, rec.dryRun && rec.status.isTerminal { return nil }
        return (first, rec?.status ?? .pending)
    }
}
