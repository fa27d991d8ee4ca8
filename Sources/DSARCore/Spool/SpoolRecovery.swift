import Foundation
import Logging

/// What crash recovery found and fixed.
package struct RecoveryReport: Sendable {
    /// Jobs that were RUNNING when a run stopped, put back to PENDING.
    package var requeued: [String] = []
    /// Jobs set aside as FAILED after `max_crashes` interrupted runs.
    package var setAside: [String] = []
    /// Claimed requests whose record was not written before the crash, given one.
    package var recreated: [String] = []
    /// Stale work removed (scratch directories, half-published outbox entries).
    package var removedWork: Int = 0
    /// Jobs already final whose request was still in `active/`: retired now.
    package var completedCleanup: [String] = []
    /// Nothing needed fixing.
    package var isEmpty: Bool {
        requeued.isEmpty && setAside.isEmpty && recreated.isEmpty && removedWork == 0 && completedCleanup.isEmpty
    }

    package init() {}
}

/// Puts a spool back in order after a crash (run once, under the spool lock, before intake).
struct SpoolRecovery {
    let layout: SpoolLayout
    let config: SpoolConfig
    let store: JobStore
    let parser: RequestParser
    let pseudonymizer: Pseudonymizer
    /// Every job is a dry run (`--dry-run`): a recreated record says so too.
    let forceDryRun: Bool
    let audit: any AuditSink
    let logger: Logger
    let concluder: JobConcluder

    /// Stale work is wiped, claimed requests go back to PENDING (processed again, idempotently),
    /// half-published outbox entries are removed.
    func recover() throws -> RecoveryReport {
        var report = RecoveryReport()
        for name in try FileSystem.list(layout.tmp) {
            try FileSystem.removeTree(layout.tmp + "/" + name)
            report.removedWork += 1
        }
        for name in try FileSystem.list(layout.outbox)
        where name.hasPrefix(".") && (name.hasSuffix(".partial") || name.hasSuffix(".expired")) {
            try FileSystem.removeTree(layout.outbox + "/" + name)
            report.removedWork += 1
        }
        for dir in [
            layout.jobs, layout.active, layout.rejected, layout.failed, layout.journal, layout.journal + "/checkpoints",
            layout.root, layout.keys,
        ]
        where FileSystem.exists(dir) {
            for name in try FileSystem.list(dir) where name.hasPrefix(".") && name.hasSuffix(".tmp") {
                try FileSystem.remove(dir + "/" + name)
            }
        }
        for name in try FileSystem.list(layout.active)
        where !name.hasPrefix(".") && !name.hasSuffix(".json.sig") && !IdentityClosure.isIdentityFile(name) {
            let path = layout.active + "/" + name
            let jobID = name.hasSuffix(".json") ? String(name.dropLast(5)) : ""
            guard UUIDv7.isValid(jobID) else {
                logger.warning("unexpected file in active/ left alone", metadata: ["path": "\(path)"])
                continue
            }
            if store.exists(jobID) {
                let rec = try store.load(jobID)
                switch rec.status {
                case .pending:
                    // A case closed while PENDING (a record of a dsar that left such jobs PENDING) is
                    // never run: it ends FAILED, its request set aside in failed/, as `dsar close` does
                    // now, so that its identifiers do not stay in active/ for ever.
                    guard let c = rec.closure else { continue }
                    let verdict = JobStatus.derive(
                        JobEvidence(
                            unrunnable:
                                "the case was closed (\(c.reason.rawValue)) before the job finished; nothing was answered"
                        ))
                    try store.update(jobID) {
                        $0.status = verdict.status
                        $0.error = verdict.error
                        $0.finishedAt = Timestamp.format(Date())
                        $0.note("failed", verdict.error)
                    }
                    try layout.setClaimedRequestAside(jobID, reason: verdict.error ?? "closed before it ran")
                    try audit.append(
                        AuditEvent.jobFinished(job: jobID, subject: rec.subject, status: verdict.status, records: 0))
                    report.completedCleanup.append(jobID)
                case .running:
                    let crashes = (rec.crashes ?? 0) + 1
                    if crashes >= config.maxCrashes {
                        // A job that was in hand every time a run died may be what kills it: set it
                        // aside (request kept in failed/) so the other jobs can run.
                        let reason =
                            "a run stopped (crashed or was killed) while this job was running \(crashes) times (max_crashes: \(config.maxCrashes)); it is set aside so that it cannot stop every run. Look at the logs of those runs, fix the cause, then `dsar retry \(jobID)`"
                        try audit.append(
                            AuditEvent.crashRecovered(
                                job: jobID, subject: rec.subject, was: "RUNNING", crashes: crashes, now: .failed))
                        try store.update(jobID) { $0.crashes = crashes }
                        try concluder.fail(jobID, reason: reason)
                        try audit.append(
                            AuditEvent.jobFinished(job: jobID, subject: rec.subject, status: .failed, records: 0))
                        logger.error(
                            "job set aside after repeated crashes",
                            metadata: ["job": "\(jobID)", "crashes": "\(crashes)"])
                        report.setAside.append(jobID)
                        continue
                    }
                    let maxCrashes = config.maxCrashes
                    try store.update(jobID) {
                        $0.status = .pending
                        $0.crashes = crashes
                        $0.note(
                            "recovered",
                            "the previous run stopped while this job was running (\(crashes) of \(maxCrashes) allowed); it is run again"
                        )
                    }
                    try audit.append(
                        AuditEvent.crashRecovered(job: jobID, subject: rec.subject, was: "RUNNING", crashes: crashes))
                    report.requeued.append(jobID)
                case .completed, .partial, .failed:
                    // The crash came after the record was final: its notification may not be queued yet.
                    concluder.queueNotification(rec, status: rec.status)
                    try concluder.retireRequest(jobID, status: rec.status, reason: rec.error)
                    report.completedCleanup.append(jobID)
                }
            } else {
                // Claimed (renamed into active/) but the record was not written before the crash.
                let bytes = try FileSystem.readFile(path, limit: config.maxRequestBytes)
                let st = try FileSystem.lstatus(path)
                do {
                    let req = try parser.parse(bytes)
                    let rec = JobRecord.claimed(
                        jobID: jobID, request: req, dropTime: st?.mtime ?? Date(),
                        note: "recovered: claimed before a crash",
                        forceDryRun: forceDryRun, pseudonymizer: pseudonymizer)
                    try store.withRecordsLock { try store.save(rec) }
                    try audit.append(AuditEvent.crashRecovered(job: jobID, subject: rec.subject, was: "CLAIMED"))
                    report.recreated.append(jobID)
                } catch {
                    try concluder.moveActiveAside(jobID, reason: "the claimed request no longer parses: \(error)")
                }
            }
        }
        try recoverIdentityFiles()
        if !report.isEmpty {
            logger.notice(
                "recovered after an interrupted run",
                metadata: [
                    "requeued": "\(report.requeued.count)", "recreated": "\(report.recreated.count)",
                    "stale_work_removed": "\(report.removedWork)",
                ])
        }
        return report
    }

