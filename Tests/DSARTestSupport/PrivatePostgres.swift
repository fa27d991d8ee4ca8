import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// Throw-away PostgreSQL and MariaDB servers for the tests (real servers, private sockets in temp
// directories; skipped, naming the Debian package, where the server binaries are missing).

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
            // The password roles authenticate for real (scram-sha-256); everyone else is trusted.
            let hba = dir + "/data/pg_hba.conf"
            let trusted = try String(contentsOfFile: hba, encoding: .utf8)
            try ("local all \(roleRO),\(roleRW) scram-sha-256\n" + trusted).write(
                toFile: hba, atomically: false, encoding: .utf8)
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
            let roles = try pg.psql(
                "postgres",
                [
                    "-v", "ON_ERROR_STOP=1", "-q", "-c",
                    "CREATE ROLE \(roleRO) LOGIN PASSWORD '\(rolePassword)'; CREATE ROLE \(roleRW) LOGIN PASSWORD '\(rolePassword)'",
                ])
            guard roles.status == 0 else { throw TestError("CREATE ROLE failed: \(roles.err)") }
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

    /// A login role with a password (scram-sha-256 on the private socket), no privileges granted.
    package static let roleRO = "dsar_ro"
    /// A second such role, for tests that grant erasure privileges.
    package static let roleRW = "dsar_rw"
    /// The password of ``roleRO`` and ``roleRW``.
    package static let rolePassword = "s3cret-pw-1"

    /// A libpq conninfo string for `db` on the private socket as `user`.
    package func conninfo(_ db: String, user: String = "postgres") -> String {
        "host=\(socketDir) port=\(port) dbname=\(db) user=\(user)"
    }

    /// Runs SQL as the superuser, stopping at the first error; returns the unaligned output
    /// (`|`-separated, no headers).
    @discardableResult
    package func sql(_ db: String, _ sql: String) throws -> String {
        let r = try psql(db, ["-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql])
        guard r.status == 0 else { throw TestError("psql failed: \(r.err)") }
        return r.out
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
