import DSARTestSupport
import Foundation
import Logging
import XCTest

@testable import DSARCore

#if canImport(Glibc)
import Glibc
#endif

/// The libpq driver (`PostgresDatabase`) against a real, private PostgreSQL server
/// (`PrivatePostgres`): parameters, typed values, the catalog, timeouts, locks, cancelling and
/// connection failures, each checked by what the server itself does.
final class PostgresDatabaseTests: XCTestCase {
    private static let server = ServerSlot<PrivatePostgres>()

    static func postgres() throws -> PrivatePostgres { try server.get() }

    override class func tearDown() {
        server.release()
        super.tearDown()
    }

    /// A fresh database with customers ← orders ← order_items (foreign keys) and a few rows.
    private func shop() throws -> (PrivatePostgres, String) {
        let pg = try Self.postgres()
        let db = try pg.freshDatabase()
        try pg.sql(
            db,
            """
            CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL, name varchar(80));
            CREATE TABLE orders (id int PRIMARY KEY, customer_id bigint REFERENCES customers(id), total numeric(10,2));
            CREATE TABLE order_items (order_id int REFERENCES orders(id), n int2, sku text, PRIMARY KEY (n, order_id));
            INSERT INTO customers VALUES (1, 'alice@example.com', 'Alice'), (2, 'bob@example.com', NULL);
            INSERT INTO orders VALUES (10, 1, 12.50), (11, 2, 3);
            INSERT INTO order_items VALUES (10, 1, 'A-1');
            """)
        return (pg, db)
    }

    private func connect(
        _ pg: PrivatePostgres, _ db: String, user: String = "postgres", password: String? = nil, timeout: Double = 10
    ) throws -> PostgresDatabase {
        let pairs = try PostgresConninfo.parse(pg.conninfo(db, user: user)).get()
        return try PostgresDatabase.connect(
            name: "shop-live", conninfo: pairs, password: password, timeoutSeconds: timeout,
            logger: Logger(label: "test"))
    }

    private func rows(_ d: PostgresDatabase, _ sql: String, _ params: [LiveParam] = []) throws -> [[LiveValue]] {
        var out: [[LiveValue]] = []
        try d.query(sql, params) { out.append($0) }
        return out
    }

    private func serverError(_ error: Error) -> PostgresServerError? {
        (error as? DSARError)?.cause as? PostgresServerError
    }

