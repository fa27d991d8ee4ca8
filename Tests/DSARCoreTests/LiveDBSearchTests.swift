import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

/// Builds an SQLite file with the real `sqlite3` CLI from `sql`.
func makeSQLite(_ path: String, _ sql: String) throws {
    let setup = path + ".setup.sql"
    try sql.write(toFile: setup, atomically: true, encoding: .utf8)
    let r = try runTool("sqlite3", [path], stdinPath: setup)
    XCTAssertEqual(r.status, 0, r.stderr)
    unlink(setup)
}

/// What `sqlite3` prints for `query` (rows as `a|b`), the oracle for the erasure tests.
func sqliteRows(_ path: String, _ query: String) throws -> [String] {
    let r = try runTool("sqlite3", [path, query])
    XCTAssertEqual(r.status, 0, r.stderr)
    return String(decoding: r.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
}

/// One scan job per identifier list.
func liveBatch(_ jobs: [[Identifier]]) -> ScanBatch {
    ScanBatch(
        jobs: jobs.enumerated().map {
            ScanJob(jobID: "J\($0.offset + 1)", action: .export, identifiers: $0.element, dryRun: false, workDir: "")
        })
}

final class LiveDBSearchTests: XCTestCase {
    let logger = Logger(label: "test")

    static let shop = """
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT, balance NUMERIC, avatar BLOB,
          vip BOOLEAN, created TIMESTAMP, prefs JSON, note TEXT);
        INSERT INTO customers VALUES
          (1042, 'Alice@Example.com', 'Alice', 12.5, X'CAFE', 1, '2026-11-28 09:30:00', '{"lang":"de"}', NULL),
          (1043, 'bob@example.org', 'Bob', 5, NULL, 0, NULL, NULL, 'friend of alice@example.com'),
          (10420, 'malice@example.com', 'Mal', NULL, NULL, 0, NULL, NULL, 'knows alice@example.com.evil.org'),
          (7, 'alice@example.com.evil.org', 'Eve', NULL, NULL, 0, NULL, NULL, 'id 10421 and user 104');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), total REAL);
        INSERT INTO orders VALUES (1, 1042, 19.99), (2, 1043, 5.0), (3, 1042, 7.5), (4, 10420, 1.0);
        CREATE TABLE tickets (id INTEGER PRIMARY KEY, body TEXT);
        INSERT INTO tickets VALUES (1, 'Mail from ALICE%40example.com about her order'),
          (2, 'malice@example.com wrote'), (3, 'nothing here'), (4, 'alice@example.com.evil.org spam');
        """

    func connector(_ s: TempSpool, _ tables: String) throws -> LiveDBConnector {
        try makeSQLite(s.base + "/shop.db", LiveDBSearchTests.shop)
        let c = try loadConnector("type: sqlite\npath: shop.db\ntables:\n" + tables, in: s.base, name: "app")
        return try XCTUnwrap(c.makeConnector() as? LiveDBConnector)
    }

    /// E-mail compared case-insensitively through the pushdown; near misses (`malice@`, a longer
    /// domain) never count; values come out typed.
    func testPushdownFindsExactlyTheSubjectsRowsTyped() async throws {
        let s = try TempSpool()
        let c = try connector(s, "  customers: { match: { email: email, id: user_id } }\n")
        let r = try await c.scan(liveBatch([[Identifier(type: "email", value: "alice@example.com")]]), logger: logger)
        let f = try XCTUnwrap(r["J1"])
        XCTAssertEqual(f.found.count, 1)
        let rec = f.found[0]
        XCTAssertEqual(rec.table, "customers")
        XCTAssertEqual(rec.source, "sqlite:\(s.base)/shop.db")
        XCTAssertEqual(rec.matchedOn, ["email"])
        let fields = Dictionary(uniqueKeysWithValues: rec.fields.map { ($0.key, $0.value) })
        XCTAssertEqual(fields["id"], .number("1042"))
        XCTAssertEqual(fields["balance"], .number("12.5"))
        XCTAssertEqual(fields["avatar"], .string("yv4="))
        XCTAssertEqual(fields["vip"], .bool(true))
        XCTAssertEqual(fields["created"], .string("2026-11-28T09:30:00Z"))
        XCTAssertEqual(fields["prefs"], .object([JSONMember(key: "lang", value: .string("de"))]))
        XCTAssertEqual(fields["note"], .null)
        XCTAssertEqual(f.coverage.map(\.records), [1], "one coverage entry per table, rows returned by the pushdown")
        XCTAssertEqual(f.derived.map(\.0), [Identifier(type: "user_id", value: "1042")])
        XCTAssertEqual(f.gaps.map(\.message), [])
    }

    /// The identity expands from customers (email → id) to orders (customer_id) in the next round,
    /// and an id never matches a longer or shorter number.
    func testIdentityExpansionAcrossTwoTables() async throws {
        let s = try TempSpool()
        let c = try connector(
            s, "  customers: { match: { email: email, id: user_id } }\n  orders: { match: { customer_id: user_id } }\n")
        let first = try await c.scan(
            liveBatch([[Identifier(type: "email", value: "alice@example.com")]]), logger: logger)
        let derived = try XCTUnwrap(first["J1"]).derived.map(\.0)
        XCTAssertEqual(derived, [Identifier(type: "user_id", value: "1042")])
        let second = try await c.scan(
            liveBatch([[Identifier(type: "email", value: "alice@example.com")] + derived]), logger: logger)
        let f = try XCTUnwrap(second["J1"])
        XCTAssertEqual(f.found.map(\.table).sorted(), ["customers", "orders", "orders"])
        let orderIDs = f.found.filter { $0.table == "orders" }.compactMap { r -> String? in
            if case .number(let n) = r.fields.first?.value { return n }
            return nil
        }
        XCTAssertEqual(orderIDs.sorted(), ["1", "3"])
    }

    /// `text:` columns: the server-side prefilter plus the exact matcher find the URL-encoded,
    /// upper-case mention and nothing else (not `malice@`, not the longer domain).
    func testTextColumnsAreConfirmedExactly() async throws {
        let s = try TempSpool()
        let c = try connector(s, "  tickets: { text: [ body ] }\n")
        let r = try await c.scan(liveBatch([[Identifier(type: "email", value: "alice@example.com")]]), logger: logger)
        let f = try XCTUnwrap(r["J1"])
        XCTAssertEqual(f.found.count, 1)
        XCTAssertEqual(f.found.first?.fields.first?.value, .number("1"))
        XCTAssertEqual(f.found.first?.matchedOn, ["email in body"])
        XCTAssertEqual(f.coverage.first?.records, 3, "the prefilter returns a superset: every row holding `example`")
    }

    /// The prefilter's needle is in every spelling the exact matcher accepts: for each of them,
    /// the matcher finds it and the needle occurs in it case-insensitively.
    func testPrefilterNeedleIsInEverySpellingTheMatcherAccepts() {
        let cases: [(Identifier, [String])] = [
            (
                Identifier(type: "email", value: "o'brien.x@bücher.de"),
                ["O'Brien.X@BÜCHER.de", "o'brien.x@xn--bcher-kva.de", "o%27brien.x%40b%C3%BCcher.de"]
            ),
            (
                Identifier(type: "email", value: "alice@example.com"),
                ["ALICE%40EXAMPLE.COM", "mailto:alice@example.com"]
            ),
            (Identifier(type: "user_id", value: "u-1042"), ["user=u-1042;", "\\tu-1042"]),
        ]
        for (id, texts) in cases {
            let table = IdentifierTable(jobs: [[id]])
            let matcher = TextMatcher(table: table, types: nil)
            let needle = try? XCTUnwrap(LiveDBConnector.prefilterNeedle(id))
            for t in texts {
                var hits: [TextMatch] = []
                Array(t.utf8).withUnsafeBytes { matcher.scan($0, into: &hits) }
                if hits.isEmpty { continue }  // the matcher does not accept this spelling: nothing to cover
                XCTAssertTrue(
                    t.lowercased().contains(needle ?? "\u{0}"),
                    "\(t) matches \(id.type) but lacks the needle \(needle ?? "-")")
            }
        }
        XCTAssertNil(
            LiveDBConnector.prefilterNeedle(Identifier(type: "phone", value: "+4930123456")), "phones: no safe needle")
    }

    /// Injection-shaped values are bound, never spliced: the right row is found, the db is intact.
    func testInjectionShapedValuesAreBound() async throws {
        let s = try TempSpool()
        let evil = "x'); DROP TABLE customers; --"
        try makeSQLite(
            s.base + "/shop.db",
            "CREATE TABLE customers (id TEXT PRIMARY KEY, email TEXT, note TEXT);\n"
                + "INSERT INTO customers VALUES ('x''); DROP TABLE customers; --', 'a%b_c\\d@example.com', 'ü \"q\"'),"
                + " ('x', 'aXb_c\\d@example.com', '%'), ('y', 'a%bXc\\d@example.com', '_');\n")
        let conn = try loadConnector(
            "type: sqlite\npath: shop.db\ntables:\n  customers: { match: { id: user_id, email: email }, text: [ note ] }\n",
            in: s.base, name: "app")
        let c = conn.makeConnector()
        let r = try await c.scan(
            liveBatch([
                [Identifier(type: "user_id", value: evil)], [Identifier(type: "email", value: "a%b_c\\d@example.com")],
            ]),
            logger: logger)
        XCTAssertEqual(r["J1"]?.found.count, 1)
        XCTAssertEqual(r["J2"]?.found.count, 1)
        XCTAssertEqual(r["J2"]?.found.first?.fields.first?.value, .string(evil))
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", "SELECT count(*) FROM customers"), ["3"])
    }

    /// A configured table or column the database lacks is a coverage gap (job PARTIAL), with a
    /// hint; `connectors check` reports both as `file:line: key: what`.
    func testMissingTableAndColumnAreGapsAndCheckProblems() async throws {
        let s = try TempSpool()
        try makeSQLite(s.base + "/shop.db", LiveDBSearchTests.shop)
        let yaml =
            "type: sqlite\npath: shop.db\ntables:\n  customer: { match: { email: email } }\n  orders: { match: { custmer_id: user_id } }\n"
        let (_, problems) = try parseConnectorYAML(yaml, in: s.base, name: "app")
        XCTAssertEqual(
            problems.map(\.description),
            [
                "\(s.base)/app.yaml:4: tables.customer: table \"customer\" does not exist in sqlite:\(s.base)/shop.db",
                "\(s.base)/app.yaml:5: tables.orders: table \"orders\" has no column \"custmer_id\" (did you mean \"customer_id\"?); it has: id, customer_id, total",
            ])
        try FileSystem.writeAtomically(s.base + "/app.yaml", Array(yaml.utf8))
        let (config, _) = try ConnectorCatalog.parse(file: s.base + "/app.yaml", checks: .init())
        let c = try XCTUnwrap(config).makeConnector()
        let r = try await c.scan(liveBatch([[Identifier(type: "email", value: "alice@example.com")]]), logger: logger)
        let gaps = try XCTUnwrap(r["J1"]).gaps.map(\.message)
        XCTAssertEqual(gaps.count, 2, "\(gaps)")
        XCTAssertTrue(gaps[0].contains("table \"customer\" does not exist"), gaps[0])
        XCTAssertTrue(gaps[1].contains("did you mean \"customer_id\"?"), gaps[1])
    }

    /// An inline password is refused wherever it sits; a missing file is a `path:` problem.
    func testInlinePasswordAndMissingFileAreProblems() throws {
        let s = try TempSpool()
        let (_, problems) = try parseConnectorYAML(
            "type: sqlite\npath: nope.db\npassword: hunter2\ntables:\n  t: { match: { email: email } }\n", in: s.base,
            name: "app")
        XCTAssertEqual(
            problems.map(\.description),
            [
                "\(s.base)/app.yaml:3: password: a password never sits in the YAML: use password_file (mode 0600), the library's own files (.pgpass, option_file) or the environment (PGPASSWORD, MYSQL_PWD)",
                "\(s.base)/app.yaml:2: path: no database file \(s.base)/nope.db",
            ])
    }
}
