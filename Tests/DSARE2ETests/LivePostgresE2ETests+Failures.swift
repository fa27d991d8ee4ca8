import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `type: postgres` when the server says no: unreachable, wrong password, missing privilege, a
/// lock held by another session.
extension LivePostgresE2ETests {
    func testUnreachableServerMakesTheJobPartialWithinTheTimeout() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        // A closed port on 127.0.0.1: nothing listens there.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0
            }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        close(fd)
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: postgres\nconnection: \"host=127.0.0.1 port=\(port) dbname=shop user=dsar connect_timeout=2\"\ntimeout: 5\nretries: 1\ntables:\n  customers: { match: { email: email } }\n"
        )
        try writeFile(dir + "/data/accounts.csv", "email,member_id\nalice@example.com,5555\n")
        try writeFile(
            dir + "/accounts.yaml",
            "name: accounts\ntype: csv\npaths: [ data/accounts.csv ]\ncolumns: { email: email, member_id: user_id }\n")
        try s.initialize()
        try s.drop("e.json", #"{"request_id": "E", "action": "export", "email": "alice@example.com"}"#)
        let start = Date()
        _ = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertLessThan(Date().timeIntervalSince(start), 30)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        let c = try XCTUnwrap(rec.connectors.first { $0.name == "shop" })
        XCTAssertTrue((c.error ?? "").contains("Connection refused"), c.error ?? "")
        XCTAssertEqual(c.attempts, 2, "retries: 1")
        let check = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue((check.stdout + check.stderr).contains("Connection refused"), check.stdout + check.stderr)
    }

    /// Row-level security that hides the subject's row from dsar's role: the search cannot see every
    /// row, so the job is PARTIAL naming it — never COMPLETED with "0 found". A role it does not
    /// apply to (the superuser) searches the same table completely.
    func testRowLevelSecurityThatHidesRowsMakesTheJobPartial() throws {
        let ro = PrivatePostgres.roleRO
        let sh = try shop(
            tables: """
                  customers: { match: { email: email, id: user_id }, erase: retain, reason: contracts }
                """, extra: "password_file: shop.pass\n", user: ro)
        try sh.pg.sql(
            sh.db,
            """
            GRANT SELECT ON customers TO \(ro);
            ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
            CREATE POLICY hide_the_subject ON customers FOR SELECT USING (id <> 1042);
            """)
        try writeFile(sh.dir + "/shop.pass", PrivatePostgres.rolePassword + "\n", mode: 0o600)
        try sh.spool.drop("e.json", #"{"request_id": "E", "action": "export", "email": "alice@example.com"}"#)
        _ = try run(sh)
        let e = try record(sh, "E")
        XCTAssertEqual(e.status, .partial, "the role sees no row of hers, but not every row either")
        XCTAssertTrue((e.error ?? "").contains("row-level security on customers"), e.error ?? "")
        XCTAssertEqual(e.connectors.first { $0.name == "shop" }?.records, 0)

        try writeFile(
            sh.dir + "/shop.yaml",
            "name: shop\ntype: postgres\nconnection: \"\(sh.pg.conninfo(sh.db))\"\ntables:\n  customers: { match: { email: email, id: user_id }, erase: retain, reason: contracts }\n"
        )
        try sh.spool.drop("f.json", #"{"request_id": "F", "action": "export", "email": "alice@example.com"}"#)
        _ = try run(sh)
        let f = try record(sh, "F")
        XCTAssertEqual(f.status, .completed, f.error ?? "")
        XCTAssertEqual(f.connectors.first { $0.name == "shop" }?.records, 1)
    }

    func testWrongPasswordAndMissingPrivilegeAreNamed() throws {
        let ro = PrivatePostgres.roleRO
        let sh = try shop(
            tables: """
                  customers: { match: { email: email, id: user_id }, erase: delete }
                """, extra: "password_file: shop.pass\n", user: ro)
        try sh.pg.sql(sh.db, "GRANT SELECT ON customers TO \(ro)")
        try writeFile(sh.dir + "/shop.pass", "wrong-password\n", mode: 0o600)
        var check = try sh.spool.dsar(["connectors", "check", "--connectors", sh.dir])
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue(
            (check.stdout + check.stderr).contains("password authentication failed"), check.stdout + check.stderr)
        XCTAssertFalse((check.stdout + check.stderr).contains("wrong-password"))

        try writeFile(sh.dir + "/shop.pass", PrivatePostgres.rolePassword + "\n", mode: 0o600)
        check = try sh.spool.dsar(["connectors", "check", "--connectors", sh.dir])
        XCTAssertNotEqual(check.status, 0)
        XCTAssertTrue((check.stdout + check.stderr).contains("DELETE"), check.stdout + check.stderr)

        let before = try dump(sh)
        try sh.spool.drop("d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com"}"#)
        _ = try run(sh)
        XCTAssertEqual(try record(sh, "D").status, .partial)
        XCTAssertEqual(try dump(sh), before)
        // An export needs SELECT only.
        try sh.spool.drop("e.json", #"{"request_id": "E", "action": "export", "email": "alice@example.com"}"#)
        _ = try run(sh)
        let e = try record(sh, "E")
        XCTAssertEqual(e.status, .completed, e.error ?? "")
        XCTAssertEqual(e.connectors.first { $0.name == "shop" }?.records, 1)
    }

    func testALockHeldByAnotherSessionRollsBackAndMakesTheJobPartial() throws {
        try lockedErasure(extra: "lock_timeout: 1\n", timeout: 60, expect: "lock")
    }

    /// With a long lock_timeout, the connector's `timeout` ends the wait: the statement is
    /// cancelled on the server and the connection closed.
    func testTheConnectorTimeoutBoundsAStatementThatWaits() throws {
        try lockedErasure(extra: "lock_timeout: 120\n", timeout: 3, expect: "statement timeout")
    }

    /// A delete job while another session holds her customer row FOR UPDATE for 20 s.
    func lockedErasure(extra: String, timeout: Int, expect: String) throws {
        let sh = try shop(extra: extra, timeout: timeout)
        let before = try dump(sh)
        // Another session holds a row lock on her customer row for 20 s.
        let psql = FileManager.default.isExecutableFile(atPath: sh.pg.bin + "/psql") ? sh.pg.bin + "/psql" : "psql"
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: psql)
        holder.arguments = [
            "-X", "-q", "-h", sh.pg.socketDir, "-p", sh.pg.port, "-U", "postgres", "-d", sh.db, "-c",
            "BEGIN; SELECT * FROM customers WHERE id = 1042 FOR UPDATE; SELECT pg_sleep(20); COMMIT;",
        ]
        holder.standardOutput = FileHandle.nullDevice
        try holder.run()
        defer {
            holder.terminate()
            holder.waitUntilExit()
        }
        for _ in 0..<50 {
            let n = try sh.pg.sql(sh.db, "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND granted")
            if n.trimmingCharacters(in: .whitespacesAndNewlines) != "0" { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        try sh.spool.drop("d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com"}"#)
        let start = Date()
        _ = try run(sh)
        XCTAssertLessThan(Date().timeIntervalSince(start), 19, "bounded by lock_timeout, not by the holder")
        let rec = try record(sh, "D")
        XCTAssertEqual(rec.status, .partial)
        let text = (rec.connectors.first { $0.name == "shop" }?.error ?? "") + (rec.error ?? "")
        XCTAssertTrue(text.contains(expect), text)
        let waiting = try sh.pg.sql(
            sh.db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dsar' AND state <> 'idle'")
        XCTAssertEqual(waiting.trimmingCharacters(in: .whitespacesAndNewlines), "0", "dsar left a statement running")
        holder.terminate()
        holder.waitUntilExit()
        XCTAssertEqual(try dump(sh), before, "rolled back")
    }
}
