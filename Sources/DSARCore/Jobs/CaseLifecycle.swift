import Foundation

/// Why a case was closed (`dsar close JOB --reason …`).
package enum CloseReason: String, Sendable, Codable, CaseIterable {
    /// The data subject has received the answer (the export, or the erasure confirmation).
    case answered
    /// The data subject withdrew the request.
    case withdrawn
    /// The controller refused the request (e.g. manifestly unfounded or excessive, GDPR Art. 12(5)).
    case refused
}

/// A case's life after its job: a job is *open* until an operator closes it (the person has been
/// answered, withdrew, or was refused). Only open jobs can be overdue or due soon; a job that
/// ended COMPLETED but that nobody has answered yet is still open.
package enum CaseLifecycle {
    /// The longest note `dsar close --note` accepts.
    package static let maxNoteLength = 2000

    /// Closes job `jobID` with `reason` and an optional operator `note`, through the store's locked,
    /// atomic read-modify-write, then journals `job.closed`.
    ///
    /// The note is operator free text and may hold personal data: it is kept only in the job record
    /// (like the deadline extension reason, `0600`), while the journal records the reason and only
    /// *whether* a note exists. Refused: closing an already closed job (the error says when and
    /// why it was closed), and `answered` for a job that has not ended (PENDING/RUNNING: there is no
    /// answer yet; `withdrawn` and `refused` are allowed: the job then ends FAILED without running,
    /// its request set aside in `failed/`). The caller holds the spool lock.
    @discardableResult
    package static func close(
        _ jobID: String, reason: CloseReason, note: String?, store: JobStore, audit: any AuditSink,
        now: Date = DSARClock.now()
    ) throws -> JobRecord {
        let note = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let note, note.count > maxNoteLength {
            throw DSARError(
                .usage,
                "--note is \(note.count) characters; at most \(maxNoteLength) are kept (put longer text elsewhere)")
        }
        var ended = false
        let rec = try store.update(jobID) { rec in
            if let c = rec.closure {
                throw DSARError(
                    .usage,
                    "job \(jobID) was already closed at \(c.at) (\(c.reason.rawValue)); a case is closed once",
                    path: store.layout.jobRecord(jobID))
            }
            // A closure dated before the request arrived is false (e.g. a wrong DSAR_NOW); it is kept.
            if let received = Timestamp.parse(rec.receivedAt), now < received {
                throw DSARError(
                    .usage,
                    "job \(jobID) was received at \(rec.receivedAt), after the time now (\(Timestamp.format(now))): a case cannot be closed before it was received; check the clock (\(DSARClock.variable) if set)",
                    path: store.layout.jobRecord(jobID))
            }
            if reason == .answered && !rec.status.isTerminal {
                throw DSARError(
                    .usage,
                    "job \(jobID) is \(rec.status.rawValue): it cannot have been answered before it ended; wait for it to finish, or close it with --reason withdrawn or --reason refused"
                )
            }
            rec.closure = JobRecord.Closure(
                at: Timestamp.format(now), reason: reason, note: (note?.isEmpty ?? true) ? nil : note)
            rec.note("closed", reason.rawValue, now: now)
            // A case closed before its job ended (PENDING, or RUNNING left by a crashed run: the
            // caller holds the spool lock, so no run is using it) is never run. It ends FAILED,
            // saying why, so that the record never claims work that was not done.
            if !rec.status.isTerminal {
                let verdict = JobStatus.derive(
                    JobEvidence(
                        unrunnable:
                            "the case was closed (\(reason.rawValue)) before the job finished; nothing was answered"))
                rec.status = verdict.status
                rec.error = verdict.error
                rec.finishedAt = Timestamp.format(now)
                ended = true
            }
        }
        if ended {
            // Its claimed request (the only copy of the identifiers) leaves active/ for failed/ with
            // the reason, like that of any job that ended without an answer.
            if FileSystem.exists(store.layout.activeRequest(jobID)) {
                try store.layout.setClaimedRequestAside(jobID, reason: rec.error ?? "closed before it ran")
            }
            try audit.append(
                AuditEvent.jobFinished(job: rec.jobID, subject: rec.subject, status: rec.status, records: 0))
        }
        try audit.append(
            AuditEvent.jobClosed(
                job: rec.jobID, subject: rec.subject, reason: reason, status: rec.status, deadline: rec.deadline,
                note: rec.closure?.note != nil))
        return rec
    }
}
