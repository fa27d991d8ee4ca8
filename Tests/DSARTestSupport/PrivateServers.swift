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

/// A throw-away PostgreSQL cluster in a temp directory, listening only on a Unix socket there.
package final class PrivatePostgres: @unchecked Sendable {
    package let dir: String
    package let bin: String
    package let socketDir: String
    package let port = "5432"
    package let asUser: [String]
    package var databases = 0

    private init(dir: String, bin: String, asUser: [String]) {
        self.dir = dir
        self.bin = bin
        self.socketDir = dir + "/sock"
        self.asUser = asUser
    }

    package static func start() throws -> PrivatePostgres {
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .filter { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }
            .sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
        var bin = versions.last.map { "/usr/lib/postgresql/\($0)/bin" }
        if bin == nil, let initdb = PrivateServerTools.find("initdb") {
            bin = URL(fileURLWithPath: initdb).deletingLastPathComponent().path
        }
        guard let bin, FileManager.default.isExecutableFile(atPath: bin + "/pg_ctl") else {
            throw XCTSkip(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package postgresql")
        }
        var asUser: [String] = []
        var owner: (uid: uid_t, gid: gid_t)?
        if getuid() == 0 {
            // The server refuses to run as root: initdb and pg_ctl run as the postgres user.
            guard let pw = getpwnam("postgres"), let runuser = PrivateServerTools.find("runuser") else {
                throw XCTSkip(
                    "running as root needs the postgres user and runuser: install the Debian package postgresql")
            }
            asUser = [runuser, "-u", "postgres", "--"]
            owner = (pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        let dir = try PrivateServerTools.makeTempDir("dsar-pg")
        let pg = PrivatePostgres(dir: dir, bin: bin, asUser: asUser)
        do {
            for d in [dir + "/data", pg.socketDir] {
                try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: false)
                if let owner { chown(d, owner.uid, owner.gid) }
            }
            let initdb = try PrivateServerTools.run(
                asUser + [
                    bin + "/initdb", "-D", dir + "/data", "-E", "UTF8", "--locale=C", "-A", "trust", "-U", "postgres",
                    "--no-sync",
                ])
            guard initdb.status == 0 else { throw TestError("initdb failed: \(initdb.err)") }
            let opts =
                "-c listen_addresses='' -k \(pg.socketDir) -p \(pg.port) -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
            let start = try PrivateServerTools.run(
                asUser + [
                    bin + "/pg_ctl", "-D", dir + "/data", "-w", "-t", "60", "-l", pg.socketDir + "/server.log", "-o",
                    opts, "start",
                ])
            guard start.status == 0 else {
                let log = (try? String(contentsOfFile: pg.socketDir + "/server.log", encoding: .utf8)) ?? ""
                throw TestError("pg_ctl start failed: \(start.err) \(log)")
            }
        } catch {
            pg.stop()
            throw error
        }
        return pg
    }

    package func stop() {
        if FileManager.default.fileExists(atPath: dir + "/data/postmaster.pid") {
            _ = try? PrivateServerTools.run(
                asUser + [bin + "/pg_ctl", "-D", dir + "/data", "-m", "immediate", "-w", "stop"])
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// psql as a client (any OS user may connect: trust authentication on the private socket).
    package func psql(_ db: String, _ args: [String]) throws -> PrivateServerTools.Ran {
        let exe = FileManager.default.isExecutableFile(atPath: bin + "/psql") ? bin + "/psql" : "psql"
        return try PrivateServerTools.run([exe, "-X", "-h", socketDir, "-p", port, "-U", "postgres", "-d", db] + args)
    }

    package func freshDatabase() throws -> String {
        databases += 1
        let name = "rewrite_\(databases)"
        let r = try psql(
            "postgres",
            ["-v", "ON_ERROR_STOP=1", "-q", "-c", "CREATE DATABASE \(name) TEMPLATE template0 ENCODING 'UTF8'"])
        guard r.status == 0 else { throw TestError("CREATE DATABASE failed: \(r.err)") }
        return name
    }
}

/// A throw-away MariaDB server in a temp directory, Unix socket only (`--skip-networking`).
package final class PrivateMariaDB: @unchecked Sendable {
    package let dir: String
    package let socket: String
    package let clientExe: String
    package var server: pid_t?
    package var databases = 0

    private init(dir: String, clientExe: String) {
        self.dir = dir
        self.socket = dir + "/my.sock"
        self.clientExe = clientExe
    }

    package static func start() throws -> PrivateMariaDB {
        let skip =
            "MariaDB server binaries (mariadbd, mariadb-install-db) not found: install the Debian package mariadb-server"
        guard let mariadbd = PrivateServerTools.find("mariadbd") ?? PrivateServerTools.find("mysqld"),
            let install = PrivateServerTools.find("mariadb-install-db") ?? PrivateServerTools.find("mysql_install_db")
        else { throw XCTSkip(skip) }
        guard let client = PrivateServerTools.find("mariadb") ?? PrivateServerTools.find("mysql") else {
            throw XCTSkip("the mariadb client was not found: install the Debian package mariadb-client")
        }
        let dir = try PrivateServerTools.makeTempDir("dsar-my")
        let my = PrivateMariaDB(dir: dir, clientExe: client)
        let user = getuid() == 0 ? ["--user=root"] : []  // mariadbd refuses to run as root without it
        do {
            let inst = try PrivateServerTools.run(
                [install, "--no-defaults"] + user + [
                    "--datadir=\(dir)/data", "--auth-root-authentication-method=normal", "--skip-test-db",
                ], timeout: 120)
            guard inst.status == 0 else { throw TestError("mariadb-install-db failed: \(inst.out) \(inst.err)") }
            let pid = try PrivateServerTools.spawn(
                [mariadbd, "--no-defaults"] + user + [
                    "--datadir=\(dir)/data", "--socket=\(my.socket)", "--skip-networking", "--pid-file=\(dir)/my.pid",
                    "--log-error=\(dir)/my.err", "--character-set-server=utf8mb4",
                    "--collation-server=utf8mb4_unicode_ci",
                    "--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0", "--skip-log-bin",
                ], stdinFile: nil, out: dir + "/mariadbd.out", err: dir + "/mariadbd.err")
            my.server = pid
            let deadline = Date().addingTimeInterval(60)
            while true {
                if let status = PrivateServerTools.wait(pid, timeout: 0) {
                    my.server = nil
                    let log = (try? String(contentsOfFile: dir + "/my.err", encoding: .utf8)) ?? ""
                    throw TestError("mariadbd exited with \(status): \(log.suffix(2000))")
                }
                if let r = try? my.client(["-e", "SELECT 1"]), r.status == 0 { break }
                if Date() > deadline { throw TestError("mariadbd did not come up within 60 s") }
                usleep(100_000)
            }
        } catch {
            my.stop()
            throw error
        }
        return my
    }

    package func stop() {
        if let pid = server {
            kill(pid, SIGTERM)
            if PrivateServerTools.wait(pid, timeout: 30) == nil {
                kill(pid, SIGKILL)
                _ = PrivateServerTools.wait(pid, timeout: 10)
            }
        }
        server = nil
        try? FileManager.default.removeItem(atPath: dir)
    }

    package func client(_ args: [String], stdinFile: String? = nil) throws -> PrivateServerTools.Ran {
        try PrivateServerTools.run(
            [clientExe, "--no-defaults", "--socket=\(socket)", "-uroot", "--default-character-set=utf8mb4"] + args,
            stdinFile: stdinFile)
    }

    package func freshDatabase() throws -> String {
        databases += 1
        let name = "rewrite_\(databases)"
        let r = try client(["-e", "CREATE DATABASE \(name) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"])
        guard r.status == 0 else { throw TestError("CREATE DATABASE failed: \(r.err)") }
        return name
    }
}
