import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `type: exec`: any executable speaking the dsar plugin protocol (``ExecConnector``).
package enum ExecKind: ConnectorKind {
    package static let type = "exec"
    package static let keys = ["command", "env"]
    package static var readsFiles: Bool { false }

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> ExecSettings {
        var c = ExecSettings()
        let dir = context.dir
        // A list is argv (a relative program path is relative to this file); a string is a
        // shell command run in this file's directory.
        let isShell = y.isScalar("command")
        let given = y.strings("command", required: true)
        if let cmd = given, cmd.first?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
            y.problem(
                "command",
                isShell
                    ? "is empty: give the shell command that runs the plugin"
                    : "needs the program as its first element (a list is argv: [ plugins/lookup.py, arg ]); it is \(cmd.isEmpty ? "empty" : "an empty string")"
            )
        } else if let cmd = given {
            if isShell {
                c.command = ["/bin/sh", "-c", "cd \"$DSAR_CONNECTOR_DIR\" && " + cmd[0]]
            } else {
                c.command = cmd
                if cmd[0].contains("/") {
                    let exe = cmd[0].hasPrefix("/") ? cmd[0] : (dir + "/" + cmd[0] as NSString).standardizingPath
                    c.command[0] = exe
                    if context.checks.sources && access(exe, X_OK) != 0 {
                        y.problem("command", "\(exe) is not an executable file")
                    }
                }
            }
            c.environment["DSAR_CONNECTOR_DIR"] = dir
        }
        if let env = y.map("env") {
            for k in env.keys { if let v = env.string(k) { c.environment[k] = v } }
        }
        return c
    }
}

/// The settings of a `type: exec` connector.
package struct ExecSettings: ConnectorSettings {
    package static var kind: any ConnectorKind.Type { ExecKind.self }
    /// The plugin's argv (a `command:` string runs as `/bin/sh -c` in the YAML file's directory).
    package var command: [String] = []
    /// `env:` plus `DSAR_CONNECTOR_DIR`.
    package var environment: [String: String] = [:]

    /// No command yet.
    package init() {}

    package func connector(_ config: ConnectorConfig) -> any Connector {
        ExecConnector(
            name: config.name, metadata: config.metadata, command: command, environment: environment,
            timeoutSeconds: config.timeoutSeconds)
    }

    package var summary: [String] { ["command: \(command.joined(separator: " "))"] }
}
