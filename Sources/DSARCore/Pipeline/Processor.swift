import Foundation
import Logging

/// The job lifecycle on one spool: recover after a crash, take settled drops from the inbox
/// (``RequestIntake``), claim them as jobs, run the connectors once for the whole batch
/// (``BatchPlan``, ``ScanCoordinator``, ``ErasureCoordinator``), and finish each job (``Sealer``,
/// ``JobConcluder``). This type only coordinates the stages; each owns its part.
///
/// One `Processor` is used by one `dsar run` or `dsar watch` holding the spool lock.
package final class Processor {
    package let layout: SpoolLayout
    package let config: SpoolConfig
    /// How this processor runs (fixed at ``init``).
    package let configuration: Configuration
    package let store: JobStore
    package let pseudonymizer: Pseudonymizer
    package let audit: any AuditSink
    /// The log, with the identifiers of the batch in hand scrubbed from every line (``logScrubber``).
    package let logger: Logger
    /// What ``logger`` scrubs: every identifier of the running batch (none between batches).
    package let logScrubber = LogScrubber()
    /// The data sources searched for every job.
    package let connectors: [any Connector]
    /// Where job-ended and overdue notifications are queued (nil: none configured).
    package let notifications: Notifications?
    /// What this process has done so far (for `--metrics-file`).
    package private(set) var stats = RunStats()
    /// Most jobs scanned together in one pass over the sources.
    package let maxBatchJobs: Int
    /// The SSHSIG namespace of request signatures.
    package static let requestNamespace = SignatureCheck.namespace

    let parser: RequestParser
    let intakeStage: RequestIntake
    let scanner: ScanCoordinator
    let eraser: ErasureCoordinator
    let sealer: Sealer
    let concluder: JobConcluder

    /// Assembles the stages. `finisher` chooses how a job is published (bundler for export, eraser
    /// for delete, summary otherwise).
    package init(
        layout: SpoolLayout, config: SpoolConfig, configuration: Configuration = Configuration(),
        connectors: [any Connector] = [],
        finisher: @escaping @Sendable (RequestAction) -> any JobFinisher = { _ in SummaryFinisher() },
        notifications: Notifications? = nil, audit: any AuditSink = DiscardingAuditSink(), logger: Logger
    ) throws {
        self.layout = layout
        self.config = config
        self.configuration = configuration
        self.store = JobStore(layout: layout)
        self.pseudonymizer = try Pseudonymizer.load(layout)
        self.audit = audit
        self.logger = logScrubber.wrap(logger)
        self.connectors = connectors
        self.notifications = notifications
        self.maxBatchJobs = configuration.maxBatchJobs ?? config.maxBatchJobs
        self.stats.lastSuccess = configuration.previousLastSuccess
        self.parser = RequestParser(defaultRegulation: config.defaultRegulation, languages: config.languages)
        let runner = ConnectorRunner(concurrency: config.concurrency)
        self.intakeStage = try RequestIntake(
            layout: layout, config: config, store: store, parser: parser, pseudonymizer: pseudonymizer, audit: audit,
            logger: self.logger,
            settleSeconds: configuration.settleSeconds ?? config.settleSeconds,
            rejectAfterSeconds: configuration.rejectAfterSeconds ?? config.rejectAfterSeconds,
            forceDryRun: configuration.forceDryRun, notifications: notifications)
        self.scanner = ScanCoordinator(
            connectors: connectors, runner: runner, audit: audit, logger: self.logger, logScrubber: logScrubber,
            progress: configuration.progress, maxRounds: configuration.maxExpansionRounds)
        self.eraser = ErasureCoordinator(
            layout: layout, connectors: connectors, runner: runner, audit: audit, logger: self.logger,
            logScrubber: logScrubber)
        self.sealer = Sealer(
            layout: layout, logger: self.logger, finisher: finisher, concurrency: configuration.sealConcurrency)
        self.concluder = JobConcluder(
            layout: layout, store: store, pseudonymizer: pseudonymizer, audit: audit, logger: self.logger,
            notifications: notifications,
            logScrubber: logScrubber)
    }

    /// Seconds a drop must stay unchanged before it is taken.
    package var settleSeconds: Double { intakeStage.settleSeconds }
    /// When the intake next expects a waiting drop to settle.
    package var nextSettleTime: Date? { intakeStage.nextSettleTime }

    /// Puts the spool back in order after a crash (``SpoolRecovery``).
    package func recover() throws -> RecoveryReport {
        let report = try SpoolRecovery(
            layout: layout, config: config, store: store, parser: parser, pseudonymizer: pseudonymizer,
            forceDryRun: configuration.forceDryRun, audit: audit, logger: logger, concluder: concluder
        ).recover()
        stats.jobsFinished[.failed, default: 0] += report.setAside.count
        return report
    }

    /// One look at the inbox (``RequestIntake``): refuses what must be refused, claims what has settled.
    package func intake(now: Date = Date()) throws -> IntakeResult {
        let result = try intakeStage.intake(now: now)
        stats.rejected += result.rejected.count
        return result
    }

    /// Marks jobs that passed their deadline without ending (journaled and notified once per job).
    @discardableResult
    package func checkOverdue(now: Date = DSARClock.now()) throws -> [String] { try concluder.checkOverdue(now: now) }

    /// Marks open jobs whose deadline is at most `due_soon_days` away (journaled and notified once per job).
    package func checkDueSoon(now: Date = DSARClock.now()) throws -> [String] {
        try concluder.checkDueSoon(days: config.dueSoonDays, now: now)
    }

    /// Records that a run or watch pass ended without a failed or partial job.
    func markSuccess(_ now: Date = Date()) { stats.lastSuccess = now }

    /// Removes a subject's identifier values from free text (a plugin's error message may echo them)
    /// before it reaches a job record, manifest or the journal (see ``IdentifierScrubber``).
    package static func scrub(_ text: String, _ ids: [Identifier]) -> String { IdentifierScrubber(ids).scrub(text) }

    /// Runs every pending job as one batch: each connector reads its sources once for all of them.
    /// `stop` is checked before each job is finished; unfinished jobs stay PENDING. Returns the
    /// finished jobs' records without their history (the whole record is in `jobs/`), so that a
    /// batch of thousands holds little.
    package func runPending(stop: StopPolicy = .never) async throws -> [JobRecord] {
        let ids = try store.pendingJobs()
        guard !ids.isEmpty, !stop.requested() else { return [] }
        do {
            return try await runBatch(ids, stop: stop)
        } catch {
            // An error that stops the batch (a full disk under the journal, say) is not a crash: the
            // jobs it left RUNNING go back to PENDING now, where that still works (else recovery does it).
            for id in ids {
                if let r = try? store.load(id), r.status == .running { try? store.requeue([id]) }
            }
            throw error
        }
    }

    func runBatch(_ ids: [String], stop: StopPolicy) async throws -> [JobRecord] {
        let started = try BatchStart.start(
            ids, layout: layout, config: config, store: store, parser: parser, audit: audit,
            fail: { try self.fail($0, reason: $1) })
        var jobs = started.jobs
        var closures = started.closures
        guard !jobs.isEmpty else { return [] }
        // Logs are per batch: every line written while it runs is scrubbed of all its identifiers.
        var batchIdentifiers = Set(closures.values.flatMap { $0.identifiers })
        logScrubber.set(batchIdentifiers)
        defer { logScrubber.clear() }
        // One scratch directory for the batch (plugins' capture files); findings stay in memory
        // until they are sealed, so no job needs a directory of its own.
        let work = layout.tmp + "/batch"
        try FileSystem.makeDirectory(work, mode: 0o700)
        defer { try? FileSystem.removeTree(work) }
        var scanJobs = jobs.map { j in
            ScanJob(
                jobID: j.record.jobID, action: j.request.action,
                identifiers: closures[j.record.jobID]!.identifiers.sorted(),
                dryRun: j.record.dryRun, workDir: work)
        }
        logger.info("batch started", metadata: ["jobs": "\(jobs.count)", "connectors": "\(connectors.count)"])
        let batchStart = Date()
        stats.batches += 1
        defer { stats.lastBatchSeconds = Date().timeIntervalSince(batchStart) }
        let subjects = Dictionary(uniqueKeysWithValues: jobs.map { ($0.record.jobID, $0.record.subject) })
        let plan = BatchPlan(
            jobs.map { BatchPlan.Job(action: $0.request.action, dryRun: $0.record.dryRun) }, maxJobs: maxBatchJobs)
        var finished: [JobRecord] = []
        for (n, segment) in plan.segments.enumerated() {
            // A stop asked for before a segment starts: its jobs (and the rest) wait for the next run.
            if n > 0 && stop.requested() {
                try store.requeue(plan.jobs(from: n).map { jobs[$0].record.jobID })
                break
            }
            // The scan of the job in hand goes on through a stop, until the grace period ends.
            let scanned: ScanResult
            do {
                scanned = try await scanner.scan(
                    segment.jobs.map { scanJobs[$0] }, subjects: subjects, stop: stop,
                    batchIdentifiers: &batchIdentifiers)
            } catch is GraceExpired {
                logger.notice(
                    "grace period over during a scan; its jobs are put back",
                    metadata: ["jobs": "\(segment.jobs.count)"])
                try store.requeue(plan.jobs(from: n).map { jobs[$0].record.jobID })
                break
            }
            stats.add(scanned.totals)
            CrashPoint.hit("job.scanned")
            let sealWork = { (ks: [Int], erasure: [String: ErasureOutcome]) in
                ks.map { k in
                    let id = jobs[k].record.jobID
                    return SealWork(
                        record: jobs[k].record, request: jobs[k].request, outcomes: scanned.results[id] ?? [],
                        derived: scanned.derived[id] ?? [],
                        erasure: erasure[id])
                }
            }
            // Dry-run deletes: where a source can undo its erasure (a transaction), it is carried out
            // and rolled back, so the receipt gives the counts that would change.
            let rehearsed = await eraser.rehearse(
                segment.rehearsed.map {
                    let id = jobs[$0].record.jobID
                    let all = Set(closures[id]!.identifiers + (scanned.derived[id] ?? []).map(\.0))
                    return EraseJob(jobID: id, identifiers: all.sorted(), dryRun: true, workDir: work)
                })
            if !segment.erased.isEmpty && !stop.expired() {
                // Exports of this segment were searched before the erasure; seal them first.
                finished += try await finish(sealWork(segment.sealedBeforeErasure, rehearsed), stop)
                let ids = segment.erased.map { jobs[$0].record.jobID }
                try eraser.keepClosures(ids, &closures, scanned)
                // Erased and verified (the second search after erasure) with the whole set.
                let erasure = try await eraser.eraseAndVerify(
                    ids.map {
                        EraseJob(jobID: $0, identifiers: closures[$0]!.identifiers, dryRun: false, workDir: work)
                    },
                    subjects: subjects)
                finished += try await finish(sealWork(segment.erased, erasure), stop)
            } else {
                finished += try await finish(sealWork(segment.finishOrder, rehearsed), stop)
            }
            // What this segment no longer needs is let go now (a large batch runs in many segments).
            for k in segment.jobs {
                jobs[k].request.identifiers = []
                jobs[k].record.history = []
                jobs[k].record.identifiers = []
                scanJobs[k].identifiers = []
                closures[jobs[k].record.jobID] = nil
            }
        }
        return finished
    }

    /// Seals and concludes `work` in order; returns the final records without their history.
    func finish(_ work: [SealWork], _ stop: StopPolicy) async throws -> [JobRecord] {
        let records = try await sealer.sealAll(work, shouldStop: stop.expired) { try concluder.conclude($0) }
        for r in records { stats.finished(r, records: true) }
        return records.map { r in
            var r = r
            r.history = []
            return r
        }
    }

    /// Ends a job that cannot be run as FAILED (``JobConcluder/fail(_:reason:)``).
    func fail(_ jobID: String, reason: String) throws {
        if let rec = try concluder.fail(jobID, reason: reason) { stats.finished(rec, records: false) }
    }
}