    func testConnectTargetQuoteAndPlaceholders() throws {
        let (pg, db) = try shop()
        let d = try connect(pg, db)
        defer { d.close() }
        XCTAssertEqual(d.target, "postgres://\(pg.socketDir):5432/\(db)")
        XCTAssertEqual(try rows(d, "SELECT current_setting('application_name')"), [[.text("dsar")]])
        XCTAssertEqual(d.quote("public.orders"), "\"public\".\"orders\"")
        XCTAssertEqual(d.quote("we\"ird"), "\"we\"\"ird\"")
        XCTAssertEqual(d.placeholder(3), "$3")
        // A name that needs quoting works through quote() against the real server.
        try d.execute("CREATE TABLE \(d.quote("we\"ird Table")) (\(d.quote("Mixed \"col\"")) text)", [])
        XCTAssertEqual(
            try d.execute("INSERT INTO \(d.quote("we\"ird Table")) VALUES ($1), ($2)", [.text("a"), .null]), 2)
        XCTAssertEqual(try d.columns(of: "public.we\"ird Table")?.map(\.name), ["Mixed \"col\""])
    }

    func testBoundParametersAndArraysKeepHardValuesIntact() throws {
        let (pg, db) = try shop()
        let hard = [
            "x'); DROP TABLE customers; --", "a\"b", "back\\slash", "\\\"", "{}", "{a,b}", "a,b", "NULL", "null",
            " spaced ", "", "ünïcødé 日本 🙂", "'", "%_", "$1",
        ]
        let d = try connect(pg, db)
        defer { d.close() }
        try d.execute("CREATE TABLE vals (v text)", [])
        for v in hard { try d.execute("INSERT INTO vals VALUES ($1)", [.text(v)]) }
        try d.execute("INSERT INTO vals VALUES ('near miss'), ('x'), ('a'), ('b')", [])
        // psql, not the driver, says what is stored.
        let stored = try pg.sql(db, "SELECT count(*) FROM vals WHERE v IN ('NULL', 'a\"b', 'back\\slash', '{}', '')")
        XCTAssertEqual(stored.trimmingCharacters(in: .whitespacesAndNewlines), "5")
        let found = try rows(d, "SELECT v FROM vals WHERE v = ANY($1::text[])", [.textArray(hard)])
        let texts = found.compactMap { if case .text(let s) = $0[0] { s } else { nil } }
        XCTAssertEqual(texts.sorted(), hard.sorted())
        XCTAssertEqual(found.count, hard.count)
        // Without a cast the server takes the column's type.
        XCTAssertEqual(try rows(d, "SELECT count(*) FROM vals WHERE v = ANY($1)", [.textArray(hard)]), [[.integer(15)]])
        XCTAssertEqual(try rows(d, "SELECT count(*) FROM vals WHERE v = ANY($1)", [.textArray([])]), [[.integer(0)]])
        let ids = try rows(
            d, "SELECT id FROM customers WHERE id = ANY($1::bigint[]) ORDER BY id", [.integerArray([2, 1, 99, -5])])
        XCTAssertEqual(ids, [[.integer(1)], [.integer(2)]])
        XCTAssertEqual(
            try rows(d, "SELECT $1::int8 + 1, $2::text IS NULL", [.integer(Int64.max - 1), .null]),
            [[.integer(Int64.max), .bool(true)]])
        XCTAssertEqual(PostgresValues.arrayLiteral(["a\"b", "c\\d", ""]), #"{"a\"b","c\\d",""}"#)
        // The database is intact: the injection subject was a value, nothing else.
        XCTAssertEqual(
            try pg.sql(db, "SELECT count(*) FROM customers").trimmingCharacters(in: .whitespacesAndNewlines), "2")
        XCTAssertThrowsError(try d.query("SELECT $1::text", [.text("a\u{0}b")]) { _ in }) { e in
            XCTAssertTrue("\(e)".contains("NUL"), "\(e)")
        }
    }

    func testILikePrefilterEscapesWildcards() throws {
        let (pg, db) = try shop()
        let d = try connect(pg, db)
        defer { d.close() }
        try d.execute("CREATE TABLE notes (body text)", [])
        for b in ["Mail ALICE@Example.com now", "100% sure", "1000 sure", "a_b", "axb", "back\\slash"] {
            try d.execute("INSERT INTO notes VALUES ($1)", [.text(b)])
        }
        func hits(_ needle: String) throws -> [String] {
            try rows(
                d, "SELECT body FROM notes WHERE \(d.containsCaseInsensitive(d.quote("body"), "$1")) ORDER BY body",
                [.text(d.likePattern(needle))]
            ).compactMap { if case .text(let s) = $0[0] { s } else { nil } }
        }
        XCTAssertEqual(try hits("alice@example"), ["Mail ALICE@Example.com now"])
        XCTAssertEqual(try hits("0%"), ["100% sure"])
        XCTAssertEqual(try hits("a_b"), ["a_b"])
        XCTAssertEqual(try hits("k\\s"), ["back\\slash"])
    }

    func testValuesAreTypedByColumnType() throws {
        let (pg, db) = try shop()
        try pg.sql(
            db,
            """
            CREATE TABLE typed (i2 int2, i4 int4, i8 int8, n numeric, f float8, b bool, raw bytea, d date,
              ts timestamp, tstz timestamptz, jb jsonb, j json, t text, u uuid, nothing text, nan float8);
            INSERT INTO typed VALUES (-2, 40000, 9007199254740993, 12.50, 0.1, true, '\\x00ff41'::bytea, '2026-11-28',
              '2026-11-28 09:30:00.25', '2026-11-28 10:30:00+01', '{"a": [1, 2]}', '{"b":1}', 'hé', 
              'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL, 'NaN');
            """)
        let d = try connect(pg, db)
        defer { d.close() }
        let r = try rows(d, "SELECT * FROM typed")
        XCTAssertEqual(
            r,
            [
                [
                    .integer(-2), .integer(40000), .integer(9_007_199_254_740_993), .decimal("12.50"), .decimal("0.1"),
                    .bool(true), .bytes([0, 255, 65]), .timestamp("2026-11-28"), .timestamp("2026-11-28T09:30:00.25"),
                    .timestamp("2026-11-28T09:30:00Z"), .json("{\"a\": [1, 2]}"), .json("{\"b\":1}"), .text("hé"),
                    .text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), .null, .text("NaN"),
                ]
            ])
        let kinds = try XCTUnwrap(d.columns(of: "typed")).map(\.kind)
        XCTAssertEqual(
            kinds,
            [
                .integer, .integer, .integer, .decimal, .decimal, .bool, .bytes, .timestamp, .timestamp, .timestamp,
                .json, .json, .text, .other, .text, .decimal,
            ])
        // How the shared search compares an id column: int4 against int8[] (a value beyond int4
        // finds nothing, not an error), uuid as text (a value that is no uuid finds nothing).
        XCTAssertEqual(
            try rows(d, "SELECT i4 FROM typed WHERE i4 = ANY($1)", [.integerArray([40000, Int64(Int32.max) + 1])]),
            [[.integer(40000)]])
        XCTAssertEqual(
            try rows(
                d, "SELECT count(*) FROM typed WHERE CAST(u AS text) = ANY($1)",
                [.textArray(["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "not-a-uuid"])]), [[.integer(1)]])
        XCTAssertEqual(try rows(d, "SELECT count(*) FROM typed WHERE i2 = $1", [.integer(-2)]), [[.integer(1)]])
    }

    func testCatalogColumnsKeysForeignKeysAndPrivileges() throws {
        let (pg, db) = try shop()
        let d = try connect(pg, db)
        defer { d.close() }
        XCTAssertEqual(
            try d.columns(of: "customers"),
            [
                LiveColumn(name: "id", kind: .integer, nullable: false, typeName: "bigint"),
                LiveColumn(name: "email", kind: .text, nullable: false, typeName: "text"),
                LiveColumn(name: "name", kind: .text, nullable: true, typeName: "character varying(80)"),
            ])
        XCTAssertEqual(try d.columns(of: "public.orders")?.map(\.name), ["id", "customer_id", "total"])
        XCTAssertNil(try d.columns(of: "nope"))
        XCTAssertNil(try d.columns(of: "x'); DROP TABLE customers; --"))
        XCTAssertEqual(try d.primaryKey(of: "customers"), ["id"])
        XCTAssertEqual(try d.primaryKey(of: "order_items"), ["n", "order_id"])
        XCTAssertEqual(
            try d.foreignKeys(among: ["customers", "orders", "order_items"]),
            [
                LiveForeignKey(constraint: "order_items_order_id_fkey", child: "order_items", parent: "orders"),
                LiveForeignKey(constraint: "orders_customer_id_fkey", child: "orders", parent: "customers"),
            ])
        XCTAssertEqual(try d.foreignKeys(among: ["customers", "order_items"]), [])
        XCTAssertEqual(try d.privileges(on: "customers"), [.select, .update, .delete])

        let ro = PrivatePostgres.roleRO
        try pg.sql(
            db,
            """
            GRANT SELECT ON customers TO \(ro); GRANT SELECT, DELETE ON orders TO \(ro);
            CREATE SCHEMA hidden; CREATE TABLE hidden.t (x int); GRANT SELECT ON hidden.t TO \(ro);
            """)
        let r = try connect(pg, db, user: ro, password: PrivatePostgres.rolePassword)
        defer { r.close() }
        XCTAssertEqual(try r.privileges(on: "customers"), [.select])
        XCTAssertEqual(try r.privileges(on: "orders"), [.select, .delete])
        XCTAssertEqual(try r.privileges(on: "order_items"), [])
        XCTAssertEqual(try r.privileges(on: "hidden.t"), [], "no USAGE on the schema")
        XCTAssertThrowsError(try r.execute("DELETE FROM customers WHERE id = $1", [.integer(1)])) { e in
            XCTAssertEqual(serverError(e)?.sqlstate, "42501")
            XCTAssertEqual((e as? DSARError)?.code, .permissions)
            XCTAssertTrue("\(e)".contains("permission denied") && "\(e)".contains("insufficient_privilege"), "\(e)")
        }
    }

    func testForeignKeyViolationNamesTheConstraintNotTheValues() throws {
        let (pg, db) = try shop()
        let d = try connect(pg, db)
        defer { d.close() }
        try d.begin(readOnly: false)
        XCTAssertThrowsError(try d.execute("DELETE FROM customers WHERE id = ANY($1)", [.integerArray([1])])) { e in
            XCTAssertEqual(serverError(e)?.sqlstate, "23503")
            XCTAssertEqual(serverError(e)?.constraint, "orders_customer_id_fkey")
            let m = "\(e)"
            XCTAssertTrue(m.contains("foreign_key_violation") && m.contains("orders_customer_id_fkey"), m)
            XCTAssertFalse(m.contains("Key (") || m.contains("(1)"), "DETAIL echoes values: \(m)")
        }
        // The failed transaction is never reported as committed.
        XCTAssertThrowsError(try d.commit()) { e in XCTAssertTrue("\(e)".contains("rolled back"), "\(e)") }
        XCTAssertEqual(
            try pg.sql(db, "SELECT count(*) FROM customers").trimmingCharacters(in: .whitespacesAndNewlines), "2")
        // Read-only transactions refuse writes.
        try d.begin(readOnly: true)
        XCTAssertThrowsError(try d.execute("DELETE FROM order_items", [])) { e in
            XCTAssertEqual(serverError(e)?.sqlstate, "25006")
        }
        try d.rollback()
        // A transaction that works commits.
        try d.begin(readOnly: false)
        XCTAssertEqual(try d.execute("DELETE FROM order_items WHERE order_id = ANY($1)", [.integerArray([10])]), 1)
        try d.commit()
        XCTAssertEqual(
            try pg.sql(db, "SELECT count(*) FROM order_items").trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }
}
