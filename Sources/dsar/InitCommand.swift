import ArgumentParser
import DSARCore
import Foundation

extension Dsar {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Create the spool directories with safe modes, a commented config.yaml and the pseudonym key.",
            discussion: "Idempotent: an existing spool keeps its files; directory modes are corrected.")

        @OptionGroup var options: SpoolOptions

        @Option(
            help: ArgumentHelp("Group that may write inbox/ and read outbox/ (the SFTP users).", valueName: "group"))
        var group: String?

        func run() async throws {
            try await Exit.guarding {
                let layout = options.layout
                try SpoolSession.initialize(layout, group: group)
                print("spool ready: \(layout.root)")
                for (path, mode) in layout.directories {
                    print("  \(String(mode, radix: 8).leftPad(4))  \(path)")
                }
                print("config: \(layout.config)")
            }
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
    func padded(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
