import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

/// `type: mysql` through the real binary against a real MariaDB (private `mariadbd` on a Unix
/// socket): recall and precision, expansion across tables and connectors, erasure per strategy
/// with foreign keys (checked with `mariadb -e SELECT`), injection, failures, dry runs, `kill -9`.
final class LiveMySQLE2ETests: XCTestCase {
    private static let server = ServerSlot<PrivateMariaDB> { my in
        try my.createUser("dsar_rw", password: "rw-secret", grants: [])
        try my.createUser("dsar_ro", password: "ro-secret", grants: [])
    }

    private static func mariadb() throws -> PrivateMariaDB { try server.get() }

    override class func tearDown() {
        server.release()
        super.tearDown()
    }

    static let shop = """
        CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(200), name VARCHAR(100), phone VARCHAR(40),
          age INT) ENGINE=InnoDB;
        INSERT INTO customers VALUES (1042, 'Alice@Example.com', 'Alice', '+49 30 1234', 31),
          (1043, 'bob@example.org', 'Bob', NULL, 40), (10420, 'malice@example.com', 'Mal', NULL, 22),
          (7, 'x''or''1''=''1''--@example.com', 'Eve', NULL, 1);
        CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total DECIMAL(8,2),
          CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
        INSERT INTO orders VALUES (1, 1042, 19.99), (2, 1043, 5.00), (3, 1042, 7.50), (4, 10420, 1.00);
        CREATE TABLE invoices (id INT PRIMARY KEY, email VARCHAR(200), amount DECIMAL(8,2)) ENGINE=InnoDB;
        INSERT INTO invoices VALUES (1, 'alice@example.com', 9.50), (2, 'bob@example.org', 3.00);
        CREATE TABLE tickets (id INT PRIMARY KEY, author VARCHAR(200), body TEXT) ENGINE=InnoDB;
        INSERT INTO tickets VALUES (1, 'bob@example.org', 'Bob says alice@example.com is rude'),
          (2, 'alice@example.com', 'my own ticket'), (3, 'bob@example.org', 'malice@example.com again'),
          (4, 'bob@example.org', 'xalice@example.com.evil');
        CREATE TABLE audit (n INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(200), what VARCHAR(20)) ENGINE=InnoDB;
        INSERT INTO audit (who, what) VALUES ('alice@example.com', 'login'), ('ALICE@example.com', 'login'),
          ('bob@example.org', 'login');
        """

    static let tables = """
        tables:
          customers: { match: { email: email, id: user_id }, erase: delete }
          orders: { match: { customer_id: user_id }, erase: delete }
          invoices: { match: { email: email }, erase: retain, reason: "tax law" }
          tickets: { match: { author: email }, text: [ body ], erase: delete }
          audit: { match: { who: email }, erase: redact, redact: [ who ] }

        """

    /// A spool, a fresh database with ``shop`` and the connector `shop-live` (user `user`, password
    /// from a 0600 password file), plus `extra` YAML files; grants as `grants` (`<db>` replaced).
    func setUp(
        _ s: TempSpool, user: String = "dsar_rw", password: String = "rw-secret", socket: String? = nil,
        grants: [String] = ["GRANT SELECT, DELETE, UPDATE ON <db>.* TO <user>"], extra: String = "",
        files: [String: String] = [:]
    ) throws -> (dir: String, db: String, my: PrivateMariaDB) {
        let my = try Self.mariadb()
        let db = try my.freshDatabase(prefix: "shop")
        try my.sql(Self.shop, database: db)
        for g in grants {
            try my.sql(
                g.replacingOccurrences(of: "<db>", with: db).replacingOccurrences(
                    of: "<user>", with: "'\(user)'@'localhost'"))
        }
        let dir = s.base + "/connectors"
        try writeFile(dir + "/shop.pass", password + "\n", mode: 0o600)
        try writeFile(
            dir + "/shop-live.yaml",
            """
            name: shop-live
            type: mysql
            connection: { socket: \(socket ?? my.socket), database: \(db), user: \(user) }
            password_file: shop.pass
            timeout: 20
            retries: 0
            \(extra)\(Self.tables)
            """)
        for (name, text) in files { try writeFile(dir + "/" + name, text) }
        try s.initialize()
        return (dir, db, my)
    }

    func rows(_ my: PrivateMariaDB, _ db: String, _ sql: String) throws -> [String] {
        try my.sql(sql, database: db).split(separator: "\n").map(String.init)
    }

    func live(_ rec: JobRecord) -> JobRecord.ConnectorResult? { rec.connectors.first { $0.name == "shop-live" } }

