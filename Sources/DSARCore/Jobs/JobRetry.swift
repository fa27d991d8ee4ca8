import Foundation

/// `dsar retry`: a FAILED or PARTIAL job runs again under the same job id, `received_at`, deadline
/// and request id, starting from the identity set it had learnt (see ``IdentityClosure``).
package enum JobRetry {
    /// Puts a FAILED or PARTIAL job whose case is open back to PENDING: its request (with signature and identity set)
    /// moves from `failed/` back to `active/`, the superseded outbox entry is withdrawn (the new
    /// attempt publishes its own), the record keeps `attempts` (incremented when the job starts) and
    /// `job.retried` is journaled with the number of the attempt to come.
    ///
    /// The caller holds the spool lock. Every step is one rename; a crash in between leaves the job
    /// FAILED/PARTIAL with its request in `failed/` after recovery (or already PENDING), and the
    /// command can simply be run again.
    @discardableResult
    package static func retry(
        _ jobID: String, layout: SpoolLayout, audit: any AuditSink, now: Date = Date()
    ) throws -> JobRecord {
        let store = JobStore(layout: layout)
        let rec = try store.load(jobID)
        try refuseClosed(rec, path: layout.jobRecord(jobID))
        switch rec.status {
        case .completed:
            throw DSARError(
                .usage,
                "job \(jobID) ended COMPLETED: there is nothing to retry (its receipt is \(rec.outbox ?? "in outbox/")); a new request needs a new drop with a new request_id",
                path: layout.jobRecord(jobID))
        case .pending, .running:
            throw DSARError(
                .usage,
                "job \(jobID) is \(rec.status.rawValue) already: the next `dsar run` (or a running `dsar watch`) processes it",
                path: layout.jobRecord(jobID))
        case .partial, .failed:
            break
        }
        let failedRequest = layout.failed + "/\(jobID).json"
        let activeRequest = layout.activeRequest(jobID)
        // Also accepted: the request is back in active/ already (a retry interrupted after its first move).
        guard FileSystem.exists(failedRequest) || FileSystem.exists(activeRequest) else {
            throw DSARError(
                .notFound,
                "job \(jobID) is \(rec.status.rawValue) but its request is not in failed/ (expected \(failedRequest)); without it the job cannot run again: submit the request anew",
                path: failedRequest)
        }
        // The new attempt publishes its own entry; the old one must not be taken for it.
        let entry = layout.outboxEntry(jobID)
        var withdrawn = false
        if FileSystem.exists(entry) {
            let doomed = layout.outbox + "/.\(jobID).expired"
            try FileSystem.removeTree(doomed)
            try FileSystem.rename(entry, to: doomed)
            try FileSystem.syncDirectory(layout.outbox)
            try FileSystem.removeTree(doomed)
            withdrawn = true
        }
        // The request first: while only it has moved, recovery sees an ended job with its request in
        // active/ and moves it back (companions follow it either way).
        for (from, to) in [
            (failedRequest, activeRequest), (failedRequest + ".sig", activeRequest + ".sig"),
            (layout.failedIdentity(jobID), layout.activeIdentity(jobID)),
        ] where FileSystem.exists(from) {
            guard try FileSystem.renameNoReplace(from, to: to) else {
                throw DSARError(
                    .io, "cannot move \(from) back: \(to) exists already; compare the two and remove the stale one",
                    path: to)
            }
        }
        try FileSystem.syncDirectory(layout.active)
        try FileSystem.syncDirectory(layout.failed)
        CrashPoint.hit("retry.moved")
        let was = rec.status
        let updated = try store.update(jobID) { r in
            try refuseClosed(r, path: layout.jobRecord(jobID))
            guard r.status == .partial || r.status == .failed else {
                throw DSARError(
                    .usage, "job \(jobID) changed to \(r.status.rawValue) meanwhile; nothing was retried",
                    path: layout.jobRecord(jobID))
            }
            r.status = .pending
            r.error = nil
            r.finishedAt = nil
            r.outbox = nil
            r.manifestSHA256 = nil
            r.connectors = []
            r.crashes = nil
            r.note(
                "retried",
                "after \(was.rawValue); attempt \(r.attempts + 1) runs at the next `dsar run`"
                    + (withdrawn ? "; the previous outbox entry was withdrawn" : ""),
                now: now)
        }
        try audit.append(
            AuditEvent.jobRetried(
                job: jobID, subject: updated.subject, attempt: updated.attempts + 1, was: was,
                outboxWithdrawn: withdrawn))
        try FileSystem.remove(layout.failed + "/\(jobID).reason")
        try FileSystem.syncDirectory(layout.failed)
        return updated
    }

    /// A closed case is over (``CaseLifecycle``): `dsar run` never runs it, so a retry would leave it
    /// PENDING, its request in `active/`, for ever.
    static func refuseClosed(_ rec: JobRecord, path: String) throws {
        guard let c = rec.closure else { return }
        throw DSARError(
            .usage,
            "job \(rec.jobID) cannot be retried: the case was closed (\(c.reason.rawValue)) at \(c.at), and a closed case is not run again; a new request needs a new drop with a new request_id",
            path: path)
    }
}
