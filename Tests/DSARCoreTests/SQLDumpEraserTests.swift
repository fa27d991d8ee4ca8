import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

final class SQLDumpEraserTests: XCTestCase {
    let logger = Logger(label: "test")

    /// A `delete` table and a `retain` table: two results, the retained one says so; sqlite3 reads the
    /// rewritten dump and holds exactly the rows that should remain.
    func testDeleteTableAndRetainTableGiveTwoResults() async throws {
        guard let sqlite = which("sqlite3") else { throw XCTSkip("sqlite3 not installed") }
        _ = sqlite
        let s = try TempSpool()
        let db = s.base + "/shop.db"
        let setup = s.base + "/setup.sql"
        try """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);
        INSERT INTO users VALUES (1, 'alice@example.com'), (2, 'bob@example.com');
        CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, total INTEGER);
        INSERT INTO orders VALUES (10, 'alice@example.com', 5), (11, 'bob@example.com', 7), (12, 'alice@example.com', 9);
        """.write(toFile: setup, atomically: true, encoding: .utf8)
        XCTAssertEqual(try runTool("sqlite3", [db], stdinPath: setup).status, 0)
        let dumped = try runTool("sqlite3", [db, ".dump"])
        XCTAssertEqual(dumped.status, 0, dumped.stderr)
        let dump = s.base + "/shop.sql"
        try FileSystem.writeAtomically(dump, dumped.stdout)
        let c = try loadConnector(
            """
            type: sqldump
            paths: [ shop.sql ]
            tables:
              users: { match: { email: email }, erase: delete }
              orders: { match: { email: email }, erase: retain, reason: tax law (10 years) }
            """, in: s.base, name: "shop")
        let connector = try SQLDumpConnector(config: c)
        XCTAssertEqual(
            connector.eraseStrategies,
            [
                EraseStrategyEntry(table: "users", strategy: .delete),
                EraseStrategyEntry(table: "orders", strategy: .retain, reason: "tax law (10 years)"),
            ])
        let before = try AtomicRewrite.hash(path: dump)

        let result = try await connector.erase([eraseJob("alice@example.com")], logger: logger)

        let files = try XCTUnwrap(result["J1"])
        XCTAssertEqual(files.map(\.table), ["orders", "users"])
        let orders = files[0]
        XCTAssertEqual(orders.strategy, .retain)
        XCTAssertEqual(orders.table, "orders")
        XCTAssertEqual([orders.deleted, orders.redacted, orders.retained, orders.remaining], [0, 0, 2, 2])
        XCTAssertEqual(orders.reason, "tax law (10 years)")
        XCTAssertNil(orders.sha256After, "nothing of the retained table changed")
        let users = files[1]
        XCTAssertEqual(users.strategy, .delete)
        XCTAssertEqual(users.table, "users")
        XCTAssertEqual(users.file, dump)
        XCTAssertEqual([users.deleted, users.redacted, users.retained, users.remaining], [1, 0, 0, 0])
        XCTAssertEqual(users.sha256Before, before)
        XCTAssertEqual(users.sha256After, try AtomicRewrite.hash(path: dump))
        XCTAssertNil(users.reason)

        // The oracle: sqlite3 loads the rewritten dump.
        let restored = s.base + "/restored.db"
        let load = try runTool("sqlite3", [restored], stdinPath: dump)
        XCTAssertEqual(load.status, 0, load.stderr)
        let rows = try runTool(
            "sqlite3",
            [restored, "SELECT 'u', id, email FROM users UNION ALL SELECT 'o', id, email FROM orders ORDER BY 1, 2;"])
        XCTAssertEqual(
            String(decoding: rows.stdout, as: UTF8.self),
            "o|10|alice@example.com\no|11|bob@example.com\no|12|alice@example.com\nu|2|bob@example.com\n")
    }
}
