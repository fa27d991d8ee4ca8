import ArgumentParser
import DSARCore
import Foundation

/// Overrides of the spool config shared by `run` and `watch`.
struct IntakeOptions: ParsableArguments {
    @OptionGroup var connectorOptions: ConnectorOptions

    @Option(help: ArgumentHelp("Seconds a drop's size and mtime must stay unchanged (default: config, else 2).", valueName: "seconds"))
    var settle: Double?

    @Option(help: ArgumentHelp("Seconds an unparseable drop is retried before it is rejected (default: config, else 600).", valueName: "seconds"))
    var rejectAfter: Double?

    @Flag(help: "Wait for the spool lock instead of exiting when another dsar holds it.")
    var wait = false

    @Flag(help: "Report what would be done; change no data source (every job is a dry run).")
    var dryRun = false

    @Option(
        help: ArgumentHelp(
            "Write Prometheus metrics (node_exporter textfile format) to this file, atomically, at the end of the run (watch: periodically).",
            valueName: "path"))
    var metricsFile: String?

    @Option(help: ArgumentHelp("Scan progress per connector on stderr: auto (on a terminal, after 1 s), always or never.", valueName: "when"))
    var progress: ProgressMode = .auto

    @Option(
        help: ArgumentHelp(
            "Seconds the jobs in hand may take to finish (sealed and published) after SIGTERM/SIGINT; past it they are put back to PENDING.",
            valueName: "seconds"))
    var grace: Double = 30

    func validate() throws {
        if let s = settle, !(0...3600).contains(s) { throw ValidationError("--settle must be between 0 and 3600 seconds") }
        if !(0...3600).contains(grace) { throw ValidationError("--grace must be between 0 and 3600 seconds") }
        if let r = rejectAfter, !(0...(30 * 86400)).contains(r) {
            throw ValidationError("--reject-after must be between 0 and 2592000 seconds")
        }
        if let m = metricsFile {
            let dir = (FileSystem.absolute(m) as NSString).deletingLastPathComponent
            guard (try? FileSystem.status(dir))??.kind == .directory else {
                throw ValidationError("the directory of --metrics-file \(m) does not exist: create \(dir) (writable by dsar) or choose another path")
            }
        }
    }

    func apply(to p: Processor, logFormat: LogFormat) {
        if let s = settle { p.settleSeconds = s }
        if let r = rejectAfter { p.rejectAfterSeconds = r }
        p.forceDryRun = dryRun
        let tty = isatty(2) != 0
        switch progress {
        case .never: p.progress = nil
        case .always: p.progress = ScanProgress(terminal: tty, showAfter: 0)
        case .auto: p.progress = tty && logFormat != .json ? ScanProgress(terminal: true, showAfter: 1) : nil
        }
        if let path = metricsFile { p.stats.lastSuccess = MetricsFile.previousLastSuccess(at: path) }
    }

