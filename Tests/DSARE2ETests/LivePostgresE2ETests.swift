import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `type: postgres` end to end: the real `dsar` binary against a real, private PostgreSQL server,
/// with `psql` as the oracle of what the database holds afterwards.
final class LivePostgresE2ETests: XCTestCase {
    private static let server = ServerSlot<PrivatePostgres>()

    static func postgres() throws -> PrivatePostgres { try server.get() }

    override class func tearDown() {
        server.release()
        super.tearDown()
    }

    /// customers ← orders (FK), tickets (free text), loyalty (keyed by an id only the CSV knows).
    /// The subject is alice@example.com = customer 1042 = member 5555; near misses: malice@…,
    /// 10420, an order whose total is 1042.00, a ticket about malice@….
    static let schema = """
        CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name text, signed_up timestamptz);
        CREATE INDEX ON customers (lower(email));
        CREATE TABLE orders (id int PRIMARY KEY, customer_id bigint REFERENCES customers(id), total numeric(10,2),
          note text, paid bool, receipt bytea, meta jsonb);
        CREATE TABLE tickets (id int PRIMARY KEY, customer_id bigint, body text);
        CREATE TABLE loyalty (id int PRIMARY KEY, member_id bigint, points int, tier text);
        INSERT INTO customers VALUES (7, 'bob@example.org', 'Bob', '2026-01-02 03:04:05+00'),
          (1042, 'Alice@Example.com', 'Alice Liddell', '2026-11-28 09:30:00+00'),
          (10420, 'malice@example.com', 'Mal Ice', NULL);
        INSERT INTO orders VALUES (1, 1042, 19.99, 'first order', true, '\\x00ff', '{"gift": true}'),
          (2, 10420, 5.00, 'not the subject', false, NULL, NULL), (3, 1042, -3.50, 'refund', true, NULL, NULL),
          (4, 7, 1042.00, 'amount equals the subject id', true, NULL, NULL);
        INSERT INTO tickets VALUES (1, 7, 'Bob asks: please call alice@example.com back'),
          (2, 7, 'malice@example.com wrote in'), (3, 10420, 'ticket 10420 is closed');
        INSERT INTO loyalty VALUES (1, 5555, 120, 'gold'), (2, 55550, 3, 'none');
        """

    struct Shop {
        var spool: TempSpool
        var pg: PrivatePostgres
        var db: String
        var dir: String
    }