    func erasureSources(_ s: TempSpool, _ rec: JobRecord) throws -> [String: [String: Any]] {
        let url = URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let sources = (manifest["erasure"] as? [String: Any])?["sources"] as? [[String: Any]] ?? []
        var out: [String: [String: Any]] = [:]
        for src in sources where src["connector"] as? String == "shop-live" { out[src["table"] as? String ?? ""] = src }
        return out
    }

    // MARK: - Search

    func testExportFindsExactlyHerRowsAcrossTablesAndExpandsToACSVConnector() throws {
        let s = try TempSpool()
        let csv = "user_id,plan\n1042,gold\n10420,silver\n"
        let (dir, _, _) = try setUp(
            s,
            files: [
                "data/plans.csv": csv,
                "plans.yaml": "name: plans\ntype: csv\npaths: [ data/plans.csv ]\ncolumns: { user_id: user_id }\n",
            ])
        try s.drop("e.json", #"{"request_id": "E-1", "action": "export", "subject": {"email": "alice@example.com"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.record(requestID: "E-1"))
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        // customers 1042 (e-mail in another case), orders 1 and 3 (through her id), invoice 1,
        // tickets 2 (author) and 1 (body), audit 1 and 2; never Mal, 10420's order, ticket 4.
        XCTAssertEqual(live(rec)?.records, 8, "\(rec.connectors)")
        XCTAssertEqual(rec.connectors.first { $0.name == "plans" }?.records, 1, "her id 1042, never 10420")
    }

    func testInjectionSubjectsChangeNothingAndFindTheirRow() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s)
        let evil = "x'or'1'='1'--@example.com"
        let json = try JSONSerialization.data(withJSONObject: [
            "request_id": "E-X", "action": "export", "subject": ["email": evil],
        ])
        try s.drop("x.json", String(decoding: json, as: UTF8.self))
        try s.drop("y.json", #"{"request_id": "E-Y", "action": "export", "subject": {"user_id": "1 OR 1=1"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let x = try XCTUnwrap(try s.record(requestID: "E-X"))
        XCTAssertEqual(x.status, .completed, x.error ?? "")
        XCTAssertEqual(live(x)?.records, 1, "exactly Eve's row")
        if let y = try s.record(requestID: "E-Y") { XCTAssertEqual(live(y)?.records ?? 0, 0) }
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM customers"), ["4"], "nothing happened to the table")
    }

    // MARK: - Erasure