    /// Identity sets whose request is gone from `active/` follow it (to `failed/`, or deleted when the
    /// job completed); a `failed/<id>.reason` of a job that was retried (PENDING again) is removed.
    func recoverIdentityFiles() throws {
        for name in try FileSystem.list(layout.active)
        where IdentityClosure.isIdentityFile(name) && !name.hasPrefix(".") {
            let jobID = String(name.dropLast(".identity.json".count))
            guard UUIDv7.isValid(jobID), !FileSystem.exists(layout.activeRequest(jobID)) else { continue }
            if FileSystem.exists(layout.failed + "/\(jobID).json") {
                try FileSystem.rename(layout.activeIdentity(jobID), to: layout.failedIdentity(jobID))
                try FileSystem.syncDirectory(layout.failed)
            } else if let rec = try? store.load(jobID), rec.status == .completed {
                try FileSystem.remove(layout.activeIdentity(jobID))
            } else {
                logger.warning(
                    "identity file without its request left alone",
                    metadata: ["path": "\(layout.activeIdentity(jobID))"])
            }
        }
        for name in try FileSystem.list(layout.failed) where name.hasSuffix(".reason") && !name.hasPrefix(".") {
            let jobID = String(name.dropLast(".reason".count))
            guard UUIDv7.isValid(jobID), !FileSystem.exists(layout.failed + "/\(jobID).json"),
                let rec = try? store.load(jobID), !rec.status.isTerminal
            else { continue }
            try FileSystem.remove(layout.failed + "/" + name)
        }
    }
}
