import ArgumentParser
import DSARCore
import Foundation

/// The `dsar` command line: a thin shell over DSARCore.
@main
struct Dsar: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dsar",
        abstract: "Answer data-subject requests (GDPR Art. 15/17, CCPA) from a crash-safe filesystem spool.",
        discussion: """
            Requests are JSON files dropped into <spool>/inbox (e.g. over SFTP). `dsar run` processes every
            ready request and exits; `dsar watch` keeps doing so until SIGTERM. See README.md.

            EXIT CODES
              0   success
              1   some jobs ended FAILED or PARTIAL
              2   some requests were rejected (moved to rejected/ with a reason), no job failed
              64  usage error (bad arguments)
              65  bad input (e.g. a request `dsar submit` would write is invalid)
              64  also: `dsar retry` of a job that is not FAILED or PARTIAL
              66  not found (unknown job id, missing file)
              74  I/O error
              75  spool busy: another dsar holds the lock (rerun, or use --wait)
              77  permission problem (key or directory mode)
              78  configuration error
            """,
        version: DSARVersion.string,
        subcommands: [
            Init.self, Run.self, Watch.self, Submit.self, Status.self, Events.self, Extend.self, Retry.self,
            Connectors.self, Keygen.self, Decrypt.self, Verify.self, Audit.self, DeployExamplesCommand.self,
            Close.self,
            Deliver.self,
            Serve.self,
        ]
    )

    /// The process entry point: no core dumps (they would hold personal data), then the usual
    /// argument parsing and dispatch of `AsyncParsableCommand.main()`.
    static func main() async {
        ProcessHardening.disableCoreDumps()
        do {
            // An invalid $DSAR_NOW (the testing aid that freezes the clock) is an error, never the real time.
            do { try DSARClock.validate() } catch let e as DSARError {
                Exit.printError(e.message)
                throw ExitCode.validationFailure
            }
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Options every spool command takes.
struct SpoolOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Spool directory (default: $DSAR_SPOOL, else ./spool).", valueName: "dir"))
    var spool: String?

    @Option(
        name: .long,
        help: ArgumentHelp("Log format: auto (text on a terminal, json otherwise), text or json.", valueName: "format"))
    var logFormat: LogFormat = .auto

    @Option(
        name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    var layout: SpoolLayout {
        SpoolLayout(
            root: spool ?? ProcessInfo.processInfo.environment["DSAR_SPOOL"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "spool")
    }

    func validate() throws {
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }
}
