import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// Throw-away PostgreSQL and MariaDB servers for the tests (real servers, private sockets in temp
// directories; skipped, naming the Debian package, where the server binaries are missing).

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

    /// Runs `sql` as root (in `database` when given); throws with the client's message on failure.
    /// Returns the output, tab-separated without column names (`-N -B`).
    @discardableResult
    package func sql(_ sql: String, database: String? = nil) throws -> String {
        let r = try client(["-N", "-B"] + (database.map { ["-D", $0] } ?? []) + ["-e", sql])
        guard r.status == 0 else { throw TestError("mariadb -e failed: \(r.err) (SQL: \(sql.prefix(500)))") }
        return r.out
    }

    /// Creates (or re-creates) the user `name`@`localhost` with `password` and runs `grants`
    /// (`GRANT SELECT ON db.t TO <user>`: `<user>` is replaced by the quoted user).
    package func createUser(_ name: String, password: String, grants: [String]) throws {
        let u = "'\(name)'@'localhost'"
        try sql(
            "DROP USER IF EXISTS \(u); CREATE USER \(u) IDENTIFIED BY '\(password.replacingOccurrences(of: "'", with: "''"))'"
        )
        for g in grants { try sql(g.replacingOccurrences(of: "<user>", with: u)) }
    }

    /// An option file (my.cnf) with a `[group]` that connects to this server as `user`.
    package func optionFile(group: String, user: String, password: String?) throws -> String {
        databases += 1
        let path = dir + "/client-\(databases).cnf"
        var text = "[\(group)]\nsocket=\(socket)\nuser=\(user)\n"
        if let password { text += "password=\(password)\n" }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }

    /// A new empty utf8mb4 database named `prefix_N`.
    package func freshDatabase(prefix: String = "rewrite") throws -> String {
        databases += 1
        let name = "\(prefix)_\(databases)"
        let r = try client(["-e", "CREATE DATABASE \(name) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"])
        guard r.status == 0 else { throw TestError("CREATE DATABASE failed: \(r.err)") }
        return name
    }
}
