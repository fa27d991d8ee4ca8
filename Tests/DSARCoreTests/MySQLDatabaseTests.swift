import DSARTestSupport
import Foundation
import Logging
import XCTest

@testable import DSARCore

/// `MySQLDatabase` (the `mysql` kind's driver) against a real MariaDB server: a private `mariadbd`
/// on a Unix socket in a temp directory, started on first use and stopped in the class teardown.
final class MySQLDatabaseTests: XCTestCase {
    nonisolated(unsafe) private static var db = ""

    /// The server, with database `db` holding `customers`, `orders` (FK to customers) and the users
    /// `dsar_ro` (SELECT on both) and `dsar_rw` (SELECT, DELETE on customers, UPDATE on orders).
    private static let server = ServerSlot<PrivateMariaDB> { my in
        db = try my.freshDatabase(prefix: "live")
        try my.sql(
            """
            CREATE TABLE customers (id INT PRIMARY KEY, email VARCHAR(200) NOT NULL, name TEXT) ENGINE=InnoDB;
            CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, note VARCHAR(200),
              CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
            INSERT INTO customers VALUES (1, 'ann@example.com', 'Ann'), (2, 'bob@example.com', 'Bob');
            INSERT INTO orders VALUES (10, 1, 'first'), (11, 2, 'second');
            """, database: db)
        try my.createUser(
            "dsar_ro", password: "ro-secret",
            grants: [
                "GRANT SELECT ON \(db).customers TO <user>",
                "GRANT SELECT ON \(db).orders TO <user>",
            ])
        try my.createUser(
            "dsar_rw", password: "rw-secret",
            grants: [
                "GRANT SELECT, DELETE ON \(db).customers TO <user>",
                "GRANT SELECT, UPDATE ON \(db).orders TO <user>",
            ])
    }

    private static func mariadb() throws -> PrivateMariaDB { try server.get() }

    override class func tearDown() {
        server.release()
        super.tearDown()
    }

    private func settings(
        _ my: PrivateMariaDB, user: String? = "root", database: String? = nil
    ) -> MySQLSettings {
        var s = MySQLSettings(live: LiveDBSettings())
        s.socket = my.socket
        s.user = user
        s.database = database ?? Self.db
        return s
    }

    private func connect(
        _ my: PrivateMariaDB, user: String = "root", password: String? = nil, timeout: Double = 10
    ) throws -> MySQLDatabase {
        try MySQLDatabase.connect(
            settings(my, user: user), password: password, timeoutSeconds: timeout, logger: Logger(label: "test"))
    }

    private func rows(_ c: MySQLDatabase, _ sql: String, _ p: [LiveParam] = []) throws -> [[LiveValue]] {
        var out: [[LiveValue]] = []
        try c.query(sql, p) { out.append($0) }
        return out
    }

    // MARK: - Connecting

