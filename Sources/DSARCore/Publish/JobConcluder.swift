import Foundation
import Logging

/// Ends jobs: writes their final records, retires their requests (deleted when COMPLETED, else kept
/// in `failed/` with the reason), journals the end and queues the notifications.
struct JobConcluder {
    let layout: SpoolLayout
    let store: JobStore
    let pseudonymizer: Pseudonymizer
    let audit: any AuditSink
    let logger: Logger
    /// Where job-ended and overdue notifications are queued (nil: none configured).
    let notifications: Notifications?
    /// Scrubs every identifier of the running batch from error text.
    let logScrubber: LogScrubber

    /// Concludes a group of sealed jobs, each in the order: seal journaled, final record written,
    /// request retired, end journaled — with one journal write per step and one directory fsync per
    /// directory for the whole group. Jobs put back to PENDING are not returned.
    func conclude(_ group: [(SealWork, SealResult)]) throws -> [JobRecord] {
        let group = try publishStaged(group)
        var sealEvents: [AuditEvent] = []
        var finals: [(w: SealWork, verdict: JobVerdict, outbox: String?, manifestSHA256: String?)] = []
        for (w, sealed) in group {
            let id = w.record.jobID
            var verdict = w.verdict
            var outbox: String?
            var manifestSHA256: String?
            switch sealed {
            case .requeue:
                try store.update(id) {
                    $0.status = .pending
                    $0.note("requeued", "dsar was asked to stop before this job finished")
                }
                continue
            case .skipped:
                break
            case .failed(let failure):
                // The error's text is what the record and receipt keep: scrubbed of the batch's identifiers.
                let failure = logScrubber.scrubber.scrub(Processor.scrub(failure.message, w.identifiers))
                verdict = JobStatus.derive(
                    JobEvidence(outcomes: w.outcomes, erasure: w.erasure, seal: .failed(failure)))
                logger.error("publishing failed", metadata: ["job": "\(id)", "error": "\(failure)"])
            case .sealed(let published):
                outbox = published.path
                manifestSHA256 = published.manifestSHA256
                if let sha = published.manifestSHA256 {
                    sealEvents.append(
                        AuditEvent.sealed(
                            job: id, subject: w.record.subject, action: w.request.action, manifestSHA256: sha))
                }
                sealEvents.append(
                    AuditEvent.jobPublished(job: id, subject: w.record.subject, outbox: relative(published.path)))
            }
            finals.append((w, verdict, outbox, manifestSHA256))
        }
        try audit.append(contentsOf: sealEvents)
        // The final records in phases: all written, all fsynced, all renamed, one fsync of jobs/.
        let finishedAt = Timestamp.format(Date())
        let renamed: (Int) -> Void = { _ in CrashPoint.hit("job.recorded") }
        let records = try store.updateAll(finals.map(\.w.record.jobID), renamed: renamed) { k, r in
            let f = finals[k]
            let derivedRefs = f.w.derived.map { (ident, provenance) in
                JobRecord.IdentifierRef(
                    type: ident.type, pseudonym: pseudonymizer.pseudonym(ident), provenance: provenance)
            }
            let outbox = f.outbox.map { relative($0) }
            r.status = f.verdict.status
            r.error = f.verdict.error
            r.finishedAt = finishedAt
            r.outbox = outbox
            // Recorded with the outbox path in the same atomic write: deliver and verify tell the
            // current publication from an earlier attempt's entry by it.
            r.manifestSHA256 = outbox == nil ? nil : f.manifestSHA256
            r.identifiers += derivedRefs
            r.connectors = f.w.outcomes.map { o in
                var c = JobRecord.ConnectorResult(
                    name: o.name, status: o.status.rawValue, records: o.findings.records, error: o.error)
                c.attempts = o.attempts
                c.durationMs = o.durationMs
                var details = o.findings.details
                // What the subject's export left out of other people's data (GDPR Art. 15(4)).
                if f.w.request.action == .export {
                    let st = ExportView.stats(o, subject: f.w.identifiers)
                    if st.mentions > 0 { details["mentions"] = String(st.mentions) }
                    if st.masked > 0 { details["masked"] = String(st.masked) }
                }
                c.details = details.isEmpty ? nil : details
                return c
            }
            r.note(f.verdict.status.rawValue.lowercased(), f.verdict.error)
        }
        var endEvents: [AuditEvent] = []
        for (f, rec) in zip(finals, records) {
            let id = rec.jobID
            queueNotification(rec, status: f.verdict.status)
            try retireRequest(id, status: f.verdict.status, reason: f.verdict.error, syncDirectory: false)
            CrashPoint.hit("job.retired")
            endEvents.append(
                AuditEvent.jobFinished(
                    job: id, subject: rec.subject, status: f.verdict.status,
                    records: f.w.outcomes.reduce(0) { $0 + $1.findings.records }))
            logger.info(
                "job finished",
                metadata: ["job": "\(id)", "status": "\(f.verdict.status.rawValue)", "outbox": "\(rec.outbox ?? "-")"])
        }
        if !finals.isEmpty { try FileSystem.syncDirectory(layout.active) }
        try audit.append(contentsOf: endEvents)
        return records
    }

    /// Renames the group's staged outbox entries into place (``OutboxPublisher/commitStaged(_:layout:)``:
    /// one fsync of `outbox/`); an entry that cannot be renamed makes its job's seal failed.
    func publishStaged(_ group: [(SealWork, SealResult)]) throws -> [(SealWork, SealResult)] {
        var staged: [Published] = []
        var at: [Int] = []
        for (k, (_, r)) in group.enumerated() {
            if case .sealed(let p) = r, p.staged != nil {
                staged.append(p)
                at.append(k)
            }
        }
        guard !staged.isEmpty else { return group }
        let failed = try OutboxPublisher.commitStaged(staged, layout: layout)
        var out = group
        for (n, k) in at.enumerated() {
            if let e = failed[n] {
                out[k].1 = .failed(Sealer.failure(e, jobID: out[k].0.record.jobID, layout: layout))
            } else {
                staged[n].staged = nil
                out[k].1 = .sealed(staged[n])
            }
        }
        return out
    }

