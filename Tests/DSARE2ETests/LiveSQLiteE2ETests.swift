import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// The `sqlite` kind through the real `dsar` binary: export and delete jobs, identity expansion
/// across a live database and a CSV file, injection-shaped subjects, kill -9 during erasure and
/// `connectors check`. sqlite3 (the real CLI) builds the databases and is the oracle.
final class LiveSQLiteE2ETests: XCTestCase {
    static let evil = "x'); DROP TABLE customers; --"

    static let schema = """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT);
        INSERT INTO customers VALUES (1042, 'Alice@Example.com', 'Alice'), (1043, 'bob@example.org', 'Bob'),
          (10420, 'malice@example.com', 'Mal'), (77, 'quote@example.com', 'Quote ''"\\%_ü');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total REAL);
        INSERT INTO orders VALUES (1, 1042, 19.99), (2, 1043, 5.0), (3, 1042, 7.5), (4, 555, 1.0), (5, 77, 2.0);
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        INSERT INTO notes VALUES (1, 'call alice@example.com back'), (2, 'malice@example.com called'), (3, '100%_done\\');
        CREATE TABLE accounts (handle TEXT PRIMARY KEY, note TEXT);
        INSERT INTO accounts VALUES ('x''); DROP TABLE customers; --', 'evil'), ('%', 'percent'), ('_', 'underscore'),
          ('a\\b', 'backslash'), ('ü''"', 'unicode');
        """

    /// A spool with an `app` sqlite connector and a CSV connector whose user id leads to a
    /// customer in the database (`crm`: email → user id 555 → an order row).
    func setUp(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try makeSQLite(dir + "/data/app.db", Self.schema)
        try writeFile(
            dir + "/app.yaml",
            """
            name: app
            type: sqlite
            path: data/app.db
            tables:
              customers: { match: { email: email, id: user_id }, erase: delete }
              orders: { match: { customer_id: user_id }, erase: delete }
              notes: { text: [ body ], erase: delete }
              accounts: { match: { handle: user_id }, erase: delete }

            """)
        try writeFile(dir + "/data/crm.csv", "email,user_id\ncarol@example.net,555\n")
        try writeFile(
            dir + "/crm.yaml",
            "name: crm\ntype: csv\npaths: [ data/crm.csv ]\ncolumns: { email: email, user_id: user_id }\nerase: retain\nreason: contracts\n"
        )
        try s.initialize()
        return dir
    }

    func makeSQLite(_ path: String, _ sql: String) throws {
        try writeFile(path + ".sql", sql)
        let r = try runTool("sqlite3", [path], stdinPath: path + ".sql")
        XCTAssertEqual(r.status, 0, r.stderr)
        unlink(path + ".sql")
    }