    func testConnectsViaSocketAndReportsTargetAndServer() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        defer { c.close() }
        XCTAssertEqual(c.target, "mysql://localhost/\(Self.db)?socket=\(my.socket)")
        XCTAssertTrue(c.isMariaDB, c.serverVersion)
        XCTAssertEqual(try rows(c, "SELECT DATABASE(), CURRENT_USER()"), [[.text(Self.db), .text("root@localhost")]])
        XCTAssertEqual(c.quote("a`b"), "`a``b`")
        XCTAssertEqual(c.quote("shop.orders"), "`shop`.`orders`")
        XCTAssertEqual(c.placeholder(3), "?")
        XCTAssertFalse(c.supportsArrayParameters)
    }

    func testConnectsThroughAnOptionFileGroupWithItsPassword() throws {
        let my = try Self.mariadb()
        let file = try my.optionFile(group: "dsar", user: "dsar_rw", password: "rw-secret")
        var s = MySQLSettings(live: LiveDBSettings())
        s.database = Self.db
        s.optionFile = file
        s.optionGroup = "dsar"
        let c = try MySQLDatabase.connect(s, password: nil, timeoutSeconds: 10, logger: Logger(label: "test"))
        defer { c.close() }
        XCTAssertEqual(try rows(c, "SELECT CURRENT_USER()"), [[.text("dsar_rw@localhost")]])
        XCTAssertEqual(s.target, "mysql://localhost/\(Self.db)")
    }

    func testWrongPasswordGivesTheServersMessage() throws {
        let my = try Self.mariadb()
        XCTAssertThrowsError(try connect(my, user: "dsar_ro", password: "wrong")) { e in
            let m = (e as? DSARError)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("Access denied for user 'dsar_ro'@'localhost'"), m)
            XCTAssertTrue(m.contains("MySQL error 1045"), m)
            XCTAssertFalse(m.contains("wrong"), "the password must not be in the message: \(m)")
        }
        let ok = try connect(my, user: "dsar_ro", password: "ro-secret")
        ok.close()
    }

    func testMissingSocketAndClosedPortFailWithTheLibraryMessage() throws {
        let my = try Self.mariadb()
        var s = settings(my)
        s.socket = my.dir + "/no-such.sock"
        XCTAssertThrowsError(try MySQLDatabase.connect(s, password: nil, timeoutSeconds: 5, logger: Logger(label: "t")))
        {
            let m = ($0 as? DSARError)?.message ?? "\($0)"
            XCTAssertTrue(m.contains("MySQL error 2002") && m.contains("no-such.sock"), m)
        }
        s.socket = nil
        s.host = "127.0.0.1"
        s.port = 1  // nothing listens there
        XCTAssertEqual(s.target, "mysql://127.0.0.1:1/\(Self.db)")
        XCTAssertThrowsError(try MySQLDatabase.connect(s, password: nil, timeoutSeconds: 5, logger: Logger(label: "t")))
        {
            let m = ($0 as? DSARError)?.message ?? "\($0)"
            XCTAssertTrue(m.contains("MySQL error 2002") || m.contains("MySQL error 2003"), m)
            XCTAssertTrue(m.contains("127.0.0.1"), m)
        }
    }

    func testUnreachableHostFailsWithinTheTimeout() throws {
        let my = try Self.mariadb()
        var s = settings(my)
        s.socket = nil
        s.host = "10.255.255.1"  // not routed: the SYN goes nowhere (or the network is unreachable at once)
        let start = Date()
        XCTAssertThrowsError(try MySQLDatabase.connect(s, password: nil, timeoutSeconds: 2, logger: Logger(label: "t")))
        {
            let m = ($0 as? DSARError)?.message ?? "\($0)"
            XCTAssertTrue(m.contains("MySQL error 20"), m)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 6, "connecting must give up after the timeout")
    }

    // MARK: - Bound values

    func testBoundParametersRoundTripAwkwardTextAndInjectionDoesNothing() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        defer { c.close() }
        try c.execute("CREATE TABLE IF NOT EXISTS awkward (id INT PRIMARY KEY, v VARCHAR(200)) ENGINE=InnoDB", [])
        try c.execute("DELETE FROM awkward", [])
        let values = [
            "it's", "back\\slash", "50% off", "a_b", "axb", "Zoë 😀 Ünïcode", "x'); DROP TABLE customers; --",
            "\"dq\"", "a%b",
        ]
        for (i, v) in values.enumerated() {
            XCTAssertEqual(
                try c.execute("INSERT INTO awkward (id, v) VALUES (?, ?)", [.integer(Int64(i)), .text(v)]), 1)
        }
        for (i, v) in values.enumerated() {
            XCTAssertEqual(try rows(c, "SELECT id FROM awkward WHERE v = ?", [.text(v)]), [[.integer(Int64(i))]], v)
        }
        // The prefilter: `%` and `_` in a needle are literal, case does not matter, with and without
        // NO_BACKSLASH_ESCAPES.
        for mode in ["", "NO_BACKSLASH_ESCAPES"] {
            try c.simple("SET SESSION sql_mode = '\(mode)'")
            func like(_ needle: String) throws -> [[LiveValue]] {
                try rows(
                    c, "SELECT id FROM awkward WHERE \(c.containsCaseInsensitive(c.quote("v"), "?")) ORDER BY id",
                    [.text(c.likePattern(needle))])
            }
            XCTAssertEqual(try like("A_B"), [[.integer(3)]], mode)
            XCTAssertEqual(try like("a%b"), [[.integer(8)]], mode)
            XCTAssertEqual(try like("% OFF"), [[.integer(2)]], mode)
            XCTAssertEqual(try like("k\\s"), [[.integer(1)]], mode)
            XCTAssertEqual(try like("ZOË"), [[.integer(5)]], mode)
            XCTAssertEqual(try like("drop table"), [[.integer(6)]], mode)
        }
        XCTAssertEqual(try rows(c, "SELECT COUNT(*) FROM customers"), [[.integer(2)]])
        XCTAssertEqual(try rows(c, "SELECT id FROM customers WHERE email IN (?, ?)", [.text(values[6]), .null]), [])
        XCTAssertThrowsError(try c.query("SELECT ?", [.textArray(["a"])]) { _ in })
        XCTAssertThrowsError(try c.query("SELECT ?, ?", [.text("a")]) { _ in }) {
            XCTAssertTrue("\($0)".contains("2 placeholders but 1 values"), "\($0)")
        }
    }

    func testValuesAreTypedByColumnKind() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        defer { c.close() }
        try c.execute(
            """
            CREATE OR REPLACE TABLE typed (i INT, big BIGINT UNSIGNED, d DECIMAL(10,2), f DOUBLE, t TINYINT(1),
              b BIT(1), s VARCHAR(20), tx MEDIUMTEXT, bl BLOB, vb VARBINARY(8), dt DATE, dtm DATETIME(3),
              ts TIMESTAMP NULL, j JSON, n INT NULL, y YEAR) ENGINE=InnoDB
            """, [])
        let long = String(repeating: "é0123456789", count: 20_000)
        try c.execute(
            """
            INSERT INTO typed VALUES (-7, 18446744073709551615, 12.50, 1.5, 1, b'1', 'héllo', ?, ?, x'00ff10',
              '2026-11-28', '2026-11-28 09:30:00.125', '2026-11-28 09:30:00', '{"a": [1, 2]}', NULL, 2026)
            """, [.text(long), .text("bin\u{0}ary")])
        var names: [String] = []
        var got: [[LiveValue]] = []
        names = try c.query("SELECT * FROM typed", []) { got.append($0) }
        XCTAssertEqual(
            names, ["i", "big", "d", "f", "t", "b", "s", "tx", "bl", "vb", "dt", "dtm", "ts", "j", "n", "y"])
        XCTAssertEqual(got.count, 1)
        let r = got[0]
        XCTAssertEqual(r[0], .integer(-7))
        XCTAssertEqual(r[1], .decimal("18446744073709551615"))
        XCTAssertEqual(r[2], .decimal("12.50"))
        XCTAssertEqual(r[3], .decimal("1.5"))
        XCTAssertEqual(r[4], .integer(1))
        XCTAssertEqual(r[5], .integer(1))
        XCTAssertEqual(r[6], .text("héllo"))
        XCTAssertEqual(r[7], .text(long), "a value longer than the first buffer is fetched whole")
        XCTAssertEqual(r[8], .bytes(Array("bin\u{0}ary".utf8)))
        XCTAssertEqual(r[9], .bytes([0, 255, 16]))
        XCTAssertEqual(r[10], .timestamp("2026-11-28"))
        XCTAssertEqual(r[11], .timestamp("2026-11-28T09:30:00.125"))
        XCTAssertEqual(r[12], .timestamp("2026-11-28T09:30:00Z"))
        XCTAssertEqual(r[13], .json(#"{"a": [1, 2]}"#))
        XCTAssertEqual(r[14], .null)
        XCTAssertEqual(r[15], .integer(2026))
        // Several long rows in a row: the grown buffers are rebound.
        try c.execute("INSERT INTO typed (i, tx) VALUES (1, ?), (2, ?)", [.text(long + "x"), .text("short")])
        got = []
        try c.query("SELECT tx FROM typed WHERE i >= 1 ORDER BY i", []) { got.append($0) }
        XCTAssertEqual(got, [[.text(long + "x")], [.text("short")]])
    }

    // MARK: - Catalog

    func testCatalogColumnsPrimaryKeyForeignKeysAndPrivileges() throws {
        let my = try Self.mariadb()
        let c = try connect(my, user: "dsar_rw", password: "rw-secret")
        defer { c.close() }
        let cols = try XCTUnwrap(try c.columns(of: "customers"))
        XCTAssertEqual(
            cols,
            [
                LiveColumn(name: "id", kind: .integer, nullable: false, typeName: "int(11)"),
                LiveColumn(name: "email", kind: .text, nullable: false, typeName: "varchar(200)"),
                LiveColumn(name: "name", kind: .text, nullable: true, typeName: "text"),
            ])
        XCTAssertEqual(try c.columns(of: "\(Self.db).orders")?.map(\.name), ["id", "customer_id", "note"])
        XCTAssertNil(try c.columns(of: "no_such_table"))
        XCTAssertEqual(try c.primaryKey(of: "customers"), ["id"])
        XCTAssertEqual(
            try c.foreignKeys(among: ["customers", "orders"]),
            [LiveForeignKey(constraint: "orders_customer", child: "orders", parent: "customers")])
        XCTAssertEqual(try c.foreignKeys(among: ["orders"]), [], "only keys between the listed tables")
        XCTAssertEqual(try c.privileges(on: "customers"), [.select, .delete])
        XCTAssertEqual(try c.privileges(on: "orders"), [.select, .update])
        let ro = try connect(my, user: "dsar_ro", password: "ro-secret")
        defer { ro.close() }
        XCTAssertEqual(try ro.privileges(on: "customers"), [.select])
        XCTAssertEqual(try ro.privileges(on: "awkward"), [])
        XCTAssertEqual(try connect(my).privileges(on: "customers"), [.select, .update, .delete], "root: global ALL")
        XCTAssertThrowsError(try ro.execute("DELETE FROM customers WHERE id = ?", [.integer(1)])) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("MySQL error 1142") && m.contains("DELETE command denied"), m)
        }
    }

    // MARK: - Transactions, locks, timeouts, interrupt

    func testALockHeldByAnotherSessionGivesTheLockWaitTimeout() throws {
        let my = try Self.mariadb()
        let holder = try connect(my)
        defer { holder.close() }
        try holder.begin(readOnly: false)
        XCTAssertEqual(try holder.execute("UPDATE orders SET note = ? WHERE id = ?", [.text("held"), .integer(10)]), 1)
        let c = try connect(my, user: "dsar_rw", password: "rw-secret")
        defer { c.close() }
        try c.setTimeouts(lockMilliseconds: 1000, statementMilliseconds: 20_000)
        try c.begin(readOnly: false)
        let start = Date()
        XCTAssertThrowsError(try c.execute("UPDATE orders SET note = ? WHERE id = ?", [.text("x"), .integer(10)])) {
            let m = "\($0)"
            XCTAssertTrue(m.contains("MySQL error 1205") && m.contains("Lock wait timeout"), m)
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        try c.rollback()
        try holder.rollback()
        XCTAssertEqual(try rows(c, "SELECT note FROM orders WHERE id = 10"), [[.text("first")]])
    }

    func testReadOnlyTransactionRefusesWritesAndRollbackUndoes() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        defer { c.close() }
        try c.begin(readOnly: true)
        XCTAssertThrowsError(try c.execute("UPDATE orders SET note = 'x' WHERE id = 11", []))
        try c.rollback()
        try c.begin(readOnly: false)
        XCTAssertEqual(
            try c.execute(
                "UPDATE orders SET note = ? WHERE id IN (?, ?)", [.text("second"), .integer(11), .integer(99)]), 1,
            "found rows, even unchanged")
        XCTAssertEqual(try c.execute("DELETE FROM orders WHERE id = ?", [.integer(11)]), 1)
        try c.rollback()
        XCTAssertEqual(try rows(c, "SELECT id FROM orders ORDER BY id"), [[.integer(10)], [.integer(11)]])
    }

    func testStatementTimeoutStopsALongQuery() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        defer { c.close() }
        try c.setTimeouts(lockMilliseconds: nil, statementMilliseconds: 500)
        let start = Date()
        XCTAssertThrowsError(try c.query("SELECT SLEEP(20) FROM customers", []) { _ in }) {
            XCTAssertTrue("\($0)".contains("MySQL error 1969"), "\($0)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testInterruptFromAnotherThreadCancelsASleep() throws {
        let my = try Self.mariadb()
        let c = try connect(my)
        let start = Date()
        let t = Thread { [c] in
            Thread.sleep(forTimeInterval: 0.5)
            c.interrupt()
        }
        t.start()
        XCTAssertThrowsError(try c.query("SELECT SLEEP(30)", []) { _ in }) {
            XCTAssertTrue("\($0)".contains("MySQL error 20"), "a client error (lost connection): \($0)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
        c.close()
        c.interrupt()  // after close: nothing happens
        XCTAssertThrowsError(try c.query("SELECT 1", []) { _ in })
    }
}