    /// After a job ends, its claimed request (the only copy of the identifiers) is deleted, or, for a
    /// FAILED or PARTIAL job, kept in `failed/` with the reason so that nothing is lost.
    func retireRequest(_ jobID: String, status: JobStatus, reason: String?, syncDirectory: Bool = true) throws {
        let path = layout.activeRequest(jobID)
        guard FileSystem.exists(path) else { return }
        if status == .completed {
            try FileSystem.remove(layout.activeIdentity(jobID))
            try FileSystem.remove(path + ".sig")
            try FileSystem.remove(path)
            if syncDirectory { try FileSystem.syncDirectory(layout.active) }
        } else {
            try moveActiveAside(jobID, reason: reason ?? status.rawValue)
        }
    }

    /// Moves a claimed request aside to `failed/` with `reason` (``SpoolLayout/setClaimedRequestAside(_:reason:)``).
    func moveActiveAside(_ jobID: String, reason: String) throws {
        try layout.setClaimedRequestAside(jobID, reason: reason)
    }

    /// Ends a job that cannot be run as FAILED with `reason` (its record, if it has one, and its
    /// request moved to `failed/`). Returns the final record (nil: the job had none).
    @discardableResult
    func fail(_ jobID: String, reason: String) throws -> JobRecord? {
        var final: JobRecord?
        if store.exists(jobID) {
            let verdict = JobStatus.derive(JobEvidence(unrunnable: reason))
            let rec = try store.update(jobID) {
                $0.status = verdict.status
                $0.error = verdict.error
                $0.finishedAt = Timestamp.format(Date())
                $0.note("failed", verdict.error)
            }
            queueNotification(rec, status: verdict.status)
            final = rec
        }
        try moveActiveAside(jobID, reason: reason)
        return final
    }

    /// Queues the job-ended notification; a queue problem is logged and journaled, never fails the job.
    func queueNotification(_ rec: JobRecord, status: JobStatus) {
        guard let n = notifications, let event = NotifierConfig.Event(status: status) else { return }
        do {
            try n.enqueue(rec, event: event)
        } catch {
            logger.error("cannot queue notification", metadata: ["job": "\(rec.jobID)", "error": "\(error)"])
            try? audit.append(
                AuditEvent.notifyFailed(
                    job: rec.jobID, subject: rec.subject, event: "job." + event.rawValue,
                    reason: "could not be queued: \(error)"))
        }
    }

    /// Marks open jobs (not closed by `dsar close`, whatever their status) that passed their
    /// deadline: journals `job.overdue` and queues the `overdue` notification, once per job. Returns
    /// the ids newly found overdue.
    func checkOverdue(now: Date) throws -> [String] {
        var found: [String] = []
        for r in try store.all(onError: { logger.error("\($0.message)") })
        where r.isOverdue(now: now) && !(r.notified ?? []).contains("overdue") {
            let rec = try store.update(r.jobID) {
                $0.notified = ($0.notified ?? []) + ["overdue"]
                $0.note("overdue", "deadline \($0.deadline) passed before the case was closed", now: now)
            }
            try audit.append(
                AuditEvent.jobOverdue(job: rec.jobID, subject: rec.subject, deadline: rec.deadline, status: rec.status))
            logger.warning("job is overdue", metadata: ["job": "\(rec.jobID)", "deadline": "\(rec.deadline)"])
            if let n = notifications {
                do { try n.enqueue(rec, event: .overdue, now: now) } catch {
                    logger.error("cannot queue notification", metadata: ["job": "\(rec.jobID)", "error": "\(error)"])
                }
            }
            found.append(rec.jobID)
        }
        return found
    }

    /// Marks open jobs whose deadline is at most `days` days away (and not yet passed): journals
    /// `job.due_soon` and queues the `due_soon` notification, once per job (remembered in `notified`).
    /// Returns the ids newly found due soon.
    func checkDueSoon(days: Int, now: Date) throws -> [String] {
        guard days > 0 else { return [] }
        var found: [String] = []
        for r in try store.all(onError: { logger.error("\($0.message)") })
        where r.isDueSoon(days: days, now: now) && !(r.notified ?? []).contains("due_soon") {
            let left = Deadline.daysLeft(r.deadlineDate, now: now)
            let rec = try store.update(r.jobID) {
                $0.notified = ($0.notified ?? []) + ["due_soon"]
                $0.note("due_soon", "deadline \($0.deadline) is \(left) days away", now: now)
            }
            try audit.append(
                AuditEvent.jobDueSoon(
                    job: rec.jobID, subject: rec.subject, deadline: rec.deadline, daysLeft: left, status: rec.status))
            logger.notice(
                "job is due soon",
                metadata: ["job": "\(rec.jobID)", "deadline": "\(rec.deadline)", "days_left": "\(left)"])
            if let n = notifications {
                do { try n.enqueue(rec, event: .dueSoon, now: now) } catch {
                    logger.error("cannot queue notification", metadata: ["job": "\(rec.jobID)", "error": "\(error)"])
                }
            }
            found.append(rec.jobID)
        }
        return found
    }

    /// `path` relative to the spool root (as records and the journal name outbox entries).
    func relative(_ path: String) -> String {
        path.hasPrefix(layout.root + "/") ? String(path.dropFirst(layout.root.count + 1)) : path
    }
}
