import Foundation

/// Where a job is in its life: `PENDING → RUNNING → COMPLETED | PARTIAL | FAILED`.
public enum JobStatus: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case running = "RUNNING"
    case completed = "COMPLETED"
    case partial = "PARTIAL"
    case failed = "FAILED"

    /// Whether the job has ended.
    public var isTerminal: Bool { self == .completed || self == .partial || self == .failed }
}

/// The record of one job, `jobs/<job-id>.json`. It holds no personal data: the subject appears
/// only as keyed pseudonyms.
public struct JobRecord: Sendable, Codable, Equatable {
    /// An extension of the deadline, with its legal reason.
    public struct Extension: Sendable, Codable, Equatable {
        public var days: Int
        public var reason: String
        public var at: String
        public var deadline: String
    }

    /// One identifier as type + pseudonym (never the value).
    public struct IdentifierRef: Sendable, Codable, Equatable {
        public var type: String
        public var pseudonym: String
        /// How it was learnt: "request", or e.g. "derived from shop-db.customers via email".
        public var provenance: String
    }

    /// The outcome of one connector for this job.
    public struct ConnectorResult: Sendable, Codable, Equatable {
        public var name: String
        public var status: String
        public var records: Int
        public var error: String?
        public var attempts: Int?
        public var durationMs: Int?
        public var details: [String: String]?

        public init(name: String, status: String, records: Int, error: String? = nil) {
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
    public struct Event: Sendable, Codable, Equatable {
        public var at: String
        public var event: String
        public var detail: String?
    }

    public var format = 1
    public var jobID: String
    public var requestID: String?
    public var action: RequestAction
    public var regulation: Regulation
    public var dryRun: Bool
    public var status: JobStatus
    public var receivedAt: String
    public var claimedAt: String
    public var startedAt: String?
    public var finishedAt: String?
    public var initialDeadline: String
    public var deadline: String
    public var extensions: [Extension] = []
    public var subject: String
    public var identifiers: [IdentifierRef]
    public var signer: String?
    public var connectors: [ConnectorResult] = []
    public var outbox: String?
    public var error: String?
    public var attempts = 0
    /// How many times a run stopped (crash, kill) while this job was RUNNING; at `max_crashes`
    /// the job is set aside as FAILED so that it cannot stop every run.
    public var crashes: Int?
    /// Notification events already queued that must not repeat (e.g. `overdue`).
    public var notified: [String]?
    public var history: [Event] = []

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
        case deadline, extensions, subject, identifiers, signer, connectors, outbox, error, attempts, crashes, notified, history
    }

    /// Adds a history line stamped now.
    public mutating func note(_ event: String, _ detail: String? = nil, now: Date = Date()) {
        history.append(Event(at: Timestamp.format(now), event: event, detail: detail))
    }

    /// The deadline as a date.
    public var deadlineDate: Date { Timestamp.parse(deadline) ?? Date.distantFuture }

    /// Whether the deadline has passed without the job ending.
    public func isOverdue(now: Date = Date()) -> Bool { !status.isTerminal && deadlineDate < now }
}
