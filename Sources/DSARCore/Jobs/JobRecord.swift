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

    /// One copy of the export made for the data subject by `dsar deliver` (never the passphrase).
    package struct Delivery: Sendable, Codable, Equatable {
        /// When it was made.
        package var at: String
        /// Its path relative to the spool, `outbox/<job-id>/subject.zip.age`.
        package var file: String
        /// SHA-256 (hex) of the encrypted file.
        package var sha256: String
        /// Size of the encrypted file.
        package var bytes: Int64

        package init(at: String, file: String, sha256: String, bytes: Int64) {
            self.at = at
            self.file = file
            self.sha256 = sha256
            self.bytes = bytes
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
    /// SHA-256 (hex) of the `manifest.json` of the job's current publication (`outbox`), written
    /// with it when the job ends; nil before it is published, after `dsar retry` withdrew it, and in
    /// records written before dsar kept it. `dsar deliver` and `dsar verify` refuse an entry whose
    /// manifest differs (an earlier attempt's entry put back).
    package var manifestSHA256: String?
    package var error: String?
    package var attempts = 0
    /// How many times a run stopped (crash, kill) while this job was RUNNING; at `max_crashes`
    /// the job is set aside as FAILED so that it cannot stop every run.
    package var crashes: Int?
    /// Notification events already queued that must not repeat (e.g. `overdue`).
    package var notified: [String]?
    /// The copies made for the data subject (`dsar deliver`), oldest first; nil before the first.
    package var deliveries: [Delivery]?
    package var history: [Event] = []
    /// How the case was closed (`dsar close`); nil while it is open (see ``CaseLifecycle``).
    package var closure: Closure?

    /// The end of a case: when, why, and the operator's note (free text kept only here, never journaled).
    package struct Closure: Sendable, Codable, Equatable {
        package var at: String
        package var reason: CloseReason
        package var note: String?

        package init(at: String, reason: CloseReason, note: String? = nil) {
            self.at = at
            self.reason = reason
            self.note = note
        }
    }
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
        case manifestSHA256 = "manifest_sha256"
        case closure
        case deliveries
        case language
    }

    /// Adds a history line stamped now.
    package mutating func note(_ event: String, _ detail: String? = nil, now: Date = DSARClock.now()) {
        history.append(Event(at: Timestamp.format(now), event: event, detail: detail))
    }

    /// The deadline as a date.
    package var deadlineDate: Date { Timestamp.parse(deadline) ?? Date.distantFuture }

    /// Whether the case is open: nobody has closed it (`dsar close`), whatever the job's status.
    package var isOpen: Bool { closure == nil }

    /// Whether the deadline has passed while the case is open (COMPLETED but unanswered counts).
    package func isOverdue(now: Date = DSARClock.now()) -> Bool { isOpen && deadlineDate < now }

    /// Whether the case is open, not yet overdue, and its deadline is at most `days` days away.
    package func isDueSoon(days: Int, now: Date = DSARClock.now()) -> Bool {
        isOpen && days > 0 && deadlineDate >= now && deadlineDate.timeIntervalSince(now) <= Double(days) * 86400
    }
}
