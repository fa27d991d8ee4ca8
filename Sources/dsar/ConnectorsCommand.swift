import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Connectors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "connectors",
            abstract: "Work with connector configs.",
            subcommands: [Check.self])

        struct Check: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "check",
                abstract:
                    "Validate every connector config; list each connector with its sources, their kinds and sizes.",
                discussion:
                    "Errors are printed as `file:line: key: what is wrong`; exit 78 when there is any. Warnings (`file:line: warning: …`, e.g. a numeric identifier type matched bare in a text log) do not change the exit status."
            )

            @OptionGroup var options: SpoolOptions
            @OptionGroup var connectorOptions: ConnectorOptions

            func run() async throws {
                try await Exit.guarding {
                    let dir = try connectorOptions.directory(layout: options.layout, explicitOnly: false)
                    let layout = options.layout
                    // The spool's settings are checked too when there is a spool (recipients, signing key, custom types).
                    let config = FileSystem.exists(layout.config) ? try SpoolConfig.load(layout) : nil
                    if config == nil {
                        FileHandle.standardError.write(
                            Data(
                                "dsar: note: no spool at \(layout.root): its settings (recipients, signing key, identifier_types) were not checked\n"
                                    .utf8))
                    }
                    let result = Preflight.check(layout: layout, config: config, connectorsDir: dir, full: true)
                    if !result.problems.isEmpty { throw ConfigProblems(result.problems) }
                    let configs = result.configs
                    print("\(configs.count) connectors in \(dir): OK")
                    // Warnings do not fail the check (exit 0): `file:line: warning: key: what`.
                    for w in configs.flatMap(\.warnings) {
                        FileHandle.standardError.write(
                            Data("\(w.file):\(w.line): warning: \(w.key): \(w.message)\n".utf8))
                    }
                    // What the subject report cannot state (GDPR Art. 15(1)): on stdout, the exit status stays.
                    let reportWarnings = ReportSettings.warnings(configs, config: config, configFile: layout.config)
                    for w in reportWarnings where !configs.contains(where: { $0.file == w.file }) {
                        print("WARNING: \(w.file): \(w.key): \(w.message)")
                    }
                    for c in configs {
                        print("\(c.name)  (\(c.type), \((c.file as NSString).lastPathComponent))")
                        for w in reportWarnings where w.file == c.file { print("    WARNING: \(w.message)") }
                        if !c.readsFiles {
                            for line in c.settings.describe(c) { print("    \(line)") }
                            continue
                        }
                        var total: Int64 = 0
                        // Each file with its kind; one that is not a regular file was reported as a problem above.
                        for e in c.inspectSources() {
                            total += e.size
                            print(
                                "    \(e.path)  \(ByteFormat.human(e.size))  \(SourceFile.describe(e.kind))\(e.problem.map { "  NOT READ: \($0)" } ?? "")"
                            )
                        }
                        print("    total \(ByteFormat.human(total))")
                    }
                }
            }
        }
    }
}

/// Where connector configs come from.
struct ConnectorOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Connector config directory (default: $DSAR_CONNECTORS, config.yaml `connectors:`, else <spool>/../connectors).",
            valueName: "dir"))
    var connectors: String?

    /// The directory to use.
    func directory(layout: SpoolLayout, explicitOnly: Bool) throws -> String {
        try ConnectorLocator.directory(explicit: connectors, layout: layout)
    }
}
