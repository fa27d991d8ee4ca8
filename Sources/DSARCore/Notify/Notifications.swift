import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The durable notification queue, `spool/notify/`, and its delivery.
///
/// When a job ends (or becomes due soon or overdue) one file per subscribed notifier is written
/// atomically: `notify/<job-id>.<event>.<notifier>.json`, holding the summary sent on stdin (for a
/// rejected drop: `notify/<drop-pseudonym>.rejected.<notifier>.json`). Delivery runs each
/// command with a timeout; success removes the file and journals `notify.sent`; failure journals
/// `notify.failed`, keeps the file and retries it on the next run (in `dsar watch`, after a backoff).
/// A notification never changes a job's status. Delivery is at least once: a crash between a
/// command's success and the removal of its file sends it again.
package final class Notifications {
    package let layout: SpoolLayout
    package let notifiers: [NotifierConfig]
    let audit: any AuditSink
    let logger: Logger
    /// In-process backoff: when a failed entry may be tried again (a new process tries all at once).
    var retryAt: [String: Date] = [:]

    package init(layout: SpoolLayout, notifiers: [NotifierConfig], audit: any AuditSink, logger: Logger) {
        self.layout = layout
        self.notifiers = notifiers
        self.audit = audit
        self.logger = logger
    }

    /// The queue directory.
    package var directory: String { layout.notify }

    /// What one delivery pass did.
    package struct DeliveryReport: Sendable {
        package var sent = 0
        package var failed = 0
        package var abandoned = 0
        /// Entries still queued afterwards.
        package var pending = 0
    }

    /// The summary a notifier receives on stdin: no personal data (pseudonymous ids, counts, paths).
    package func summary(_ r: JobRecord, event: NotifierConfig.Event, now: Date = DSARClock.now()) -> JSONValue {
        let outboxPath = r.outbox.map { $0.hasPrefix("/") ? $0 : layout.root + "/" + $0 }
        return .obj([
            "event": .string(event.qualified),
            "job_id": .string(r.jobID),
            "request_id": .str(r.requestID),
            "action": .string(r.action.rawValue),
            "regulation": .string(r.regulation.rawValue),
            "dry_run": .bool(r.dryRun),
            "status": .string(r.status.rawValue),
            "received_at": .string(r.receivedAt),
            "finished_at": .str(r.finishedAt),
            "deadline": .string(r.deadline),
            "days_left": .int(Deadline.daysLeft(r.deadlineDate, now: now)),
            "open": .bool(r.isOpen),
            "overdue": .bool(event == .overdue || r.deadlineDate < (r.finishedAt.flatMap(Timestamp.parse) ?? now)),
            "outbox": .str(r.outbox),
            "outbox_path": .str(outboxPath),
            "records": .int(r.connectors.reduce(0) { $0 + $1.records }),
            "error": .str(r.error),
            "spool": .string(layout.root),
            "host": .string(ProcessInfo.processInfo.hostName),
            "queued_at": .string(Timestamp.format(now)),
        ])
    }

    /// Queues `event` for every notifier subscribed to it (idempotent: the file name is fixed).
    package func enqueue(_ record: JobRecord, event: NotifierConfig.Event, now: Date = DSARClock.now()) throws {
        let summary = self.summary(record, event: event, now: now)
        try write(event: event, key: record.jobID, jobID: record.jobID, summary: summary)
    }

    /// Queues the `rejected` notification for a drop intake refused. There is no job: the drop is
    /// named by its pseudonym (`drop-…`, as in the journal and `rejected/*.reason`), and `reason` is
    /// the journaled one (no value of the drop, the file name replaced by the pseudonym: see
    /// ``RequestProblem/redacted``), with anything shaped like an e-mail address masked besides as
    /// a second line of defence, so that no personal data reaches the notifier.
    package func enqueueRejected(drop: String, reason: String, now: Date = DSARClock.now()) throws {
        let summary = JSONValue.obj([
            "event": .string(NotifierConfig.Event.rejected.qualified),
            "drop": .string(drop),
            "reason": .string(Notifications.maskingEmails(reason)),
            "see": .string("rejected/ (grep \(drop) rejected/*.reason)"),
            "spool": .string(layout.root),
            "host": .string(ProcessInfo.processInfo.hostName),
            "queued_at": .string(Timestamp.format(now)),
        ])
        try write(event: .rejected, key: drop, jobID: nil, summary: summary)
    }

    /// Writes one queue file per notifier subscribed to `event`: `notify/<key>.<event>.<notifier>.json`.
    func write(event: NotifierConfig.Event, key: String, jobID: String?, summary: JSONValue) throws {
        let targets = notifiers.filter { $0.events.contains(event) }
        guard !targets.isEmpty else { return }
        if !FileSystem.exists(directory) { try FileSystem.makeDirectory(directory, mode: 0o700) }
        for n in targets {
            let entry = JSONValue.obj([
                "notifier": .string(n.name),
                "event": .string(event.rawValue),
                "job_id": .str(jobID),
                "attempts": .int(0),
                "last_error": .null,
                "summary": summary,
            ])
            let path = directory + "/\(key).\(event.rawValue).\(n.name).json"
            try FileSystem.writeAtomically(path, JSONWriter().encode(entry) + [0x0A], mode: 0o600)
        }
    }

    /// `text` with every run of non-space bytes around an `@` (an e-mail address, `%40` encoded too)
    /// replaced by `<email>`.
    package static func maskingEmails(_ text: String) -> String {
        let b = Array(text.utf8)
        func isBreak(_ c: UInt8) -> Bool {
            c <= 0x20 || c == 0x22 || c == 0x27 || c == 0x28 || c == 0x29 || c == 0x2C || c == 0x3A || c == 0x3B
                || c == 0x3C || c == 0x3E || c == 0x5B || c == 0x5D || c == 0x7B || c == 0x7D
        }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            guard !isBreak(b[i]) else {
                out.append(b[i])
                i += 1
                continue
            }
            var j = i
            var at = false
            while j < b.count && !isBreak(b[j]) {
                if b[j] == 0x40 { at = true }
                if b[j] == 0x25 && j + 2 < b.count && b[j + 1] == 0x34 && b[j + 2] == 0x30 { at = true }
                j += 1
            }
            if at { out += Array("<email>".utf8) } else { out += b[i..<j] }
            i = j
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Queued entries, oldest job first.
    package func queued() -> [String] {
        ((try? FileSystem.list(directory)) ?? []).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted()
    }

    /// Runs every queued notification whose backoff allows it (`retryNow` ignores the backoff, as a new run does).
    package func deliver(now: Date = Date(), retryNow: Bool = false) async -> DeliveryReport {
        var report = DeliveryReport()
        for name in queued() {
            let path = directory + "/" + name
            if !retryNow, let at = retryAt[name], at > now {
                report.pending += 1
                continue
            }
            do {
                switch try await deliverOne(path, name: name) {
                case .sent: report.sent += 1
                case .failed:
                    report.failed += 1
                    report.pending += 1
                case .abandoned: report.abandoned += 1
                }
            } catch {
                // The queue itself could not be read or written: leave the entry for the next run.
                logger.error("notification queue entry unusable", metadata: ["file": "\(path)", "error": "\(error)"])
                report.failed += 1
                report.pending += 1
            }
        }
        return report
    }

    enum Outcome { case sent, failed, abandoned }

    func deliverOne(_ path: String, name: String) async throws -> Outcome {
        let bytes = try FileSystem.readFile(path, limit: 1 << 20)
        let entry: JSONValue
        do { entry = try JSONParser.parse(bytes) } catch {
            throw DSARError(.invalidInput, "\(path): not JSON: \(error)", path: path, cause: error)
        }
        guard case .string(let notifierName)? = entry["notifier"], case .string(let eventName)? = entry["event"],
            let summary = entry["summary"]
        else { throw DSARError(.invalidInput, "\(path): expected notifier, event and summary", path: path) }
        // A job's events carry its id; `rejected` (a drop, no job) has none.
        var jobID: String?
        if case .string(let j)? = entry["job_id"] { jobID = j }
        let qualified = NotifierConfig.Event(rawValue: eventName)?.qualified ?? "job." + eventName
        var attempts = 0
        if case .number(let a)? = entry["attempts"] { attempts = Int(a) ?? 0 }
        attempts += 1
        guard let notifier = notifiers.first(where: { $0.name == notifierName }) else {
            try audit.append(
                AuditEvent.notifyAbandoned(
                    job: jobID, notifier: notifierName, event: qualified, attempt: attempts,
                    reason: "notifier \(notifierName) is no longer configured"))
            try FileSystem.remove(path)
            try FileSystem.syncDirectory(directory)
            logger.warning(
                "notification dropped: its notifier is no longer configured",
                metadata: ["notifier": "\(notifierName)", "job": "\(jobID ?? "-")"])
            return .abandoned
        }
        var env = [
            "DSAR_EVENT": qualified, "DSAR_JOB_ID": jobID ?? "", "DSAR_NOTIFIER": notifierName,
            "DSAR_ATTEMPT": String(attempts),
            "DSAR_SPOOL": layout.root,
        ]
        // Every variable is set (empty when the event has no such value, e.g. `rejected` has no job):
        // a notifier script written with `set -u` works for every event.
        for k in ["DSAR_STATUS", "DSAR_ACTION", "DSAR_DEADLINE", "DSAR_OUTBOX", "DSAR_REQUEST_ID", "DSAR_DROP"] {
            env[k] = ""
        }
        if case .string(let s)? = summary["status"] { env["DSAR_STATUS"] = s }
        if case .string(let s)? = summary["action"] { env["DSAR_ACTION"] = s }
        if case .string(let s)? = summary["deadline"] { env["DSAR_DEADLINE"] = s }
        if case .string(let s)? = summary["outbox_path"] { env["DSAR_OUTBOX"] = s }
        if case .string(let s)? = summary["request_id"] { env["DSAR_REQUEST_ID"] = s }
        if case .string(let s)? = summary["drop"] { env["DSAR_DROP"] = s }
        let started = Date()
        var failure: String?
        do {
            let r = try await Subprocess.run(
                notifier.command, stdin: JSONWriter().encode(summary) + [0x0A], environment: env,
                timeout: notifier.timeoutSeconds,
                scratchDir: layout.tmp, maxOutputBytes: 1 << 20)
            failure = r.failure(timeout: notifier.timeoutSeconds)
        } catch {
            failure = "\(error)"
        }
        let ms = Int(Date().timeIntervalSince(started) * 1000)
        if let failure {
            let backoff = min(60 * pow(2, Double(min(attempts, 10) - 1)), 3600)
            retryAt[name] = Date().addingTimeInterval(backoff)
            guard case .object(var members) = entry else { return .failed }
            for k in members.indices {
                if members[k].key == "attempts" { members[k].value = .int(attempts) }
                if members[k].key == "last_error" { members[k].value = .string(failure) }
            }
            try FileSystem.writeAtomically(path, JSONWriter().encode(.object(members)) + [0x0A], mode: 0o600)
            try audit.append(
                AuditEvent.notifyFailed(
                    job: jobID, notifier: notifierName, event: qualified, attempt: attempts, reason: failure,
                    durationMs: ms,
                    retry: "next run"))
            logger.warning(
                "notification failed; it is retried on the next run",
                metadata: [
                    "notifier": "\(notifierName)", "job": "\(jobID ?? "-")", "event": "\(eventName)",
                    "attempt": "\(attempts)",
                    "reason": "\(failure)",
                ])
            return .failed
        }
        try audit.append(
            AuditEvent.notifySent(
                job: jobID, notifier: notifierName, event: qualified, attempt: attempts, durationMs: ms))
        try FileSystem.remove(path)
        try FileSystem.syncDirectory(directory)
        retryAt[name] = nil
        logger.info(
            "notification sent",
            metadata: ["notifier": "\(notifierName)", "job": "\(jobID ?? "-")", "event": "\(eventName)"])
        return .sent
    }
}
