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
