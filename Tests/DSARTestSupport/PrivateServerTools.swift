import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// Throw-away PostgreSQL and MariaDB servers for the tests (real servers, private sockets in temp
// directories; skipped, naming the Debian package, where the server binaries are missing).

package struct TestError: Error, CustomStringConvertible {
    package var description: String
    package init(_ d: String) { description = d }
}

package enum PrivateServerTools {
    package struct Ran {
        package var status: Int32
        package var out: String
        package var err: String
    }

    package static let extraDirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/bin"]

    /// The path of a program (PATH plus the sbin directories), or nil.
    package static func find(_ name: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in path + extraDirs where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
            return dir + "/" + name
        }
        return nil
    }

    package static func require(_ name: String, package: String) throws -> String {
        guard let p = find(name) else { throw XCTSkip("\(name) not found: install the Debian package \(package)") }
        return p
    }

    /// Runs a program to completion, stdin from a file (or /dev/null), output captured via temp files.
    ///
    /// posix_spawn + waitpid rather than Foundation's Process: Process learns of the exit only when
    /// every inheritor of its status socket has gone, which a daemon started by pg_ctl never does.
    package static func run(_ argv: [String], stdinFile: String? = nil, timeout: Double = 60) throws -> Ran {
        let base = NSTemporaryDirectory() + "sqlrewrite-cmd-\(UUID().uuidString)"
        defer {
            unlink(base + ".out")
            unlink(base + ".err")
        }
        let pid = try spawn(argv, stdinFile: stdinFile, out: base + ".out", err: base + ".err")
        guard let status = wait(pid, timeout: timeout) else {
            kill(pid, SIGKILL)
            _ = wait(pid, timeout: 10)
            throw TestError("\(argv) did not finish within \(timeout) s")
        }
        func read(_ f: String) -> String {
            String(decoding: FileManager.default.contents(atPath: f) ?? Data(), as: UTF8.self)
        }
        return Ran(status: status, out: read(base + ".out"), err: read(base + ".err"))
    }

    /// Starts a program with stdin from `stdinFile` (or /dev/null) and stdout/stderr into files.
    package static func spawn(_ argv: [String], stdinFile: String?, out: String, err: String) throws -> pid_t {
        guard let exe = find(argv[0]) else { throw TestError("\(argv[0]) not found") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinFile ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGTERM, SIGINT, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        var env = ProcessInfo.processInfo.environment
        env["DSAR_CRASH_AT"] = nil
        let cargs = ([exe] + argv.dropFirst()).map { strdup($0) } + [nil]
        let cenv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in cargs { free(p) }
            for p in cenv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, cargs, cenv)
        guard rc == 0 else { throw TestError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// Waits for a child; its exit status (128+signal when killed), or nil after `timeout` seconds.
    package static func wait(_ pid: pid_t, timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F) }
            if r < 0 && errno != EINTR { return -1 }
            if Date() > deadline { return nil }
            usleep(2_000)
        }
    }

    package static func makeTempDir(_ prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + prefix + "-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestError("mkdtemp failed") }
        let dir = String(cString: p)
        chmod(dir, 0o755)
        return dir
    }
}