    func rows(_ dir: String, _ query: String) throws -> [String] {
        let r = try runTool("sqlite3", [dir + "/data/app.db", query])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    func testExportFindsRowsAndExpandsAcrossConnectors() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        let s = try TempSpool()
        let dir = try setUp(s)
        try s.drop("a.json", #"{"action": "export", "email": "alice@example.com"}"#)
        try s.drop("c.json", #"{"action": "export", "email": "carol@example.net"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let recs = try s.records()
        XCTAssertEqual(recs.count, 2)
        var byCount: [Int] = []
        for rec in recs {
            XCTAssertEqual(rec.status, .completed, rec.error ?? "")
            let app = try XCTUnwrap(rec.connectors.first { $0.name == "app" })
            XCTAssertEqual(app.status, "ok", app.error ?? "")
            byCount.append(app.records)
        }
        // alice: her customer row, two orders (via id 1042), the note naming her; carol: order 4 via the CSV's id.
        XCTAssertEqual(byCount.sorted(), [1, 4])
        XCTAssertEqual(try rows(dir, "SELECT count(*) FROM customers"), ["4"], "an export changes nothing")
    }

    func testDeleteErasesExactlyTheSubjectsRowsAndInjectionChangesNothingElse() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        let s = try TempSpool()
        let dir = try setUp(s)
        try s.drop("a.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        try s.drop("e.json", #"{"action": "delete", "user_id": "x'); DROP TABLE customers; --"}"#)
        try s.drop("p.json", #"{"action": "delete", "user_id": "%"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        for rec in try s.records() { XCTAssertEqual(rec.status, .completed, rec.error ?? "") }
        XCTAssertEqual(try rows(dir, "SELECT id FROM customers ORDER BY id"), ["77", "1043", "10420"])
        XCTAssertEqual(try rows(dir, "SELECT id FROM orders ORDER BY id"), ["2", "4", "5"])
        XCTAssertEqual(
            try rows(dir, "SELECT * FROM notes ORDER BY id"),
            ["1|[REDACTED]", "2|malice@example.com called", "3|100%_done\\"],
            "a note that only mentions her keeps its row, the text column is redacted")
        XCTAssertEqual(
            try rows(dir, "SELECT note FROM accounts ORDER BY note"), ["backslash", "underscore", "unicode"])
        let file = try XCTUnwrap(FileManager.default.contents(atPath: dir + "/data/app.db"))
        let text = String(decoding: file, as: UTF8.self).lowercased()
        XCTAssertEqual(
            text.components(separatedBy: "alice@example.com").count, text.components(separatedBy: "malice@").count,
            "secure_delete: her e-mail is not left in the file's free pages (only malice@ is)")
        let journal = String(
            decoding: try JSONSerialization.data(withJSONObject: try s.journalEntries()), as: UTF8.self)
        XCTAssertFalse(journal.contains("alice@"), "no plaintext identifier in the journal")
    }

    /// kill -9 after the statements or after the verification, before COMMIT: the database is
    /// unchanged (SQLite rolls the open transaction back) and the next run finishes the job.
    func testKill9DuringErasureLeavesTheDatabaseUnchanged() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        for point in ["live.erased", "live.verified"] {
            let s = try TempSpool()
            let dir = try setUp(s)
            let before = try rows(dir, ".dump")
            try s.drop("a.json", #"{"action": "delete", "email": "alice@example.com"}"#)
            let crashed = try s.dsar(["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": point])
            XCTAssertTrue(crashed.signaled, "\(point): \(crashed.stderr)")
            XCTAssertEqual(try rows(dir, ".dump"), before, "\(point): the database changed")
            let again = try s.dsar(["run", "--settle", "0", "--connectors", dir])
            XCTAssertEqual(again.status, 0, "\(point): \(again.stderr)")
            XCTAssertEqual(try s.records().first?.status, .completed, point)
            XCTAssertEqual(try rows(dir, "SELECT id FROM customers ORDER BY id"), ["77", "1043", "10420"], point)
        }
    }

    func testConnectorsCheckReportsMissingTableColumnAndInlinePassword() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        let s = try TempSpool()
        let dir = try setUp(s)
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        // What it found: where it connected, and per table the columns used and the privileges.
        XCTAssertTrue(ok.stdout.contains("connected to sqlite:\(dir)/data/app.db"), ok.stdout)
        XCTAssertTrue(
            ok.stdout.contains(
                "table customers: columns email, id; erase: delete; role may SELECT, UPDATE, DELETE (needs SELECT, DELETE)"
            ),
            ok.stdout)
        try writeFile(
            dir + "/app.yaml",
            """
            name: app
            type: sqlite
            path: data/app.db
            password: hunter2
            tables:
              customer: { match: { email: email } }
              orders: { match: { custmer_id: user_id } }

            """)
        let bad = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("app.yaml:4: password: a password never sits in the YAML"), bad.stderr)
        XCTAssertFalse(bad.stderr.contains("hunter2"), bad.stderr)
        try writeFile(
            dir + "/app.yaml",
            "name: app\ntype: sqlite\npath: data/app.db\ntables:\n  customer: { match: { email: email } }\n  orders: { match: { custmer_id: user_id } }\n"
        )
        let missing = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(
            missing.stderr.contains("app.yaml:5: tables.customer: table \"customer\" does not exist"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("(did you mean \"customer_id\"?)"), missing.stderr)
    }

    /// A dry-run delete carries the erasure out in a transaction and rolls it back: the receipt gives
    /// what would change per table, and the database is byte-for-byte the same afterwards.
    func testADryRunDeleteRehearsesTheErasureAndRollsItBack() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        let s = try TempSpool()
        let dir = try setUp(s)
        let before = try Data(contentsOf: URL(fileURLWithPath: dir + "/data/app.db"))
        try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com", "dry_run": true}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        XCTAssertTrue(rec.dryRun)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/data/app.db")), before, "rolled back")
        XCTAssertEqual(try rows(dir, "SELECT count(*) FROM customers WHERE id = 1042"), ["1"])
        let m =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")))
            as! [String: Any]
        let erasure = try XCTUnwrap(m["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["dry_run"] as? Bool, true)
        let rehearsed = try XCTUnwrap(erasure["rehearsed"] as? [[String: Any]])
        var deleted: [String: Int] = [:]
        for f in rehearsed { deleted[f["table"] as? String ?? "-"] = f["deleted"] as? Int }
        XCTAssertEqual(deleted["customers"], 1, "\(rehearsed)")
        XCTAssertEqual(deleted["orders"], 2, "\(rehearsed)")
        XCTAssertEqual((erasure["rehearsal_errors"] as? [String: Any])?.count, 0)
        // Nothing was changed, so nothing is journaled as erased.
        let types = try Journal(layout: s.layout, signer: nil).entries().map(\.entry.type)
        XCTAssertFalse(types.contains("file.erased"), "\(types)")
    }
}
