/// Every kind of event dsar writes to the audit journal, with the detail fields each carries.
///
/// This is the one definition of the journal's vocabulary: ``AuditEvent``'s factories build events
/// from it, ``JournalVerifier`` checks every entry against it, and `dsar events` prints with it.
package enum AuditEventType: String, CaseIterable, Sendable {
    /// A settled drop was moved from `inbox/` into `active/` under a new job id.
    case jobClaimed = "job.claimed"
    /// What was asked for (action, regulation, identifier types; never the values).
    case requestReceived = "request.received"
    /// A drop was refused and moved to `rejected/` with its reason.
    case requestRejected = "request.rejected"
    /// A drop repeated a `request_id` already received; no second job was started.
    case requestDuplicate = "request.duplicate"
    /// A job was set RUNNING (one attempt).
    case jobStarted = "job.started"
    /// A connector began searching for a job (one scan round).
    case connectorStarted = "connector.started"
    /// A connector needed more than one attempt.
    case connectorRetried = "connector.retried"
    /// A connector finished searching for a job.
    case connectorFinished = "connector.finished"
    /// A connector failed to search or to erase.
    case connectorFailed = "connector.failed"
    /// A matching record revealed another identifier of the subject (identity expansion).
    case identifiersDerived = "identifiers.derived"
    /// A source was rewritten without the subject's records (deleted or redacted).
    case fileErased = "file.erased"
    /// A source holds the subject's records under retention (`erase: retain`): nothing changed.
    case fileRetained = "file.retained"
    /// The second search after erasure ran; `gaps` is what it still found.
    case erasureVerified = "erasure.verified"
    /// An export bundle was sealed (manifest signed).
    case bundleSealed = "bundle.sealed"
    /// An erasure receipt was sealed (manifest signed).
    case receiptSealed = "receipt.sealed"
    /// A job's outbox entry was published.
    case jobPublished = "job.published"
    /// A job ended with its final status.
    case jobFinished = "job.finished"
    /// An operator made the data subject's passphrase-encrypted copy of an export (`dsar deliver`).
    case jobDelivered = "job.delivered"
    /// `dsar serve` handed out a download link (`GET /dsar/{jobId}/download`) to a file of the job's
    /// published entry: the file, the link's expiry and the principal's pseudonym (null under `auth: none`).
    case downloadGranted = "download.granted"
    /// An open case (not closed with `dsar close`) passed its deadline, whatever its job's status.
    case jobOverdue = "job.overdue"
    /// An open job's deadline is at most `due_soon_days` away (raised once per job).
    case jobDueSoon = "job.due_soon"
    /// An operator ran `dsar retry` on a job.
    case jobRetried = "job.retried"
    /// An operator extended a job's deadline (`dsar extend`).
    case deadlineExtended = "deadline.extended"
    /// An operator closed a case (`dsar close`): answered, withdrawn or refused; `note`: whether a note was kept.
    case jobClosed = "job.closed"
    /// A start found what an interrupted run left, and put it back in order.
    case crashRecovered = "crash.recovered"
    /// A notification was delivered.
    case notifySent = "notify.sent"
    /// A notification could not be queued or delivered (it is retried).
    case notifyFailed = "notify.failed"
    /// A queued notification was dropped (its notifier is no longer configured).
    case notifyAbandoned = "notify.abandoned"
    /// An outbox entry older than `outbox_retention_days` was removed.
    case outboxExpired = "outbox.expired"
    /// A torn last journal line (from a crash) was moved aside.
    case journalRecovered = "journal.recovered"
    /// The chain's head was signed.
    case checkpoint = "checkpoint"
    /// The external witness did not take a checkpoint (retried at the next one).
    case witnessFailed = "witness.failed"

    /// The detail fields of this event type, in the order they are written.
    package var fields: [AuditField] {
        switch self {
        case .jobClaimed: [.string("file")]
        case .requestReceived:
            [.string("action"), .string("regulation"), .strings("identifier_types"), .stringOrNull("signer")]
        case .requestRejected: [.string("drop"), .optional(.string("file")), .string("reason")]
        case .requestDuplicate: [.string("drop"), .string("reason")]
        case .jobStarted: [.int("attempt")]
        case .connectorStarted: [.string("connector"), .int("round")]
        case .connectorRetried: [.string("connector"), .int("attempts")]
        case .connectorFinished:
            [
                .string("connector"), .int("records"), .int("bytes_scanned"), .int("duration_ms"), .int("attempts"),
                .int("round"),
            ]
        case .connectorFailed:
            [
                .string("connector"), .optional(.string("phase")), .optional(.int("records")),
                .optional(.int("bytes_scanned")),
                .optional(.int("duration_ms")), .optional(.int("attempts")), .optional(.int("round")),
                .string("reason"),
            ]
        case .identifiersDerived: [.string("type"), .string("provenance")]
        case .fileErased, .fileRetained:
            [
                .string("connector"), .string("file"), .optional(.stringOrNull("table")), .string("strategy"),
                .int("deleted"),
                .int("redacted"), .int("retained"), .int("remaining"), .stringOrNull("sha256_before"),
                .stringOrNull("sha256_after"),
            ]
        case .erasureVerified: [.int("connectors"), .int("source_files"), .int("gaps")]
        case .bundleSealed, .receiptSealed: [.string("manifest_sha256")]
        case .jobPublished: [.string("outbox")]
        case .jobFinished: [.string("status"), .int("records")]
        case .jobDelivered: [.string("file"), .string("sha256"), .int("bytes"), .int("delivery")]
        case .downloadGranted: [.string("file"), .string("expires"), .stringOrNull("principal")]
        case .jobOverdue: [.string("deadline"), .string("status")]
        case .jobDueSoon: [.string("deadline"), .int("days_left"), .string("status")]
        case .jobRetried: [.int("attempt"), .string("was"), .bool("outbox_withdrawn")]
        case .deadlineExtended: [.int("days"), .string("deadline"), .string("reason")]
        case .jobClosed: [.string("reason"), .string("status"), .string("deadline"), .bool("note")]
        case .crashRecovered: [.string("was"), .optional(.int("crashes")), .optional(.string("now"))]
        case .notifySent: [.string("notifier"), .string("event"), .int("attempt"), .int("duration_ms")]
        case .notifyFailed:
            [
                .optional(.string("notifier")), .string("event"), .optional(.int("attempt")), .string("reason"),
                .optional(.int("duration_ms")), .optional(.string("retry")),
            ]
        case .notifyAbandoned: [.string("notifier"), .string("event"), .int("attempt"), .string("reason")]
        case .outboxExpired: [.int("retention_days")]
        case .journalRecovered: [.int("torn_bytes"), .stringOrNull("torn_file")]
        case .checkpoint:
            [
                .int("signed_seq"), .string("signed_hash"), .string("namespace"), .string("principal"),
                .string("signature"),
            ]
        case .witnessFailed:
            [.int("signed_seq"), .string("reason"), .int("pending"), .int("duration_ms"), .string("retry")]
        }
    }

    /// Why `details` do not fit this type's definition (nil: they do): a field missing, of the
    /// wrong kind, or not defined for it.
    package func problem(with details: JSONValue) -> String? {
        guard case .object(let members) = details else { return "details are not an object" }
        let defined = Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0) })
        for m in members {
            guard let f = defined[m.key] else { return "\(rawValue) has no field \"\(m.key)\"" }
            if !f.kind.accepts(m.value) {
                return "\(rawValue) field \"\(m.key)\" must be \(f.kind.description), not \(m.value.kindName)"
            }
        }
        let present = Set(members.map(\.key))
        if let missing = fields.first(where: { !$0.isOptional && !present.contains($0.name) }) {
            return "\(rawValue) lacks its field \"\(missing.name)\""
        }
        return nil
    }
}

