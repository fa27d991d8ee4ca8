import ArgumentParser
import DSARCore
import Foundation

/// Example deployment files (systemd units, timer, crontab, sshd chroot block, setup script),
/// written out by `dsar deploy-examples --out DIR`.
///
/// The texts are the files in `Sources/dsar/Resources/deploy/`, embedded into the binary at build
/// time (`PackageResources`), so an installed `dsar` carries them. `{{name}}` tokens in them are
/// replaced with the resource `name.inc` (without its final newline): the systemd sandbox both
/// units share.
enum DeployExamples {
    /// The files written, in order, with their modes and embedded bytes.
    static let files: [(name: String, mode: Int, bytes: [UInt8])] = [
        ("crontab", 0o644, PackageResources.crontab),
        ("dsar-nightly.service", 0o644, PackageResources.dsar_nightly_service),
        ("dsar-nightly.timer", 0o644, PackageResources.dsar_nightly_timer),
        ("dsar-watch.service", 0o644, PackageResources.dsar_watch_service),
        ("dsar-serve.service", 0o644, PackageResources.dsar_serve_service),
        ("setup.sh", 0o755, PackageResources.setup_sh),
        ("sshd_config.d-dsar.conf", 0o644, PackageResources.sshd_config_d_dsar_conf),
        ("witness-syslog.sh", 0o755, PackageResources.witness_syslog_sh),
    ]

    /// Tokens replaced in every file, each by the resource `<token>.inc`.
    static let includes: [(token: String, bytes: [UInt8])] = [("hardening", PackageResources.hardening_inc)]

    /// The bytes of one example, its `{{token}}`s replaced.
    static func text(_ bytes: [UInt8]) -> [UInt8] {
        var text = String(decoding: bytes, as: UTF8.self)
        for inc in includes where text.contains("{{\(inc.token)}}") {
            var part = String(decoding: inc.bytes, as: UTF8.self)
            if part.hasSuffix("\n") { part.removeLast() }
            text = text.replacingOccurrences(of: "{{\(inc.token)}}", with: part)
        }
        return Array(text.utf8)
    }
}

extension Dsar {
    struct DeployExamplesCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deploy-examples",
            abstract:
                "Write example deployment files: systemd units (watch, serve) and timer, crontab, sshd chroot block, setup.sh, a journal witness.",
            discussion: "See README, \"Running it for real\". Existing files in DIR are not overwritten.")

        @Option(help: ArgumentHelp("Directory to write them into.", valueName: "dir")) var out: String

        func run() async throws {
            try await Exit.guarding {
                let dir = FileSystem.absolute(out)
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for f in DeployExamples.files {
                    let path = dir + "/" + f.name
                    if FileSystem.exists(path) {
                        print("kept     \(path) (exists)")
                        continue
                    }
                    try FileSystem.writeAtomically(path, DeployExamples.text(f.bytes), mode: mode_t(f.mode))
                    print("written  \(path)")
                }
            }
        }
    }
}
