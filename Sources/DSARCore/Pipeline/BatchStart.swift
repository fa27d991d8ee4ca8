import Foundation

/// The start of a batch: each pending job's request is read again and its whole identity set
/// loaded, then the job is set RUNNING; a job whose request or identity set cannot be read ends
/// FAILED (through `fail`) without stopping the others.
enum BatchStart {
    /// The jobs that were started, in the given order, with their identity sets by job id.
    struct Started: Sendable {
        var jobs: [(record: JobRecord, request: DSARRequest)] = []
        /// Each job's whole identity: the request's identifiers and those an earlier attempt learnt.
        var closures: [String: IdentityClosure] = [:]
    }

    /// Starts `ids`: their records updated in one batch (``JobStore/updateAll(_:renamed:_:)``: one
    /// fsync of `jobs/`) and one journal write for all (before any source is read).
    static func start(
        _ ids: [String], layout: SpoolLayout, config: SpoolConfig, store: JobStore, parser: RequestParser,
        audit: any AuditSink,
        fail: (String, String) throws -> Void
    ) throws -> Started {
        var out = Started()
        var ready: [(id: String, request: DSARRequest)] = []
        for id in ids {
            let path = layout.activeRequest(id)
            let request: DSARRequest
            do {
                request = try parser.parse(try FileSystem.readFile(path, limit: config.maxRequestBytes))
            } catch {
                try fail(id, "the claimed request no longer parses: \(error)")
                continue
            }
            do {
                var closure =
                    try IdentityClosure.load(layout.activeIdentity(id)) ?? IdentityClosure(jobID: id, request: [])
                closure.merge(request.identifiers.map { ($0, "request") })
                out.closures[id] = closure
            } catch {
                try fail(id, "\(error)")
                continue
            }
            ready.append((id, request))
        }
        // RUNNING and PENDING recover the same way: the records are written in phases (all written,
        // all fsynced, all renamed, one fsync of jobs/) under one hold of the records lock.
        let now = Timestamp.format(Date())
        let renamed: (Int) -> Void = { _ in CrashPoint.hit("job.running") }
        let records = try store.updateAll(ready.map(\.id), renamed: renamed) { _, r in
            r.status = .running
            r.startedAt = now
            r.attempts += 1
            r.note("started", "attempt \(r.attempts)")
        }
        var startedEvents: [AuditEvent] = []
        for (rec, job) in zip(records, ready) {
            startedEvents.append(AuditEvent.jobStarted(job: rec.jobID, subject: rec.subject, attempt: rec.attempts))
            out.jobs.append((rec, job.request))
        }
        // One journal write for the whole batch's start (before any source is read).
        try audit.append(contentsOf: startedEvents)
        return out
    }
}
