import DSARTestSupport
import Foundation
import Logging
import XCTest

@testable import DSARCore

#if canImport(Glibc)
import Glibc
#endif

/// Failures of the libpq driver against the real server: locks, timeouts, cancelling, closing
/// from another thread, wrong passwords, servers that refuse or never answer.
extension PostgresDatabaseTests {
    func testLockHeldByAnotherSessionGivesLockTimeout() throws {
        let (pg, db) = try shopForFailures()
        let holder = try open(pg, db)
        let d = try open(pg, db)
        defer {
            d.close()
            holder.close()
        }
        try holder.begin(readOnly: false)
        try holder.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE", [])
        try d.setTimeouts(lockMilliseconds: 300, statementMilliseconds: nil)
        try d.begin(readOnly: false)
        let start = Date()
        XCTAssertThrowsError(try d.execute("DELETE FROM customers WHERE id = $1", [.integer(1)])) { e in
            let pe = (e as? DSARError)?.cause as? PostgresServerError
            XCTAssertEqual(pe?.sqlstate, "55P03")
            XCTAssertEqual((e as? DSARError)?.code, .io, "a lock is transient: the connector's retries apply")
            XCTAssertTrue("\(e)".contains("lock_not_available"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        try d.rollback()
        try holder.rollback()
        XCTAssertEqual(
            try pg.sql(db, "SELECT count(*) FROM customers").trimmingCharacters(in: .whitespacesAndNewlines), "2")
        XCTAssertEqual(
            try pg.sql(db, "SHOW lock_timeout").trimmingCharacters(in: .whitespacesAndNewlines), "0",
            "the setting is per session")
    }

    func testStatementTimeoutAndInterruptFromAnotherThread() throws {
        let (pg, db) = try shopForFailures()
        let d = try open(pg, db)
        defer { d.close() }
        try d.setTimeouts(lockMilliseconds: 100, statementMilliseconds: 300)
        var start = Date()
        XCTAssertThrowsError(try d.execute("SELECT pg_sleep(10)", [])) { e in
            XCTAssertEqual(((e as? DSARError)?.cause as? PostgresServerError)?.sqlstate, "57014")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        try d.setTimeouts(lockMilliseconds: nil, statementMilliseconds: nil)
        var setting: [LiveValue] = []
        try d.query("SELECT current_setting('statement_timeout')", []) { setting = $0 }
        XCTAssertEqual(setting, [.text("0")])

        let t = Thread {
            Thread.sleep(forTimeInterval: 0.4)
            d.interrupt()
        }
        start = Date()
        t.start()
        XCTAssertThrowsError(try d.execute("SELECT pg_sleep(20)", [])) { e in
            XCTAssertEqual(((e as? DSARError)?.cause as? PostgresServerError)?.sqlstate, "57014")
            XCTAssertTrue("\(e)".contains("query_canceled"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        try d.query("SELECT 1", []) { XCTAssertEqual($0, [.integer(1)]) }

        // close() from another thread while a statement runs: the statement ends, the connection closes.
        let c = Thread {
            Thread.sleep(forTimeInterval: 0.4)
            d.close()
        }
        start = Date()
        c.start()
        XCTAssertThrowsError(try d.execute("SELECT pg_sleep(20)", []))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertThrowsError(try d.execute("SELECT 1", [])) { e in XCTAssertTrue("\(e)".contains("closed"), "\(e)") }
        d.interrupt()  // after close: harmless
    }

    func testAConnectionTheServerDropsIsATransientError() throws {
        let (pg, db) = try shopForFailures()
        let d = try open(pg, db)
        defer { d.close() }
        var pid: [LiveValue] = []
        try d.query("SELECT pg_backend_pid()", []) { pid = $0 }
        guard case .integer(let p)? = pid.first else { return XCTFail("no backend pid: \(pid)") }
        try pg.sql("postgres", "SELECT pg_terminate_backend(\(p))")
        XCTAssertThrowsError(try d.query("SELECT 1", []) { _ in }) { e in
            XCTAssertEqual((e as? DSARError)?.code, .io, "\(e)")
            XCTAssertTrue("\(e)".contains("terminat") || "\(e)".contains("closed"), "\(e)")
        }
    }

    func testWrongPasswordIsRefusedByTheServer() throws {
        let (pg, db) = try shopForFailures()
        let ro = PrivatePostgres.roleRO
        XCTAssertThrowsError(try open(pg, db, user: ro, password: "wrong")) { e in
            XCTAssertEqual((e as? DSARError)?.code, .permissions)
            let m = "\(e)"
            XCTAssertTrue(m.contains("password authentication failed for user \"\(ro)\""), m)
            XCTAssertFalse(m.contains("wrong"), "never the password: \(m)")
        }
        setenv("PGPASSFILE", "/nonexistent", 1)
        XCTAssertThrowsError(try open(pg, db, user: ro, password: nil)) { e in
            XCTAssertTrue("\(e)".contains("password"), "\(e)")
        }
        // libpq's own PGPASSFILE applies when no password_file is configured.
        let dir = try PrivateServerTools.makeTempDir("dsar-pgpass")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pass = dir + "/pgpass"
        try "*:*:*:\(ro):\(PrivatePostgres.rolePassword)\n".write(toFile: pass, atomically: true, encoding: .utf8)
        chmod(pass, 0o600)
        setenv("PGPASSFILE", pass, 1)
        defer { unsetenv("PGPASSFILE") }
        let viaFile = try open(pg, db, user: ro, password: nil)
        viaFile.close()
        let ok = try open(pg, db, user: ro, password: PrivatePostgres.rolePassword)
        try ok.query("SELECT current_user::text", []) { XCTAssertEqual($0, [.text(ro)]) }
        ok.close()
    }

    func testUnreachableServerFailsWithTheLibraryMessageWithinTheTimeout() throws {
        // A closed port on 127.0.0.1: refused at once.
        let closed = try freePort()
        var start = Date()
        XCTAssertThrowsError(try connectTo("host=127.0.0.1 port=\(closed) dbname=shop user=dsar", timeout: 3)) { e in
            XCTAssertEqual((e as? DSARError)?.code, .io, "transient: retries apply")
            XCTAssertTrue("\(e)".contains("Connection refused"), "\(e)")
        }
        XCTAssertEqual(
            PostgresConninfo.target(
                try PostgresConninfo.parse("host=127.0.0.1 port=\(closed) dbname=shop user=dsar").get(),
                environment: [:]),
            "postgres://127.0.0.1:\(closed)/shop")
        XCTAssertLessThan(Date().timeIntervalSince(start), 3)
        // A port that accepts but never answers: bounded by the timeout, not libpq's minimum of 2 s.
        let (fd, port) = try silentListener()
        defer { Glibc.close(fd) }
        start = Date()
        XCTAssertThrowsError(try connectTo("host=127.0.0.1 port=\(port) dbname=shop user=dsar", timeout: 1)) { e in
            XCTAssertEqual((e as? DSARError)?.code, .io)
            XCTAssertTrue("\(e)".contains("does not answer"), "\(e)")
        }
        let took = Date().timeIntervalSince(start)
        XCTAssertGreaterThanOrEqual(took, 0.9)
        XCTAssertLessThan(took, 2.5)
    }

    // MARK: - Helpers

    private func shopForFailures() throws -> (PrivatePostgres, String) {
        let pg = try Self.postgres()
        let db = try pg.freshDatabase()
        try pg.sql(
            db,
            "CREATE TABLE customers (id bigint PRIMARY KEY, email text); INSERT INTO customers VALUES (1, 'a'), (2, 'b')"
        )
        return (pg, db)
    }

    private func open(
        _ pg: PrivatePostgres, _ db: String, user: String = "postgres", password: String? = nil
    ) throws -> PostgresDatabase {
        try connectTo(pg.conninfo(db, user: user), password: password, timeout: 10)
    }

    private func connectTo(_ conninfo: String, password: String? = nil, timeout: Double) throws -> PostgresDatabase {
        try PostgresDatabase.connect(
            name: "shop-live", conninfo: PostgresConninfo.parse(conninfo).get(), password: password,
            timeoutSeconds: timeout, logger: Logger(label: "test"))
    }

    /// A TCP port on 127.0.0.1 that nothing listens on.
    private func freePort() throws -> Int {
        let (fd, port) = try silentListener()
        Glibc.close(fd)
        return port
    }

    /// A socket listening on 127.0.0.1 that never accepts (the kernel completes the handshake).
    private func silentListener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, len) == 0 && listen(fd, 8) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard fd >= 0, bound else { throw TestError("cannot listen on 127.0.0.1") }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }
}
