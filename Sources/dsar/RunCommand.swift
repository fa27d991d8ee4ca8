import ArgumentParser
import DSARCore
import Foundation
import Logging

/// Overrides of the spool config shared by `run` and `watch`.
struct IntakeOptions: ParsableArguments {
    @OptionGroup var connectorOptions: ConnectorOptions

    @Option(
        help: ArgumentHelp(
            "Seconds a drop's size and mtime must stay unchanged (default: config, else 2).", valueName: "seconds"))
    var settle: Double?

    @Option(
        help: ArgumentHelp(
            "Seconds an unparseable drop is retried before it is rejected (default: config, else 600).",
            valueName: "seconds"))
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

    @Option(
        help: ArgumentHelp(
            "Scan progress per connector on stderr: auto (on a terminal, after 1 s), always or never.",
            valueName: "when"))
    var progress: ProgressMode = .auto

    @Option(
        help: ArgumentHelp(
            "Seconds the jobs in hand may take to finish (sealed and published) after SIGTERM/SIGINT; past it they are put back to PENDING.",
            valueName: "seconds"))
    var grace: Double = 30

    func validate() throws {
        if let s = settle, !(0...3600).contains(s) {
            throw ValidationError("--settle must be between 0 and 3600 seconds")
        }
        if !(0...3600).contains(grace) { throw ValidationError("--grace must be between 0 and 3600 seconds") }
        if let r = rejectAfter, !(0...(30 * 86400)).contains(r) {
            throw ValidationError("--reject-after must be between 0 and 2592000 seconds")
        }
        if let m = metricsFile {
            let dir = (FileSystem.absolute(m) as NSString).deletingLastPathComponent
            guard (try? FileSystem.status(dir))??.kind == .directory else {
                throw ValidationError(
                    "the directory of --metrics-file \(m) does not exist: create \(dir) (writable by dsar) or choose another path"
                )
            }
        }
    }

    /// The processor's configuration from these flags (the spool config fills in the rest).
    func configuration(logFormat: LogFormat) -> Processor.Configuration {
        var c = Processor.Configuration()
        c.settleSeconds = settle
        c.rejectAfterSeconds = rejectAfter
        c.forceDryRun = dryRun
        let tty = isatty(2) != 0
        switch progress {
        case .never: c.progress = nil
        case .always: c.progress = ScanProgress(terminal: tty, showAfter: 0)
        case .auto: c.progress = tty && logFormat != .json ? ScanProgress(terminal: true, showAfter: 1) : nil
        }
        c.previousLastSuccess = metricsFile.flatMap { MetricsFile.previousLastSuccess(at: $0) }
        return c
    }

    /// Opens the spool for `purpose` with these flags.
    func open(_ options: SpoolOptions, purpose: String, mode: SpoolService.Mode, logger: Logger) throws -> SpoolService
    {
        let session = try SpoolSession.open(
            options.layout, connectorsDir: connectorOptions.connectors, wait: wait, purpose: purpose,
            configuration: configuration(logFormat: options.logFormat), logger: logger)
        return SpoolService(session: session, mode: mode, metricsFile: metricsFile)
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
                let service = try intake.open(options, purpose: "dsar run", mode: .run, logger: logger)
                let p = service.processor
                let recovery = try service.recover()
                for id in recovery.setAside {
                    print(
                        "  \(id)  set aside as FAILED: runs died while it was running \(service.session.config.maxCrashes) times (see dsar status \(id))"
                    )
                }
                let pass = try await service.runOnce(stop: StopSignal.policy(grace: intake.grace))
                let finished = pass.finished
                printSummary(pass.intake, finished, pseudonymizer: p.pseudonymizer)
                if !pass.expired.isEmpty {
                    print(
                        "removed \(pass.expired.count) outbox entries older than \(service.session.config.outboxRetentionDays) days: \(pass.expired.joined(separator: ", "))"
                    )
                }
                if let d = pass.notified {
                    print(
                        "notifications: \(d.sent) sent, \(d.failed) failed (kept in notify/, retried on the next run)\(d.abandoned > 0 ? ", \(d.abandoned) dropped (notifier no longer configured)" : "")"
                    )
                }
                if let head = pass.checkpoint {
                    print("journal: signed checkpoint at seq \(head.seq)")
                }
                if !recovery.setAside.isEmpty || pass.hasUnsuccessful { return 1 }
                if !pass.intake.rejected.isEmpty { return 2 }
                return 0
            }
            if code != 0 { throw ExitCode(code) }
        }

        func printSummary(_ report: IntakeResult, _ finished: [JobRecord], pseudonymizer: Pseudonymizer) {
            let count = { (s: JobStatus) in finished.filter { $0.status == s }.count }
            print(
                "dsar run: \(report.claims.count) claimed, \(finished.count) finished "
                    + "(\(count(.completed)) completed, \(count(.partial)) partial, \(count(.failed)) failed), "
                    + "\(report.rejected.count) rejected, \(report.waiting.count) waiting")
            for r in finished {
                print(
                    "  \(r.jobID)  \(r.action.rawValue.padded(6))  \(r.status.rawValue.padded(9))  \(r.outbox ?? r.error ?? "")"
                )
            }
            // Drop names may be personal data (alice@example.com.json) and this output may end up in a
            // log (cron mail, journald): drops are named by their pseudonyms, which the `.reason`
            // files in rejected/ also give next to the name, and by reasons that quote no value of the
            // drop (the full reason is in rejected/<name>.reason).
            func pseudonym(_ name: String) -> String { pseudonymizer.dropName(name) }
            for r in report.rejected {
                print(
                    "  rejected \(pseudonym(r.name)): \(r.redacted)"
                )
            }
            for w in report.waiting {
                if let what = report.waitingFor[w] {
                    print(
                        "  waiting  \(pseudonym(w)) for its .sig\(what.hasSuffix(".sig") ? "" : " (\(what))") (signed requests are required; rejected after --reject-after)"
                    )
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

        @Option(
            help: ArgumentHelp(
                "Seconds between full rescans of the inbox (default: config, else 30).", valueName: "seconds"))
        var rescan: Double?

        func validate() throws {
            if let r = rescan, !(0.1...86400).contains(r) {
                throw ValidationError("--rescan must be between 0.1 and 86400 seconds")
            }
        }

        func run() async throws {
            let logger = LogSetup.logger(options)
            StopSignal.install()
            try await Exit.guarding {
                let service = try intake.open(options, purpose: "dsar watch", mode: .watch, logger: logger)
                _ = try service.recover()
                let loop = WatchLoop(rescanSeconds: rescan ?? service.session.config.rescanSeconds)
                _ = try await loop.run(service, logger: logger, stop: StopSignal.policy(grace: intake.grace))
                try await service.finishWatching()
            }
        }
    }
}
