import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

final class LiveDBErasureTests: XCTestCase {
    let logger = Logger(label: "test")

    static let shop = """
        PRAGMA foreign_keys=ON;
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT, name TEXT, phone TEXT, age INTEGER);
        INSERT INTO customers VALUES (1042, 'alice@example.com', 'Alice', '+49 30 1234', 31),
          (1043, 'bob@example.org', 'Bob', NULL, 40), (10420, 'malice@example.com', 'Mal', NULL, 22);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), total REAL);
        INSERT INTO orders VALUES (1, 1042, 19.99), (2, 1043, 5.0), (3, 1042, 7.5);
        CREATE TABLE invoices (id INTEGER PRIMARY KEY, email TEXT, amount REAL);
        INSERT INTO invoices VALUES (1, 'alice@example.com', 9.5), (2, 'bob@example.org', 3.0);
        CREATE TABLE tickets (id INTEGER PRIMARY KEY, author TEXT, body TEXT);
        INSERT INTO tickets VALUES (1, 'bob@example.org', 'Bob says alice@example.com is rude'),
          (2, 'alice@example.com', 'my own ticket'), (3, 'bob@example.org', 'malice@example.com again');
        CREATE TABLE audit (who TEXT, what TEXT);
        INSERT INTO audit VALUES ('alice@example.com', 'login'), ('alice@example.com', 'login'), ('bob@example.org', 'login');
        """

    func setUp(_ s: TempSpool, _ tables: String, extra: String = "") throws -> LiveDBConnector {
        try makeSQLite(s.base + "/shop.db", LiveDBErasureTests.shop)
        let c = try loadConnector("type: sqlite\npath: shop.db\n\(extra)tables:\n" + tables, in: s.base, name: "app")
        return try XCTUnwrap(c.makeConnector() as? LiveDBConnector)
    }

    func alice(dryRun: Bool = false) -> EraseJob {
        EraseJob(
            jobID: "J1",
            identifiers: [
                Identifier(type: "email", value: "alice@example.com"), Identifier(type: "user_id", value: "1042"),
            ],
            dryRun: dryRun)
    }

    let allTables = """
          customers: { match: { email: email, id: user_id }, erase: delete }
          orders: { match: { customer_id: user_id }, erase: delete }
          invoices: { match: { email: email }, erase: retain, reason: "tax law" }
          tickets: { match: { author: email }, text: [ body ], erase: delete }
          audit: { match: { who: email }, erase: redact, redact: [ who ] }

        """

    /// Every strategy in one transaction, children (orders) before their parent (customers) from
    /// the catalog's foreign keys; sqlite3 then shows exactly the other rows, untouched.
    func testEachStrategyChildrenFirstAndTheRestUntouched() async throws {
        let s = try TempSpool()
        let c = try setUp(s, allTables)
        let r = try await c.erase([alice()], logger: logger)
        let files = try XCTUnwrap(r["J1"])
        let by = Dictionary(uniqueKeysWithValues: files.map { ($0.table ?? "", $0) })
        let counts = by.mapValues { [$0.deleted, $0.redacted, $0.retained, $0.remaining] }
        XCTAssertEqual(
            counts,
            [
                "customers": [1, 0, 0, 0], "orders": [2, 0, 0, 0], "invoices": [0, 0, 1, 1], "tickets": [1, 1, 0, 0],
                "audit": [0, 2, 0, 0],
            ])
        XCTAssertEqual(by["invoices"]?.reason, "tax law")
        XCTAssertEqual(by["customers"]?.file, "sqlite:\(s.base)/shop.db")
        XCTAssertTrue(files.allSatisfy { $0.error == nil })
        let db = s.base + "/shop.db"
        XCTAssertEqual(try sqliteRows(db, "SELECT id FROM customers ORDER BY id"), ["1043", "10420"])
        XCTAssertEqual(try sqliteRows(db, "SELECT id FROM orders"), ["2"])
        XCTAssertEqual(try sqliteRows(db, "SELECT id FROM invoices"), ["1", "2"])
        XCTAssertEqual(
            try sqliteRows(db, "SELECT * FROM tickets ORDER BY id"),
            ["1|bob@example.org|[REDACTED]", "3|bob@example.org|malice@example.com again"],
            "her ticket is gone; Bob's mentioning her has only the text column redacted")
        XCTAssertEqual(
            try sqliteRows(db, "SELECT * FROM audit"),
            ["[REDACTED]|login", "[REDACTED]|login", "bob@example.org|login"])
    }

