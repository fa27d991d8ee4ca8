import DSARCore
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The repository root (found from this file's location).
package let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()

/// The `dsar` binary under test: `$DSAR_BIN`, else the one beside the test bundle, else `.build/debug/dsar`.
package let dsarBinary: String = {
    if let b = ProcessInfo.processInfo.environment["DSAR_BIN"], !b.isEmpty { return b }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "dsar"
    ).path
    if FileManager.default.isExecutableFile(atPath: beside) { return beside }
    for dir in ["/.build/debug/dsar", "/.build/release/dsar"]
    where FileManager.default.isExecutableFile(atPath: repoRoot + dir) {
        return repoRoot + dir
    }
    return repoRoot + "/.build/debug/dsar"
}()

/// The result of running a command.
package struct CommandResult: Sendable {
    package var status: Int32
    package var stdout: String
    package var stderr: String
    /// True when killed by a signal (status is then the signal number).
    package var signaled: Bool
}

/// Runs a program to completion, capturing output (files, not pipes, so nothing can block).
@discardableResult
package func runCommand(
    _ path: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil, cwd: String? = nil,
    timeout: Double = 120
) throws -> CommandResult {
    let p = try launch(path, args, env: env, stdin: stdin, cwd: cwd)
    return try p.wait(timeout: timeout)
}

/// A started child process whose output goes to temp files.
package final class Child: @unchecked Sendable {
    package let process: Process
    let out: String
    let err: String

    init(process: Process, out: String, err: String) {
        self.process = process
        self.out = out
        self.err = err
    }

    package var pid: Int32 { process.processIdentifier }

    /// Sends a signal.
    package func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit (killing it after `timeout` seconds and failing).
    package func wait(timeout: Double = 120) throws -> CommandResult {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestFailure(
                "\(process.executableURL?.path ?? "?") \(process.arguments ?? []) did not finish within \(timeout) s; stderr: \(read(err))"
            )
        }
        process.waitUntilExit()
        defer {
            unlink(out)
            unlink(err)
        }
        return CommandResult(
            status: process.terminationStatus, stdout: read(out), stderr: read(err),
            signaled: process.terminationReason == .uncaughtSignal)
    }

    func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8))
            ?? String(decoding: (FileManager.default.contents(atPath: path) ?? Data()), as: UTF8.self)
    }
}

/// Starts a program in the background.
package func launch(
    _ path: String, _ args: [String], env: [String: String] = [:], stdin: String? = nil, cwd: String? = nil
) throws -> Child {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    e["DSAR_CRASH_AT"] = nil
    for (k, v) in env { e[k] = v }
    p.environment = e
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let base = NSTemporaryDirectory() + "dsar-test-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: base + ".out")
    p.standardError = FileHandle(forWritingAtPath: base + ".err")
    if let stdin {
        let inPath = base + ".in"
        _ = FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8))
        p.standardInput = FileHandle(forReadingAtPath: inPath)
    } else {
        p.standardInput = FileHandle.nullDevice
    }
    try p.run()
    return Child(process: p, out: base + ".out", err: base + ".err")
}

/// A failure raised by test helpers.
package struct TestFailure: Error, CustomStringConvertible {
    package var description: String
    package init(_ d: String) { description = d }
}

