import ArgumentParser
import DSARCore
import Foundation

/// Example deployment files (systemd units, timer, crontab, sshd chroot block, setup script),
/// written out by `dsar deploy-examples --out DIR`.
///
/// The texts are resource files in `Sources/dsar/Resources/deploy/` (in the build: the
/// `dsar_dsar.resources` bundle next to the binary). `{{name}}` tokens in them are replaced with
/// the resource `name.inc` (without its final newline): the systemd sandbox both units share.
enum DeployExamples {
    /// The files written, in order, with their modes.
    static let files: [(name: String, mode: Int)] = [
        ("crontab", 0o644),
        ("dsar-nightly.service", 0o644),
        ("dsar-nightly.timer", 0o644),
        ("dsar-watch.service", 0o644),
        ("setup.sh", 0o755),
        ("sshd_config.d-dsar.conf", 0o644),
        ("witness-syslog.sh", 0o755),
    ]

    /// Tokens replaced in every file, each by the resource `<token>.inc`.
    static let includes = ["hardening"]

    /// The directory holding the resource files, or an error saying how to get it.
    ///
    /// Checked before `Bundle.module` is touched: its accessor stops the process (`fatalError`) when
    /// the bundle is missing, as it is next to a binary copied on its own.
    static func directory() throws -> String {
        let bundleName = "dsar_dsar.resources"
        let beside = Bundle.main.bundleURL.appendingPathComponent(bundleName).path
        guard FileSystem.exists(beside + "/deploy") else {
            throw DSARError(
                .notFound,
                "the deployment examples are resource files in \(bundleName) beside the dsar binary, and \(beside) does not exist: copy \(bundleName) from the build directory (.build/debug or .build/release) next to \(Bundle.main.bundleURL.path)/dsar, or run dsar deploy-examples from the build directory",
                path: beside)
        }
        guard let url = Bundle.module.url(forResource: "deploy", withExtension: nil) else {
            throw DSARError(.notFound, "\(beside)/deploy is not a resource directory of dsar", path: beside)
        }
        return url.path
    }

    /// The bytes of one example, its `{{token}}`s replaced.
    static func text(_ name: String, in dir: String) throws -> [UInt8] {
        var text = String(decoding: try FileSystem.readFile(dir + "/" + name, limit: 1 << 20), as: UTF8.self)
        for token in includes where text.contains("{{\(token)}}") {
            var part = String(decoding: try FileSystem.readFile(dir + "/" + token + ".inc", limit: 1 << 20), as: UTF8.self)
            if part.hasSuffix("\n") { part.removeLast() }
            text = text.replacingOccurrences(of: "{{\(token)}}", with: part)
        }
        return Array(text.utf8)
    }
}

extension Dsar {
    struct DeployExamplesCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deploy-examples",
            abstract: "Write example deployment files: systemd units and timer, crontab, sshd chroot block, setup.sh, a journal witness.",
            discussion: "See README, \"Running it for real\". Existing files in DIR are not overwritten.")

        @Option(help: ArgumentHelp("Directory to write them into.", valueName: "dir")) var out: String

        func run() async throws {
            try await Exit.guarding {
                let resources = try DeployExamples.directory()
                let dir = FileSystem.absolute(out)
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for f in DeployExamples.files {
                    let path = dir + "/" + f.name
                    if FileSystem.exists(path) {
                        print("kept     \(path) (exists)")
                        continue
                    }
                    try FileSystem.writeAtomically(path, try DeployExamples.text(f.name, in: resources), mode: mode_t(f.mode))
                    print("written  \(path)")
                }
            }
        }
    }
}
