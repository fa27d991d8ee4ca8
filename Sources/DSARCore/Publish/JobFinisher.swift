import Foundation
import Logging

/// Everything a finisher needs about one job once its connectors have run.
public struct FinishingJob: Sendable {
    public var record: JobRecord
    public var request: DSARRequest
    /// Every identifier of the subject: the request's plus those derived by identity expansion.
    public var identifiers: [Identifier]
    public var outcomes: [ConnectorOutcome]
    /// For delete jobs that were erased: what happened per source file, and connectors that failed to erase.
    public var erasure: ErasureOutcome?

    public init(record: JobRecord, request: DSARRequest, identifiers: [Identifier], outcomes: [ConnectorOutcome]) {
        self.record = record
        self.request = request
        self.identifiers = identifiers
        self.outcomes = outcomes
    }
}

/// What a finisher published: the outbox entry and the SHA-256 of the `manifest.json` it holds,
/// computed from the bytes written (nothing is read back), or from the existing file when the entry
/// was already there (a crash after publishing).
public struct Published: Sendable, Equatable {
    /// The outbox entry (`outbox/<job-id>`).
    public var path: String
    /// Hex SHA-256 of its `manifest.json` (nil: the entry has no manifest, e.g. a summary).
    public var manifestSHA256: String?

    public init(path: String, manifestSHA256: String?) {
        self.path = path
        self.manifestSHA256 = manifestSHA256
    }
}

/// Turns a job's connector results into its published outbox entry (bundle, receipt, or summary).
public protocol JobFinisher: Sendable {
    /// Builds and publishes `outbox/<job-id>/`; returns what it published. Must be idempotent: when
    /// the entry already exists (a crash after publishing), return it unchanged.
    func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published
}

/// The finisher used when no bundler/eraser applies: a `summary.json` with no personal data.
public struct SummaryFinisher: JobFinisher {
    public init() {}

    public func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published {
        try OutboxPublisher.publish(jobID: job.record.jobID, layout: layout) { dir in
            let connectors: [JSONValue] = job.outcomes.map { o in
                .obj([
                    "name": .string(o.name), "status": .string(o.status.rawValue), "records": .int(o.findings.records),
                    "error": .str(o.error),
                ])
            }
            let doc: JSONValue = .obj([
                "format": .int(1), "job_id": .string(job.record.jobID), "request_id": .str(job.record.requestID),
                "action": .string(job.record.action.rawValue), "subject": .string(job.record.subject),
                "created_at": .string(Timestamp.format(Date())), "connectors": .array(connectors),
            ])
            try FileSystem.writeAtomically(dir + "/summary.json", JSONWriter(indent: 2).encode(doc) + [0x0A], mode: 0o640)
            return nil
        }
    }
}