    /// A spool, a fresh database and connectors: `shop` (postgres) and `accounts` (CSV: e-mail →
    /// member id 5555, only known there), with `tables` as the shop's `tables:` section.
    func shop(
        tables: String? = nil, extra: String = "", user: String = "postgres", timeout: Int = 60
    ) throws -> Shop {
        let pg = try Self.postgres()
        let db = try pg.freshDatabase()
        try pg.sql(db, Self.schema)
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/accounts.csv", "email,member_id\nalice@example.com,5555\nmalice@example.com,55550\n")
        try writeFile(
            dir + "/accounts.yaml",
            "name: accounts\ntype: csv\npaths: [ data/accounts.csv ]\ncolumns: { email: email, member_id: user_id }\n")
        let t =
            tables ?? """
                  customers: { match: { email: email, id: user_id }, erase: delete }
                  orders: { match: { customer_id: user_id }, erase: delete }
                  tickets: { match: { customer_id: user_id }, text: [ body ], erase: delete }
                  loyalty: { match: { member_id: user_id }, erase: redact, redact: [ member_id, points, tier ] }
                """
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: postgres\nconnection: \"\(pg.conninfo(db, user: user))\"\ntimeout: \(timeout)\n\(extra)tables:\n\(t)\n"
        )
        try s.initialize()
        return Shop(spool: s, pg: pg, db: db, dir: dir)
    }

    /// Every row of the shop, as psql prints it (the oracle).
    func dump(_ sh: Shop) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (t, key) in [("customers", "id"), ("orders", "id"), ("tickets", "id"), ("loyalty", "id")] {
            let text = try sh.pg.sql(sh.db, "SELECT * FROM \(t) ORDER BY \(key)")
            out[t] = text.split(separator: "\n").map(String.init)
        }
        return out
    }

    func run(_ sh: Shop, env: [String: String] = [:]) throws -> CommandResult {
        try sh.spool.dsar(["run", "--settle", "0", "--connectors", sh.dir], env: env)
    }

    func record(_ sh: Shop, _ rid: String) throws -> JobRecord {
        try XCTUnwrap(try sh.spool.records().first { $0.requestID == rid }, "no job for \(rid)")
    }

    func manifest(_ sh: Shop, _ rec: JobRecord) throws -> [String: Any] {
        let d = try Data(contentsOf: URL(fileURLWithPath: sh.spool.root + "/outbox/\(rec.jobID)/manifest.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: d) as? [String: Any])
    }

    /// `data/shop/<table>.json` of an export's bundle, decrypted by the real age and read by unzip.
    func bundleTable(_ sh: Shop, _ rec: JobRecord, _ table: String) throws -> [[String: Any]] {
        guard let age = which("age"), let unzip = which("unzip") else {
            throw XCTSkip("age and unzip are the oracles of the bundle; install them")
        }
        let zip = sh.spool.base + "/\(rec.jobID).zip"
        let d = try runCommand(
            age,
            [
                "-d", "-i", sh.spool.teamKeys + "/age.key", "-o", zip,
                sh.spool.root + "/outbox/\(rec.jobID)/bundle.zip.age",
            ])
        XCTAssertEqual(d.status, 0, d.stderr)
        let r = try runCommand(unzip, ["-p", zip, "data/shop/\(table).json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let any = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        return try XCTUnwrap(any as? [[String: Any]])
    }

    // MARK: - Search

    func testExportFindsExactlyTheSubjectsRowsThroughExpansionAcrossConnectors() throws {
        let sh = try shop()
        let before = try dump(sh)
        try sh.spool.drop("e.json", #"{"request_id": "E", "action": "export", "email": "ALICE@example.com"}"#)
        let r = try run(sh)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try record(sh, "E")
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let shopResult = try XCTUnwrap(rec.connectors.first { $0.name == "shop" })
        XCTAssertEqual(shopResult.status, "ok", shopResult.error ?? "")
        // customers 1042, orders 1 and 3, ticket 1 (her e-mail in the text), loyalty 5555 (via the CSV).
        XCTAssertEqual(shopResult.records, 5, "near misses must not count")
        XCTAssertEqual(rec.connectors.first { $0.name == "accounts" }?.records, 1)
        XCTAssertEqual(try dump(sh), before, "an export changes nothing")

        let orders = try bundleTable(sh, rec, "orders")
        let rows = orders.compactMap { $0["record"] as? [String: Any] }.sorted { "\($0["id"]!)" < "\($1["id"]!)" }
        XCTAssertEqual(rows.map { ($0["id"] as? NSNumber)?.intValue }, [1, 3])
        XCTAssertEqual((rows.first?["total"] as? NSNumber)?.doubleValue, 19.99, "numeric as a JSON number")
        XCTAssertEqual(rows.first?["paid"] as? Bool, true)
        XCTAssertEqual(rows.first?["receipt"] as? String, "AP8=", "bytea as base64")
        XCTAssertEqual((rows.first?["meta"] as? [String: Any])?["gift"] as? Bool, true, "jsonb as JSON")
        XCTAssertTrue(rows.last?["receipt"] is NSNull, "NULL as null")
        let customer = try XCTUnwrap(try bundleTable(sh, rec, "customers").first?["record"] as? [String: Any])
        XCTAssertEqual(customer["signed_up"] as? String, "2026-11-28T09:30:00Z", "timestamptz as RFC 3339")
        XCTAssertEqual(
            (try bundleTable(sh, rec, "loyalty").first?["record"] as? [String: Any])?["tier"] as? String, "gold")
    }

    func testInjectionSubjectsAreValuesAndChangeNothing() throws {
        let sh = try shop()
        try sh.pg.sql(
            sh.db,
            #"INSERT INTO customers VALUES (666, $q$x')--drop_table%customers@example.com$q$, $q$O'Brien "\" {a,b}$q$, NULL)"#
        )
        let before = try dump(sh)
        let subjects: [[String: String]] = [
            ["email": #"x')--drop_table%customers@example.com"#],
            ["email": "%@example.com"], ["email": "_lice@example.com"], ["email": #"a"b\\c@example.com"#],
            ["email": "alice@example.com'--"], ["user_id": "1'); DROP TABLE customers; --"],
            ["user_id": "1042 OR 1=1"], ["user_id": "{1042}"], ["user_id": "1042,7"],
        ]
        for (k, ids) in subjects.enumerated() {
            var req: [String: String] = ["request_id": "I\(k)", "action": "export"]
            req.merge(ids) { a, _ in a }
            let body = try JSONSerialization.data(withJSONObject: req)
            try sh.spool.drop("i\(k).json", String(decoding: body, as: UTF8.self))
        }
        let r = try run(sh)
        let rejected = sh.spool.list("rejected").filter { $0.hasSuffix(".reason") }.map {
            sh.spool.reason(String($0.dropLast(7)))
        }
        XCTAssertEqual(rejected, [], r.stderr)
        XCTAssertEqual(try dump(sh), before, "the database is intact")
        let records = try sh.spool.records()
        XCTAssertGreaterThanOrEqual(records.count, 5, "rejected at intake: \(sh.spool.list("rejected"))")
        for rec in records {
            let shopResult = rec.connectors.first { $0.name == "shop" }
            XCTAssertEqual(shopResult?.status, "ok", "\(rec.requestID ?? ""): \(shopResult?.error ?? rec.error ?? "")")
            // Only the first subject exists (customer 666); wildcards and lists match nothing.
            XCTAssertEqual(shopResult?.records, rec.requestID == "I0" ? 1 : 0, rec.requestID ?? "")
        }
    }

    // MARK: - Erasure

    func testErasurePerStrategyLeavesExactlyTheOtherRowsUntouched() throws {
        let sh = try shop()
        let before = try dump(sh)
        try sh.spool.drop("d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com"}"#)
        let r = try run(sh)
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try record(sh, "D")
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let after = try dump(sh)
        XCTAssertEqual(after["customers"], before["customers"]!.filter { !$0.hasPrefix("1042|") })
        XCTAssertEqual(after["orders"], before["orders"]!.filter { !$0.hasPrefix("1|") && !$0.hasPrefix("3|") })
        XCTAssertEqual(
            after["tickets"],
            ["1|7|[REDACTED]", "2|7|malice@example.com wrote in", "3|10420|ticket 10420 is closed"],
            "the ticket that names her in its text only has its text redacted")
        XCTAssertEqual(
            after["loyalty"], ["1|||[REDACTED]", "2|55550|3|none"],
            "member_id, points (integers) → NULL, tier (text) → the placeholder")
        let m = try manifest(sh, rec)
        let e = try XCTUnwrap(m["erasure"] as? [String: Any])
        XCTAssertEqual(e["remaining"] as? Int, 0)
        XCTAssertFalse(String(decoding: try JSONSerialization.data(withJSONObject: m), as: UTF8.self).contains("alice"))
        // A second delete finds nothing left.
        try sh.spool.drop("d2.json", #"{"request_id": "D2", "action": "delete", "email": "alice@example.com"}"#)
        XCTAssertEqual(try run(sh).status, 0)
        XCTAssertEqual(try record(sh, "D2").status, .completed)
        XCTAssertEqual(try dump(sh), after)
    }

    func testARetainedChildBlockingTheDeleteRollsBackNamingTheConstraint() throws {
        let sh = try shop(
            tables: """
                  customers: { match: { email: email, id: user_id }, erase: delete }
                  orders: { match: { customer_id: user_id }, erase: retain, reason: "invoices, tax law" }
                """)
        let before = try dump(sh)
        try sh.spool.drop("d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com"}"#)
        _ = try run(sh)
        let rec = try record(sh, "D")
        XCTAssertEqual(rec.status, .partial)
        let text = (rec.connectors.first { $0.name == "shop" }?.error ?? "") + (rec.error ?? "")
        XCTAssertTrue(text.contains("orders_customer_id_fkey"), text)
        XCTAssertEqual(try dump(sh), before, "nothing changed")
    }

    func testDryRunChangesNothingAndReportsTheCounts() throws {
        let sh = try shop()
        let before = try dump(sh)
        try sh.spool.drop(
            "d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com", "dry_run": true}"#)
        XCTAssertEqual(try run(sh).status, 0)
        XCTAssertEqual(try dump(sh), before)
        let rec = try record(sh, "D")
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let e = try XCTUnwrap(try manifest(sh, rec)["erasure"] as? [String: Any])
        XCTAssertEqual(e["dry_run"] as? Bool, true)
        // The rehearsal ran every statement in a transaction that was rolled back: its counts.
        let rehearsed = try XCTUnwrap(e["rehearsed"] as? [[String: Any]], "\(e)")
        var changed: [String: [Int]] = [:]
        for f in rehearsed {
            changed[f["table"] as? String ?? "-"] = [f["deleted"] as? Int ?? -1, f["redacted"] as? Int ?? -1]
        }
        XCTAssertEqual(changed["customers"], [1, 0], "\(rehearsed)")
        XCTAssertEqual(changed["orders"], [2, 0], "\(rehearsed)")
        XCTAssertEqual(changed["tickets"], [0, 1], "\(rehearsed)")
        XCTAssertEqual(changed["loyalty"], [0, 1], "\(rehearsed)")
    }

    func testKill9DuringErasureLeavesTheDatabaseUnchangedAndTheNextRunFinishes() throws {
        for point in ["live.erased", "live.verified"] {
            let sh = try shop()
            let before = try dump(sh)
            try sh.spool.drop("d.json", #"{"request_id": "D", "action": "delete", "email": "alice@example.com"}"#)
            let crashed = try run(sh, env: ["DSAR_CRASH_AT": point])
            XCTAssertTrue(crashed.signaled, "\(point): \(crashed.status) \(crashed.stderr)")
            XCTAssertEqual(try dump(sh), before, "\(point): the server rolled the open transaction back")
            let again = try run(sh)
            XCTAssertEqual(again.status, 0, "\(point): \(again.stderr)")
            XCTAssertEqual(try record(sh, "D").status, .completed, point)
            XCTAssertFalse(try dump(sh)["customers"]!.contains { $0.hasPrefix("1042|") }, point)
        }
    }
}