    func testErasureEachStrategyChildrenFirstAndTheRestUntouched() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s)
        try s.drop(
            "d.json",
            #"{"request_id": "D-1", "action": "delete", "subject": {"email": "alice@example.com", "user_id": "1042"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.record(requestID: "D-1"))
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        XCTAssertEqual(try rows(my, db, "SELECT id FROM customers ORDER BY id"), ["7", "1043", "10420"])
        XCTAssertEqual(
            try rows(my, db, "SELECT id, customer_id, total FROM orders"), ["2\t1043\t5.00", "4\t10420\t1.00"])
        XCTAssertEqual(try rows(my, db, "SELECT id FROM invoices ORDER BY id"), ["1", "2"], "retained")
        XCTAssertEqual(
            try rows(my, db, "SELECT * FROM tickets ORDER BY id"),
            [
                "1\tbob@example.org\t[REDACTED]", "3\tbob@example.org\tmalice@example.com again",
                "4\tbob@example.org\txalice@example.com.evil",
            ])
        XCTAssertEqual(
            try rows(my, db, "SELECT who, what FROM audit ORDER BY n"),
            ["[REDACTED]\tlogin", "[REDACTED]\tlogin", "bob@example.org\tlogin"])
        let src = try erasureSources(s, rec)
        XCTAssertEqual(src["customers"]?["deleted"] as? Int, 1)
        XCTAssertEqual(src["orders"]?["deleted"] as? Int, 2)
        XCTAssertEqual(src["audit"]?["redacted"] as? Int, 2)
        XCTAssertEqual(src["invoices"]?["retained"] as? Int, 1)
        let target = "mysql://localhost/\(db)?socket=\(my.socket)"
        XCTAssertEqual(src["customers"]?["file"] as? String ?? src["customers"]?["path"] as? String, target, "\(src)")
        let manifest = try String(contentsOfFile: s.root + "/outbox/\(rec.jobID)/manifest.json", encoding: .utf8)
        XCTAssertFalse(manifest.contains("rw-secret"))
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    func testDryRunChangesNothingAndReportsTheCounts() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s)
        let before = try rows(my, db, "CHECKSUM TABLE customers, orders, tickets, audit")
        try s.drop(
            "d.json",
            #"{"request_id": "D-DRY", "action": "delete", "subject": {"email": "alice@example.com"}, "dry_run": true}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let rec = try XCTUnwrap(try s.record(requestID: "D-DRY"))
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        XCTAssertEqual(try rows(my, db, "CHECKSUM TABLE customers, orders, tickets, audit"), before)
        let url = URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let erasure = try XCTUnwrap(manifest["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["dry_run"] as? Bool, true)
        let src = try XCTUnwrap(
            (erasure["sources"] as? [[String: Any]])?.first { $0["name"] as? String == "shop-live" })
        XCTAssertEqual(src["would_erase"] as? Int, 8)
        XCTAssertEqual(
            src["tables"] as? [String: Int],
            ["customers": 1, "orders": 2, "invoices": 1, "tickets": 2, "audit": 2], "orders through her expanded id")
    }

    // MARK: - Failures: PARTIAL with the server's message, nothing changed

    /// A second connector that works, so a failing `shop-live` makes the job PARTIAL (not FAILED).
    static let news = [
        "data/news.csv": "email,name\nalice@example.com,Alice\nbob@example.org,Bob\n",
        "news.yaml": "name: news\ntype: csv\npaths: [ data/news.csv ]\ncolumns: { email: email }\nerase: delete\n",
    ]

    func partial(_ s: TempSpool, _ dir: String, _ rid: String) throws -> JobRecord {
        try s.drop(
            "\(rid).json", #"{"request_id": "\#(rid)", "action": "delete", "subject": {"email": "alice@example.com"}}"#)
        _ = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 60)
        let rec = try XCTUnwrap(try s.record(requestID: rid))
        XCTAssertEqual(rec.status, .partial, "\(rid): \(rec.connectors)")
        return rec
    }

    func testWrongPasswordIsPartialWithTheServersMessage() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s, password: "not-it", files: Self.news)
        let rec = try partial(s, dir, "D-PW")
        let e = live(rec)?.error ?? rec.error ?? ""
        XCTAssertTrue(e.contains("Access denied for user 'dsar_rw'@'localhost'"), e)
        XCTAssertFalse(e.contains("not-it") || e.contains("alice@example.com"), e)
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM customers"), ["4"])
    }

    func testUnreachableServerIsPartialWithinTheTimeout() throws {
        let s = try TempSpool()
        let (dir, _, _) = try setUp(s, socket: "/nonexistent/mysqld.sock", files: Self.news)
        let start = Date()
        let rec = try partial(s, dir, "D-DOWN")
        XCTAssertLessThan(Date().timeIntervalSince(start), 40)
        let e = live(rec)?.error ?? rec.error ?? ""
        XCTAssertTrue(e.contains("/nonexistent/mysqld.sock") && e.contains("2002"), e)
    }

    func testMissingDeletePrivilegeIsPartialAndChangesNothing() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(
            s, user: "dsar_ro", password: "ro-secret", grants: ["GRANT SELECT ON <db>.* TO <user>"], files: Self.news)
        let rec = try partial(s, dir, "D-RO")
        let e = live(rec)?.error ?? rec.error ?? ""
        XCTAssertTrue(e.contains("command denied") || e.contains("privilege"), e)
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM customers"), ["4"])
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM tickets"), ["4"])
    }

    func testALockHeldByAnotherSessionRollsBackAndIsPartial() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s, extra: "lock_timeout: 1\n", files: Self.news)
        var settings = MySQLSettings(live: LiveDBSettings())
        settings.socket = my.socket
        settings.user = "root"
        settings.database = db
        let holder = try MySQLDatabase.connect(settings, password: nil, timeoutSeconds: 10, logger: Logger(label: "t"))
        defer { holder.close() }
        try holder.begin(readOnly: false)
        try holder.execute("UPDATE audit SET what = ? WHERE n = ?", [.text("held"), .integer(1)])
        let rec = try partial(s, dir, "D-LOCK")
        let e = (rec.connectors.compactMap(\.error) + [rec.error ?? ""]).joined(separator: " ")
        XCTAssertTrue(e.contains("Lock wait timeout") || e.contains("1205"), e)
        try holder.rollback()
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM customers"), ["4"], "rolled back")
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM orders"), ["4"])
    }

    func testAForeignKeyFromAnUnlistedTableFailsNamingTheConstraintAndChangesNothing() throws {
        let s = try TempSpool()
        let (dir, db, my) = try setUp(s, files: Self.news)
        // Only customers is configured: her orders still point at her row.
        try writeFile(
            dir + "/shop-live.yaml",
            try String(contentsOfFile: dir + "/shop-live.yaml", encoding: .utf8)
                .components(separatedBy: "\n").filter { !$0.contains("orders:") }.joined(separator: "\n"))
        let rec = try partial(s, dir, "D-FK")
        let e = (rec.connectors.compactMap(\.error) + [rec.error ?? ""]).joined(separator: " ")
        XCTAssertTrue(e.contains("orders_customer") && e.contains("1451"), e)
        XCTAssertFalse(e.contains("alice@example.com"), e)
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM customers"), ["4"], "rolled back")
        XCTAssertEqual(try rows(my, db, "SELECT COUNT(*) FROM audit WHERE who = '[REDACTED]'"), ["0"])
    }

    func testConnectorsCheckConnectsAndReportsAMissingPrivilege() throws {
        let s = try TempSpool()
        let (dir, db, _) = try setUp(
            s, user: "dsar_ro", password: "ro-secret", grants: ["GRANT SELECT ON <db>.* TO <user>"])
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertNotEqual(r.status, 0, r.stdout + r.stderr)
        let out = r.stdout + r.stderr
        XCTAssertTrue(out.contains("shop-live.yaml:"), out)
        XCTAssertTrue(out.contains("lacks DELETE on customers"), out)
        XCTAssertFalse(out.contains("ro-secret"), out)
        // With the grants the configuration needs, the check passes and names the target.
        try Self.mariadb().sql("GRANT DELETE ON \(db).customers TO 'dsar_ro'@'localhost'")
        for t in ["orders", "tickets"] { try Self.mariadb().sql("GRANT DELETE ON \(db).\(t) TO 'dsar_ro'@'localhost'") }
        try Self.mariadb().sql("GRANT UPDATE ON \(db).tickets TO 'dsar_ro'@'localhost'")
        try Self.mariadb().sql("GRANT UPDATE ON \(db).audit TO 'dsar_ro'@'localhost'")
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        XCTAssertTrue(ok.stdout.contains("mysql://localhost/\(db)"), ok.stdout)
    }

    func testAHungServerNeverHangsDsarPastTheTimeout() throws {
        let s = try TempSpool()
        let (dir, _, _) = try setUp(s, files: Self.news)
        // A second server of its own, stopped (SIGSTOP): it accepts the connection but never answers.
        let hung = try PrivateMariaDB.start()
        defer {
            if let pid = hung.server { kill(pid, SIGCONT) }
            hung.stop()
        }
        let yaml = try String(contentsOfFile: dir + "/shop-live.yaml", encoding: .utf8)
        let socketLine = try XCTUnwrap(yaml.components(separatedBy: "\n").first { $0.hasPrefix("connection:") })
        let mine = try XCTUnwrap(
            socketLine.components(separatedBy: "socket: ").last?.components(separatedBy: ",").first)
        try writeFile(
            dir + "/shop-live.yaml",
            yaml.replacingOccurrences(of: "timeout: 20", with: "timeout: 3").replacingOccurrences(
                of: mine, with: hung.socket))
        kill(try XCTUnwrap(hung.server), SIGSTOP)
        let start = Date()
        let rec = try partial(s, dir, "D-HUNG")
        XCTAssertLessThan(Date().timeIntervalSince(start), 20, "dsar must give up after the connector's timeout")
        let e = live(rec)?.error ?? ""
        XCTAssertTrue(e.contains("MySQL error 2013") || e.contains("timed out") || e.contains("timeout"), e)
    }

    // MARK: - kill -9

    func testKill9DuringTheErasureLeavesTheDatabaseUnchangedAndTheNextRunFinishes() throws {
        for point in ["live.erased", "live.verified"] {
            let s = try TempSpool()
            let (dir, db, my) = try setUp(s)
            try s.drop(
                "d.json",
                #"{"request_id": "D-K", "action": "delete", "subject": {"email": "alice@example.com", "user_id": "1042"}}"#
            )
            let crashed = try s.dsar(
                ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": point], timeout: 60)
            XCTAssertTrue(crashed.signaled && crashed.status == SIGKILL, "\(point): \(crashed.stderr.suffix(500))")
            // The server rolled the open transaction back when the connection died.
            var unchanged = false
            for _ in 0..<50 {
                if try rows(my, db, "SELECT COUNT(*) FROM customers") == ["4"],
                    try rows(my, db, "SELECT COUNT(*) FROM orders") == ["4"]
                {
                    unchanged = true
                    break
                }
                usleep(100_000)
            }
            XCTAssertTrue(unchanged, "\(point): the database must be unchanged after kill -9")
            let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 60)
            XCTAssertEqual(r.status, 0, "\(point): \(r.stderr.suffix(500))")
            XCTAssertEqual(try s.record(requestID: "D-K")?.status, .completed, point)
            XCTAssertEqual(try rows(my, db, "SELECT id FROM customers ORDER BY id"), ["7", "1043", "10420"], point)
            XCTAssertEqual(try rows(my, db, "SELECT id FROM orders ORDER BY id"), ["2", "4"], point)
        }
    }
}