    /// A dry run executes everything and rolls back, reporting the counts.
    func testDryRunRollsBack() async throws {
        let s = try TempSpool()
        let c = try setUp(s, allTables)
        let before = try sqliteRows(s.base + "/shop.db", ".dump")
        let r = try await c.erase([alice(dryRun: true)], logger: logger)
        let files = try XCTUnwrap(r["J1"])
        XCTAssertEqual(files.reduce(0) { $0 + $1.deleted }, 4)
        XCTAssertTrue(files.allSatisfy { $0.detail?.contains("rolled back") ?? false })
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", ".dump"), before)
    }

    /// Rows that remain after the statements (here: `redact` leaves the id that matched) roll the
    /// whole transaction back: nothing changes and the job gets the reason.
    func testRemainingRowsRollEverythingBack() async throws {
        let s = try TempSpool()
        let c = try setUp(
            s,
            """
              orders: { match: { customer_id: user_id }, erase: delete }
              customers: { match: { email: email, id: user_id }, erase: redact, redact: [ email ] }

            """)
        let before = try sqliteRows(s.base + "/shop.db", ".dump")
        let r = try await c.erase([alice()], logger: logger)
        let files = try XCTUnwrap(r["J1"])
        let customers = try XCTUnwrap(files.first { $0.table == "customers" })
        XCTAssertEqual([customers.deleted, customers.redacted, customers.remaining], [0, 0, 1])
        XCTAssertTrue(customers.error?.contains("rolled back") ?? false, customers.error ?? "")
        XCTAssertNotNil(files.first { $0.table == "orders" }?.error)
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", ".dump"), before)
    }

    /// A configured `order:` that deletes the parent first fails on the foreign key: the error
    /// names it and nothing changes.
    func testAForeignKeyFailureNamesTheConstraintAndChangesNothing() async throws {
        let s = try TempSpool()
        let c = try setUp(
            s,
            """
              customers: { match: { email: email, id: user_id }, erase: delete }
              orders: { match: { customer_id: user_id }, erase: delete }

            """, extra: "order: [ customers, orders ]\n")
        let before = try sqliteRows(s.base + "/shop.db", ".dump")
        do {
            _ = try await c.erase([alice()], logger: logger)
            XCTFail("the parent cannot go first")
        } catch let e as DSARError {
            XCTAssertTrue(e.message.contains("FOREIGN KEY constraint failed"), e.message)
            XCTAssertTrue(e.message.contains("orders(customer_id) REFERENCES customers"), e.message)
            XCTAssertTrue(e.message.contains("connector app"), e.message)
            XCTAssertFalse(e.message.contains("alice"), e.message)
        }
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", ".dump"), before)
    }

    /// A table without a primary key: rows are addressed by all their values (both identical rows go).
    func testNoPrimaryKeyDeletesByAllValues() async throws {
        let s = try TempSpool()
        let c = try setUp(s, "  audit: { match: { who: email }, erase: delete }\n")
        let r = try await c.erase([alice()], logger: logger)
        XCTAssertEqual(r["J1"]?.first?.deleted, 2)
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", "SELECT * FROM audit"), ["bob@example.org|login"])
    }

    /// Another connection holds the write lock: the erasure waits `busy_timeout`, fails with a
    /// message saying so, and nothing changes (the job is PARTIAL with it).
    func testALockHeldByAnotherConnectionFailsAfterBusyTimeout() async throws {
        let s = try TempSpool()
        let c = try setUp(s, allTables, extra: "busy_timeout: 0.3\n")
        let holder = try launch(
            "/usr/bin/env", ["sqlite3", s.base + "/shop.db"],
            stdin: "BEGIN IMMEDIATE;\nDELETE FROM invoices WHERE id = 2;\n.shell sleep 3\nROLLBACK;\n")
        XCTAssertTrue(
            waitUntil(timeout: 5) {
                (try? runTool("sqlite3", ["-cmd", ".timeout 0", s.base + "/shop.db", "BEGIN IMMEDIATE; ROLLBACK;"]))?
                    .status
                    != 0
            }, "the other connection holds the lock")
        let start = Date()
        do {
            _ = try await c.erase([alice()], logger: logger)
            XCTFail("the lock is held")
        } catch let e as DSARError {
            XCTAssertTrue(e.message.contains("another connection holds a lock"), e.message)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.5)
        _ = try holder.wait(timeout: 10)
        XCTAssertEqual(try sqliteRows(s.base + "/shop.db", "SELECT count(*) FROM customers"), ["3"])
    }
}