/// One detail field of an audit event type.
package struct AuditField: Sendable, Equatable {
    /// What values a field takes.
    package enum Kind: Sendable, Equatable, CustomStringConvertible {
        case string, int, bool, strings, stringOrNull

        /// Whether `v` is a value of this kind.
        package func accepts(_ v: JSONValue) -> Bool {
            switch (self, v) {
            case (.string, .string), (.bool, .bool), (.stringOrNull, .string), (.stringOrNull, .null): true
            case (.int, .number(let n)): Int(n) != nil
            case (.strings, .array(let items)): items.allSatisfy { if case .string = $0 { true } else { false } }
            default: false
            }
        }

        package var description: String {
            switch self {
            case .string: "a string"
            case .int: "an integer"
            case .bool: "a boolean"
            case .strings: "an array of strings"
            case .stringOrNull: "a string or null"
            }
        }
    }

    /// The member name in `details`.
    package var name: String
    /// What it holds.
    package var kind: Kind
    /// Whether events of the type may leave it out.
    package var isOptional: Bool

    static func string(_ n: String) -> AuditField { AuditField(name: n, kind: .string, isOptional: false) }
    static func int(_ n: String) -> AuditField { AuditField(name: n, kind: .int, isOptional: false) }
    static func bool(_ n: String) -> AuditField { AuditField(name: n, kind: .bool, isOptional: false) }
    static func strings(_ n: String) -> AuditField { AuditField(name: n, kind: .strings, isOptional: false) }
    static func stringOrNull(_ n: String) -> AuditField { AuditField(name: n, kind: .stringOrNull, isOptional: false) }
    static func optional(_ f: AuditField) -> AuditField { AuditField(name: f.name, kind: f.kind, isOptional: true) }
}
