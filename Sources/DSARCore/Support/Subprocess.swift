import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs a program with stdin from bytes and stdout/stderr to private files, in its own process
/// group so that a timeout kills it and everything it started.
package enum Subprocess {
    /// How a run ended.
    package struct Result: Sendable {
        /// Exit status (when it exited).
        package var status: Int32
        /// The signal that ended it, if any.
        package var signal: Int32?
        /// True when it was killed for running past its timeout.
        package var timedOut: Bool
        package var stdout: [UInt8]
        package var stderr: [UInt8]

        /// The last non-empty line of stderr (the reason a plugin gives).
        package var lastErrorLine: String {
            String(decoding: stderr, as: UTF8.self).split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        }

        /// Why the command did not succeed (nil: it exited 0), for logs and the journal.
        package func failure(timeout: Double) -> String? {
            if timedOut { return "timed out after \(Int(timeout)) s (process group killed)" }
            if let s = signal { return "killed by signal \(s)" }
            guard status != 0 else { return nil }
            let why = lastErrorLine
            return "exited with status \(status)" + (why.isEmpty ? "" : ": " + String(why.prefix(300)))
        }
    }

    /// Runs `argv` (argv[0] a path, or a name looked up in PATH), feeding `stdin`, waiting at most
    /// `timeout` seconds. `scratchDir` (mode 0700) holds the temporary capture files.
    package static func run(
        _ argv: [String], stdin: [UInt8], environment: [String: String] = [:], timeout: Double, scratchDir: String,
        maxOutputBytes: Int = 256 << 20
    ) async throws -> Result {
        guard let program = argv.first, !program.isEmpty else {
            throw DSARError(.config, "no command to run: the command is empty")
        }
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let inPath = scratchDir + "/.in-\(tag)"
        let outPath = scratchDir + "/.out-\(tag)"
        let errPath = scratchDir + "/.err-\(tag)"
        defer {
            unlink(inPath)
            unlink(outPath)
            unlink(errPath)
        }
        try FileSystem.writeAtomically(inPath, stdin, mode: 0o600)
        let inFD = open(inPath, O_RDONLY | O_CLOEXEC)
        let outFD = open(outPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let errFD = open(errPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            close(inFD)
            close(outFD)
            close(errFD)
        }
        guard inFD >= 0, outFD >= 0, errFD >= 0 else {
            throw DSARError.syscall("cannot create capture files in", path: scratchDir)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inFD, 0)
        posix_spawn_file_actions_adddup2(&actions, outFD, 1)
        posix_spawn_file_actions_adddup2(&actions, errFD, 2)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &defaults)

        var env = ProcessInfo.processInfo.environment
        env["DSAR_CRASH_AT"] = nil
        for (k, v) in environment { env[k] = v }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cargv in
            withCStrings(envStrings) { cenv in
                posix_spawnp(&pid, argv[0], &actions, &attr, cargv, cenv)
            }
        }
        if rc != 0 {
            throw DSARError(
                .processing, "cannot start \(argv[0]): \(String(cString: strerror(rc)))", path: argv[0], errno: rc)
        }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        var delay: UInt64 = 1_000_000
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw DSARError.syscall("cannot wait for \(argv[0])", path: nil) }
            if Date() >= deadline && !timedOut {
                timedOut = true
                kill(-pid, SIGTERM)
                try? await Task.sleep(nanoseconds: 500_000_000)
                kill(-pid, SIGKILL)
                continue
            }
            if Task.isCancelled && !timedOut {
                kill(-pid, SIGKILL)
            }
            try? await Task.sleep(nanoseconds: delay)
            delay = min(delay * 2, 50_000_000)
        }
        kill(-pid, SIGKILL)  // leftovers of the group, if any
        let exited = (status & 0x7F) == 0
        return Result(
            status: exited ? (status >> 8) & 0xFF : -1, signal: exited ? nil : status & 0x7F, timedOut: timedOut,
            stdout: try FileSystem.readFile(outPath, limit: maxOutputBytes),
            stderr: try FileSystem.readFile(errPath, limit: maxOutputBytes))
    }

    static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        var ptrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        ptrs.append(nil)
        defer { for p in ptrs { free(p) } }
        return body(ptrs)
    }
}