    /// Writes `--metrics-file` (if given) for the spool's state and what `p` has done. A failure is
    /// logged, never fatal: monitoring must not stop the processing it watches (a stale file shows it).
    func writeMetrics(_ p: Processor, mode: String) {
        guard let path = metricsFile else { return }
        do {
            let records = try p.store.all()
            try MetricsFile.write(
                path,
                MetricsFile.render(
                    layout: p.layout, records: records, stats: p.stats, notificationsPending: p.notifications?.queued().count ?? 0, mode: mode))
        } catch {
            p.logger.error("cannot write the metrics file", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

/// When scan progress is drawn.
enum ProgressMode: String, ExpressibleByArgument, CaseIterable {
    case auto, always, never
}

extension Dsar {
    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "run",
            abstract: "Process every ready request in the inbox, then exit (for cron or a systemd timer).",
            discussion: """
                Recovers what an interrupted run left, takes every drop that has settled, runs all jobs as one
                batch and prints a summary. Exit 0 when all succeeded, 1 when a job failed or ended partial,
                2 when requests were rejected.
                """)

        @OptionGroup var options: SpoolOptions
        @OptionGroup var intake: IntakeOptions

        func run() async throws {
            let logger = LogSetup.logger(options)
            // SIGTERM/SIGINT: the jobs in hand finish within --grace, then the run exits.
            StopSignal.install()
            let code = try await Exit.guarding { () -> Int32 in
                let session = try SpoolSession.open(
                    options.layout, connectorsDir: intake.connectorOptions.connectors, wait: intake.wait, purpose: "dsar run",
                    logger: logger)
                let p = session.processor
                intake.apply(to: p, logFormat: options.logFormat)
                let recovery = try p.recover()
                for id in recovery.setAside {
                    print("  \(id)  set aside as FAILED: runs died while it was running \(session.config.maxCrashes) times (see dsar status \(id))")
                }
                let first = Date()
                var report = try p.intake(now: first)
                if !report.waiting.isEmpty {
                    // The settle rule: a second look at least --settle after the first.
                    let wakeAt = first.addingTimeInterval(p.settleSeconds)
                    let delay = wakeAt.timeIntervalSinceNow
                    if delay > 0 { try await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
                    let second = try p.intake(now: max(Date(), wakeAt))
                    report.claimed += second.claimed
                    report.rejected += second.rejected
                    report.waiting = second.waiting
                    report.waitingFor = second.waitingFor
                }
                try p.checkOverdue()
                let finished = try await p.runPending(stop: StopSignal.policy(grace: intake.grace))
                printSummary(report, finished, pseudonymizer: p.pseudonymizer)
                let expired = try OutboxRetention.expire(p.layout, days: session.config.outboxRetentionDays, audit: p.audit)
                if !expired.isEmpty {
                    print("removed \(expired.count) outbox entries older than \(session.config.outboxRetentionDays) days: \(expired.joined(separator: ", "))")
                }
                if let n = p.notifications, !n.queued().isEmpty {
                    // Every queued notification, including ones that failed in earlier runs.
                    let d = await n.deliver(retryNow: true)
                    print("notifications: \(d.sent) sent, \(d.failed) failed (kept in notify/, retried on the next run)\(d.abandoned > 0 ? ", \(d.abandoned) dropped (notifier no longer configured)" : "")")
                }
                let bad = finished.contains(where: { $0.status == .failed || $0.status == .partial })
                if !bad { p.stats.lastSuccess = Date() }
                intake.writeMetrics(p, mode: "run")
                if let head = try await session.journal.checkpointAndWitness() {
                    print("journal: signed checkpoint at seq \(head.seq)")
                }
                if !recovery.setAside.isEmpty || finished.contains(where: { $0.status == .failed || $0.status == .partial }) { return 1 }
                if !report.rejected.isEmpty { return 2 }
                return 0
            }
            if code != 0 { throw ExitCode(code) }
        }

        func printSummary(_ report: Processor.IntakeReport, _ finished: [JobRecord], pseudonymizer: Pseudonymizer) {
            let count = { (s: JobStatus) in finished.filter { $0.status == s }.count }
            print(
                "dsar run: \(report.claimed.count) claimed, \(finished.count) finished "
                    + "(\(count(.completed)) completed, \(count(.partial)) partial, \(count(.failed)) failed), "
                    + "\(report.rejected.count) rejected, \(report.waiting.count) waiting")
            for r in finished {
                print("  \(r.jobID)  \(r.action.rawValue.padded(6))  \(r.status.rawValue.padded(9))  \(r.outbox ?? r.error ?? "")")
            }
            // Drop names may be personal data (alice@example.com.json) and this output may end up in a
            // log (cron mail, journald): drops are named by their pseudonyms, which the `.reason`
            // files in rejected/ also give next to the name.
            func pseudonym(_ name: String) -> String { pseudonymizer.dropName(name) }
            for r in report.rejected {
                print("  rejected \(pseudonym(r.name)): \(r.reason.replacingOccurrences(of: r.name, with: pseudonym(r.name)))")
            }
            for w in report.waiting {
                if let what = report.waitingFor[w] {
                    print("  waiting  \(pseudonym(w)) for its .sig\(what.hasSuffix(".sig") ? "" : " (\(what))") (signed requests are required; rejected after --reject-after)")
                } else {
                    print("  waiting  \(pseudonym(w)) (not settled or incomplete; taken by a later run)")
                }
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Process requests as they arrive, until SIGTERM or SIGINT.",
            discussion: """
                Uses inotify on inbox/ as a hint plus a periodic rescan; the settle rule still applies. On the
                first SIGTERM/SIGINT it finishes the job in hand, leaves claimed jobs queued, and exits 0.
                """)

        @OptionGroup var options: SpoolOptions
        @OptionGroup var intake: IntakeOptions

        @Option(help: ArgumentHelp("Seconds between full rescans of the inbox (default: config, else 30).", valueName: "seconds"))
        var rescan: Double?

        func validate() throws {
            if let r = rescan, !(0.1...86400).contains(r) { throw ValidationError("--rescan must be between 0.1 and 86400 seconds") }
        }

        func run() async throws {
            let logger = LogSetup.logger(options)
            StopSignal.install()
            try await Exit.guarding {
                let session = try SpoolSession.open(
                    options.layout, connectorsDir: intake.connectorOptions.connectors, wait: intake.wait, purpose: "dsar watch",
                    logger: logger)
                let p = session.processor
                intake.apply(to: p, logFormat: options.logFormat)
                _ = try p.recover()
                intake.writeMetrics(p, mode: "watch")
                var lastMetrics = Date()
                var unsuccessful = p.stats.unsuccessfulJobs
                var finishedBefore = 0
                var loop = WatchLoop(rescanSeconds: rescan ?? session.config.rescanSeconds)
                let journal = session.journal
                let retention = session.config.outboxRetentionDays
                let metrics = intake
                loop.afterPass = { p in
                    try p.checkOverdue()
                    if let n = p.notifications, !n.queued().isEmpty {
                        let d = await n.deliver()
                        if d.sent + d.failed > 0 { logger.info("notifications delivered", metadata: ["sent": "\(d.sent)", "failed": "\(d.failed)"]) }
                    }
                    let finishedNow = p.stats.jobsFinished.values.reduce(0, +)
                    if p.stats.unsuccessfulJobs == unsuccessful { p.stats.lastSuccess = Date() }
                    unsuccessful = p.stats.unsuccessfulJobs
                    if finishedNow != finishedBefore || Date().timeIntervalSince(lastMetrics) >= 15 {
                        metrics.writeMetrics(p, mode: "watch")
                        lastMetrics = Date()
                        finishedBefore = finishedNow
                    }
                    _ = try OutboxRetention.expire(p.layout, days: retention, audit: journal)
                    if journal.sinceCheckpoint >= 100 || (journal.sinceCheckpoint > 0 && Date().timeIntervalSince(journal.lastCheckpoint) >= 600) {
                        try await journal.checkpointAndWitness()
                    }
                }
                _ = try await loop.run(p, logger: logger, stop: StopSignal.policy(grace: intake.grace))
                intake.writeMetrics(p, mode: "watch")
                if journal.sinceCheckpoint > 0 { try await journal.checkpointAndWitness() }
            }
        }
    }
}