/// A fresh spool in a temp directory, with helpers to drop files and run `dsar` on it.
package final class TempSpool: @unchecked Sendable {
    /// The temp directory holding the spool (and anything else the test puts there).
    package let base: String
    /// The spool root.
    package let root: String
    package var layout: SpoolLayout { SpoolLayout(root: root) }

    package init() throws {
        var template = Array((NSTemporaryDirectory() + "dsar-spool-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        base = String(cString: p)
        root = base + "/spool"
    }

    deinit { try? FileSystem.removeTree(base) }

    /// Runs `dsar ARGS --spool ROOT` (spool option appended) and returns the result.
    @discardableResult
    package func dsar(
        _ args: [String], env: [String: String] = [:], stdin: String? = nil, timeout: Double = 120
    ) throws -> CommandResult {
        try runCommand(
            dsarBinary, args + ["--spool", root, "--log-format", "json"], env: env, stdin: stdin, timeout: timeout)
    }

    /// Starts `dsar ARGS --spool ROOT` in the background.
    package func start(_ args: [String], env: [String: String] = [:]) throws -> Child {
        try launch(dsarBinary, args + ["--spool", root, "--log-format", "json"], env: env)
    }

    /// The privacy team's keys made by `dsar keygen` (outside the spool): `age.key`, `age.pub`, ….
    package var teamKeys: String { base + "/team-keys" }

    /// Creates the spool with `dsar init`, makes the team's keys with `dsar keygen` and configures
    /// their age recipient, so export jobs can seal bundles.
    package func initialize(extraConfig: String = "") throws {
        let r = try dsar(["init"])
        guard r.status == 0 else { throw TestFailure("dsar init failed: \(r.stderr)") }
        let k = try runCommand(dsarBinary, ["keygen", "--out", teamKeys])
        guard k.status == 0 else { throw TestFailure("dsar keygen failed: \(k.stderr)") }
        let recipient = String(decoding: try FileSystem.readFile(teamKeys + "/age.pub"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let config = "recipients: [ \(recipient) ]\n" + extraConfig
        try FileSystem.writeAtomically(root + "/config.yaml", Array(config.utf8), mode: 0o640)
        try addBaselineConnectorIfNone()
    }

    /// dsar refuses to run without connectors, so a spool whose default connector directory
    /// (`<base>/connectors`) holds no config gets one small CSV source of an unrelated person.
    package func addBaselineConnectorIfNone() throws {
        let dir = base + "/connectors"
        let existing = ((try? FileSystem.list(dir)) ?? []).filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        guard existing.isEmpty else { return }
        try FileManager.default.createDirectory(atPath: dir + "/baseline-data", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            dir + "/baseline-data/baseline.csv", Array("email,user_id\nnobody@example.invalid,999999999\n".utf8),
            mode: 0o644)
        try FileSystem.writeAtomically(
            dir + "/baseline.yaml",
            Array(
                "name: baseline\ntype: csv\npaths: [ baseline-data/baseline.csv ]\ncolumns: { email: email, user_id: user_id }\n"
                    .utf8),
            mode: 0o644)
    }

    /// Writes a file into the inbox directly (atomically via a dot temp file unless `inPlace`).
    package func drop(_ name: String, _ content: String, inPlace: Bool = false) throws {
        try drop(name, Array(content.utf8), inPlace: inPlace)
    }

    /// Writes bytes into the inbox.
    package func drop(_ name: String, _ bytes: [UInt8], inPlace: Bool = false) throws {
        let path = root + "/inbox/" + name
        if inPlace {
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        } else {
            let tmp = root + "/inbox/.\(name).upload"
            _ = FileManager.default.createFile(atPath: tmp, contents: Data(bytes))
            try FileSystem.rename(tmp, to: path)
        }
    }

    /// Names in a spool subdirectory (dotfiles excluded).
    package func list(_ dir: String) -> [String] {
        ((try? FileSystem.list(root + "/" + dir)) ?? []).filter { !$0.hasPrefix(".") }
    }

    /// All job records.
    package func records() throws -> [JobRecord] { try JobStore(layout: layout).all() }

    /// Reads a file of the spool as text.
    package func text(_ relative: String) -> String {
        String(decoding: FileManager.default.contents(atPath: root + "/" + relative) ?? Data(), as: UTF8.self)
    }

    /// Every file under the spool (relative paths), recursively, dotfiles included.
    package func allFiles(_ dir: String = "") -> [String] {
        let start = dir.isEmpty ? root : root + "/" + dir
        guard let names = try? FileSystem.list(start) else { return [] }
        var out: [String] = []
        for n in names {
            let rel = dir.isEmpty ? n : dir + "/" + n
            if let st = try? FileSystem.lstatus(root + "/" + rel), st.kind == .directory {
                out += allFiles(rel)
            } else {
                out.append(rel)
            }
        }
        return out
    }
}

/// Sets a file's mtime to `secondsAgo` in the past.
package func age(_ path: String, secondsAgo: Double) {
    let t = Date().addingTimeInterval(-secondsAgo).timeIntervalSince1970
    var times = [
        timespec(tv_sec: Int(t), tv_nsec: 0), timespec(tv_sec: Int(t), tv_nsec: 0),
    ]
    _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
}

/// Whether a command exists on PATH.
package func which(_ tool: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

// MARK: - Added for the end-to-end tests

extension Child {
    /// What the child has written to stderr so far (it may still be running).
    package func stderrSoFar() -> String { read(err) }

    /// What the child has written to stdout so far (it may still be running).
    package func stdoutSoFar() -> String { read(out) }
}

/// Polls `condition` every 10 ms until it holds or `timeout` seconds pass; returns whether it held.
@discardableResult
package func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// Runs a tool found on PATH (via /usr/bin/env) with stdin from a file; stdout as bytes.
package func runTool(
    _ tool: String, _ args: [String], stdinPath: String? = nil
) throws -> (
    status: Int32, stdout: [UInt8], stderr: String
) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = [tool] + args
    let base = NSTemporaryDirectory() + "dsar-tool-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
    defer {
        unlink(base + ".out")
        unlink(base + ".err")
    }
    let out = FileHandle(forWritingAtPath: base + ".out")!
    let err = FileHandle(forWritingAtPath: base + ".err")!
    p.standardOutput = out
    p.standardError = err
    p.standardInput = stdinPath.flatMap { FileHandle(forReadingAtPath: $0) } ?? FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try out.close()
    try err.close()
    let o = [UInt8](FileManager.default.contents(atPath: base + ".out") ?? Data())
    let e = String(decoding: FileManager.default.contents(atPath: base + ".err") ?? Data(), as: UTF8.self)
    return (p.terminationStatus, o, e)
}
