import Foundation

/// Where a job is in its life: `PENDING → RUNNING → COMPLETED | PARTIAL | FAILED`.
package enum JobStatus: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    case completed = "COMPLETED"
    case partial = "PARTIAL"
    case failed = "FAILED"

    /// Whether the job has ended.
    package var isTerminal: Bool { self == .completed || self == .partial || self == .failed }
}

/// The record of one job, `jobs/<job-id>.json`. It holds no personal data: the subject appears
/// only as keyed pseudonyms.
package struct JobRecord: Sendable, Codable, Equatable {
    /// An extension of the deadline, with its legal reason.
    package struct Extension: Sendable, Codable, Equatable {
        package var days: Int
        package var reason: String
        package var at: String
        package var deadline: String
    }

    /// One identifier as type + pseudonym (never the value).
    package struct IdentifierRef: Sendable, Codable, Equatable {
        package var type: String
        package var pseudonym: String
        /// How it was learnt: "request", or e.g. "derived from shop-db.customers via email".
        package var provenance: String
    }

    /// The outcome of one connector for this job.
    package struct ConnectorResult: Sendable, Codable, Equatable {
        package var name: String
        package var status: String
        package var records: Int
        package var error: String?
        package var attempts: Int?
        package var durationMs: Int?
        package var details: [String: String]?

        package init(name: String, status: String, records: Int, error: String? = nil) {
            self.name = name
            self.status = status
            self.records = records
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case name, status, records, error, attempts, details
            case durationMs = "duration_ms"
        }
    }

    /// One line of the job's history (what `dsar events` shows).
    package struct Event: Sendable, Codable, Equatable {
        package var at: String
        package var event: String
        package var detail: String?
    }

    package var format = 1
    package var jobID: String
    package var requestID: String?
    package var action: RequestAction
    package var regulation: Regulation
    package var dryRun: Bool
    package var status: JobStatus
    package var receivedAt: String
    package var claimedAt: String
    package var startedAt: String?
    package var finishedAt: String?
    package var initialDeadline: String
    package var deadline: String
    package var extensions: [Extension] = []
    package var subject: String
    package var identifiers: [IdentifierRef]
    package var signer: String?
    package var connectors: [ConnectorResult] = []
    package var outbox: String?
    package var error: String?
    package var attempts = 0
    /// How many times a run stopped (crash, kill) while this job was RUNNING; at `max_crashes`
    /// the job is set aside as FAILED so that it cannot stop every run.
    package var crashes: Int?
    /// Notification events already queued that must not repeat (e.g. `overdue`).
    package var notified: [String]?
    package var history: [Event] = []
    /// The language of the subject report (the request's `language`, else the spool default at claim time).
    package var language: String?

    enum CodingKeys: String, CodingKey {
        case format
        case jobID = "job_id"
        case requestID = "request_id"
        case action, regulation
        case dryRun = "dry_run"
        case status
        case receivedAt = "received_at"
        case claimedAt = "claimed_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case initialDeadline = "initial_deadline"
        case deadline, extensions, subject, identifiers, signer, connectors, outbox, error, attempts, crashes, notified,
            history
        case language
    }

    /// Adds a history line stamped now.
    package mutating func note(_ event: String, _ detail: String? = nil, now: Date = Date()) {
        history.append(Event(at: Timestamp.format(now), event: event, detail: detail))
    }

    /// The deadline as a date.
    package var deadlineDate: Date { Timestamp.parse(deadline) ?? Date.distantFuture }

    /// Whether the deadline has passed without the job ending.
    package func isOverdue(now: Date = Date()) -> Bool { !status.isTerminal && deadlineDate < now }
}
