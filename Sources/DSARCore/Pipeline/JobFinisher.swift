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

/// Turns a job's connector results into its published outbox entry (bundle, receipt, or summary).
public protocol JobFinisher: Sendable {
    /// Builds and publishes `outbox/<job-id>/`; returns its path. Must be idempotent: when the
    /// entry already exists (a crash after publishing), return it unchanged.
    func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> String
}

/// Publishes a directory into `outbox/` atomically: built as `.<job-id>.partial`, fsynced, renamed.
public enum OutboxPublisher {
    /// Builds the entry with `build` (given the staging dir), then renames it into place.
    /// Returns the final path. An entry that already exists is left as it is.
    public static func publish(
        jobID: String, layout: SpoolLayout, build: (String) throws -> Void
    ) throws -> String {
        let final = layout.outboxEntry(jobID)
        if FileSystem.exists(final) { return final }
        let staging = layout.outbox + "/.\(jobID).partial"
        try FileSystem.removeTree(staging)
        try FileSystem.makeDirectory(staging, mode: 0o2750)
        do {
            try build(staging)
            for name in try FileSystem.list(staging) {
                let path = staging + "/" + name
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
                // Delayed allocation can report a full disk only here: never publish such a file.
                let synced = fsync(fd) == 0
                let err = errno
                close(fd)
                if !synced { throw DSARError.syscall("cannot fsync", path: path, errno: err) }
            }
            try FileSystem.syncDirectory(staging)
            CrashPoint.hit("publish.staged")
            try FileSystem.rename(staging, to: final)
            try FileSystem.syncDirectory(layout.outbox)
            CrashPoint.hit("publish.renamed")
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
        return final
    }
}

/// The finisher used when no bundler/eraser applies: a `summary.json` with no personal data.
public struct SummaryFinisher: JobFinisher {
    public init() {}

    public func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> String {
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
        }
    }
}
