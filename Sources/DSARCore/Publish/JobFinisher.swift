import Foundation
import Logging

/// Everything a finisher needs about one job once its connectors have run.
package struct FinishingJob: Sendable {
    package var record: JobRecord
    package var request: DSARRequest
    /// Every identifier of the subject: the request's plus those derived by identity expansion.
    package var identifiers: [Identifier]
    package var outcomes: [ConnectorOutcome]
    /// For delete jobs that were erased: what happened per source file, and connectors that failed to erase.
    package var erasure: ErasureOutcome?

    package init(record: JobRecord, request: DSARRequest, identifiers: [Identifier], outcomes: [ConnectorOutcome]) {
        self.record = record
        self.request = request
        self.identifiers = identifiers
        self.outcomes = outcomes
    }
}

/// What a finisher published: the outbox entry and the SHA-256 of the `manifest.json` it holds,
/// computed from the bytes written (nothing is read back), or from the existing file when the entry
/// was already there (a crash after publishing).
package struct Published: Sendable, Equatable {
    /// The outbox entry (`outbox/<job-id>`).
    package var path: String
    /// Hex SHA-256 of its `manifest.json` (nil: the entry has no manifest, e.g. a summary).
    package var manifestSHA256: String?
    /// The staging directory still to be renamed to ``path`` (nil: published). Set only when the
    /// sealer asked for it (``OutboxPublisher/renameLater``) and renames the group itself.
    package var staged: String?

    package init(path: String, manifestSHA256: String?, staged: String? = nil) {
        self.path = path
        self.manifestSHA256 = manifestSHA256
        self.staged = staged
    }
}

/// Turns a job's connector results into its published outbox entry (bundle, receipt, or summary).
package protocol JobFinisher: Sendable {
    /// Builds and publishes `outbox/<job-id>/`; returns what it published. Must be idempotent: when
    /// the entry already exists (a crash after publishing), return it unchanged.
    func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published
}

/// The finisher used when no bundler/eraser applies: a `summary.json` with no personal data.
package struct SummaryFinisher: JobFinisher {
    package init() {}

    package func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published {
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
            try FileSystem.writeAtomically(
                dir + "/summary.json", JSONWriter(indent: 2).encode(doc) + [0x0A], mode: 0o640)
            return nil
        }
    }
}
