import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

#if canImport(Glibc)
import Glibc
#endif

/// Tests of `SQLRewriter` on the dumps written by the real tools (Tests/Fixtures/sql), with the real
/// databases as oracles: each rewritten dump is loaded into a fresh PostgreSQL / MariaDB / SQLite
/// database with the real client (`psql -v ON_ERROR_STOP=1 -f`, `mariadb <`, `sqlite3 -bail <`) and
/// its tables are read back as JSON by the database itself and compared with expected.json.
///
/// PostgreSQL and MariaDB run privately for this class: a cluster / datadir in a temp directory,
/// Unix socket only (no TCP), started on first use and stopped in the class teardown. As root,
/// `initdb`/`pg_ctl` run as the `postgres` user (`runuser`) and `mariadbd` with `--user=root`.
final class SQLRewriterTests: XCTestCase {
    static let fixtureDir: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/sql").path

    static let dumps: [(file: String, dialect: SQLDialect)] = [
        ("pg_default.sql", .postgres),
        ("pg_inserts.sql", .postgres),
        ("pg_column_inserts.sql", .postgres),
        ("pg_rows_per_insert.sql", .postgres),
        ("mysql_default.sql", .mysql),
        ("mysql_skip_extended.sql", .mysql),
        ("mysql_hex_blob.sql", .mysql),
        ("sqlite.sql", .sqlite),
    ]

    static let tableColumns: [(table: String, columns: [String])] = [
        ("customers", ["id", "email", "name", "phone", "notes", "avatar"]),
        ("orders", ["id", "customer_id", "total", "note"]),
        ("support_tickets", ["id", "customer_email", "body"]),
    ]

    static let subjectEmail = "alice@example.com"
    static let subjectID = 1042
    /// Placeholder for support_tickets.customer_email.
    static let emailPlaceholder = "[REDACTED]"
    /// Placeholder for support_tickets.body: quotes, a backslash, a tab and a newline, to test escaping.
    static let bodyPlaceholder = "[REDACTED] it's \\ \"q\"\ttab\nline"

    // MARK: - Private database servers

    private static let postgresServer = ServerSlot<PrivatePostgres>()
    private static let mariaServer = ServerSlot<PrivateMariaDB>()

    private static func postgres() throws -> PrivatePostgres { try postgresServer.get() }

    private static func mariadb() throws -> PrivateMariaDB { try mariaServer.get() }

    override class func tearDown() {
        postgresServer.release()
        mariaServer.release()
        super.tearDown()
    }

    // MARK: - Helpers

    func fixture(_ name: String) -> String { Self.fixtureDir + "/" + name }

    func readAll(_ path: String, _ dialect: SQLDialect) throws -> [SQLRow] {
        var reader = try SQLDumpReader(path: path, dialect: dialect)
        var rows: [SQLRow] = []
        try reader.forEachRow { rows.append($0) }
        return rows
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func tempDir() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqlrewrite-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o755)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }

    func write(_ data: [UInt8], _ name: String) throws -> String {
        let path = try tempDir() + "/" + name
        try Data(data).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Rewrites `source` into a new temp file; returns its path and the counts.
    func rewrite(
        _ source: String, _ dialect: SQLDialect, _ plan: SQLRewritePlan, bufferSize: Int? = nil, readerChunk: Int? = nil
    ) throws -> (path: String, deleted: Int, redacted: Int) {
        let out = try tempDir() + "/rewritten.sql"
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestError("cannot create \(out)") }
        defer { close(fd) }
        let counts: (deleted: Int, redacted: Int)
        if bufferSize != nil || readerChunk != nil {
            counts = try SQLRewriter.rewrite(
                source: source, dialect: dialect, plan: plan, output: fd, outputPath: out,
                bufferSize: bufferSize ?? SQLSplicer.defaultBufferSize, readerChunk: readerChunk)
        } else {
            counts = try SQLRewriter.rewrite(source: source, dialect: dialect, plan: plan, output: fd, outputPath: out)
        }
        return (out, counts.deleted, counts.redacted)
    }

    /// Rewrites a dump given as text; returns the output as text.
    func rewriteText(_ text: String, _ dialect: SQLDialect, _ edits: (SQLRow) -> [SQLRowEdit]) throws -> String {
        let src = try write(Array(text.utf8), "in.sql")
        var plan = SQLRewritePlan()
        for r in try readAll(src, dialect) {
            for e in edits(r) { plan.add(r, e) }
        }
        let out = try rewrite(src, dialect, plan)
        return String(decoding: try bytes(out.path), as: UTF8.self)
    }

    static func int(_ v: SQLValue?) -> Int? {
        guard case .number(let n)? = v else { return nil }
        return Int(n)
    }

    /// The first value of a row as an integer (the id in every test table).
    func id(_ r: SQLRow) -> Int? { Self.int(r.values.first) }

    // MARK: - The subject's plan (decided once, applied to dump rows and to expected.json alike)

    /// The edits for one row: delete customer 1042 and its orders; redact the tickets sent from
    /// alice@example.com (customer_email and body, two edits that merge). Also redact a blob
    /// (customers 10420 avatar) and a number (orders 4 total), which must become NULL.
    static func edits(table: String, _ value: (String) -> Any?) -> [(edit: SQLRowEdit?, columns: [String: String?])] {
        func int(_ v: Any?) -> Int? {
            if let v = v as? SQLValue { return SQLRewriterTests.int(v) }
            return (v as? NSNumber)?.intValue
        }
        func str(_ v: Any?) -> String? {
            if let v = v as? SQLValue, case .string(let b) = v { return String(decoding: b, as: UTF8.self) }
            return v as? String
        }
        let id = int(value("id"))
        switch table {
        case "customers":
            if id == subjectID { return [(.delete, [:])] }
            if id == 10420 { return [(nil, ["avatar": nil])] }
        case "orders":
            if int(value("customer_id")) == subjectID { return [(.delete, [:])] }
            if id == 4 { return [(nil, ["total": nil])] }
        case "support_tickets":
            if str(value("customer_email")) == subjectEmail {
                return [(nil, ["customer_email": emailPlaceholder]), (nil, ["body": bodyPlaceholder])]
            }
        default:
            break
        }
        return []
    }

    /// The plan for a parsed dump, and the rows (table, values) the rewritten dump must contain.
    func subjectPlan(_ rows: [SQLRow]) -> (plan: SQLRewritePlan, remaining: [String]) {
        var plan = SQLRewritePlan()
        var remaining: [String] = []
        for r in rows {
            let decided = Self.edits(table: r.table) { r[$0] }
            var values = r.values
            var deleted = false
            for (edit, columns) in decided {
                if edit == .delete {
                    // A redaction of a deleted row is ignored: delete wins, in either order.
                    plan.add(r, .redact(columns: [1], placeholder: "ignored"))
                    plan.add(r, .delete)
                    plan.add(r, .redact(columns: [2], placeholder: "ignored"))
                    deleted = true
                }
                for (name, placeholder) in columns {
                    let i = r.columns.firstIndex(of: name)!
                    // A number or blob is redacted with a placeholder too: it must come out NULL.
                    plan.add(r, .redact(columns: [i], placeholder: placeholder ?? "[REDACTED]"))
                    if case .string = values[i], let placeholder {
                        values[i] = .string(Array(placeholder.utf8))
                    } else {
                        values[i] = .null
                    }
                }
            }
            if !deleted { remaining.append(Self.describe(r.table, values)) }
        }
        return (plan, remaining)
    }

    static func describe(_ table: String, _ values: [SQLValue]) -> String {
        "\(table): "
            + values.map { v -> String in
                switch v {
                case .null: return "NULL"
                case .number(let n): return "n:\(n)"
                case .string(let b): return "s:" + String(decoding: b, as: UTF8.self).debugDescription
                case .blob(let b): return "x:" + b.map { String(format: "%02x", $0) }.joined()
                case .bool(let b): return "b:\(b)"
                case .raw(let s): return "raw:\(s)"
                }
            }.joined(separator: ", ")
    }

    /// expected.json with the plan applied, as table → rows (sorted by id) of column → normalized value.
    func expectedAfterPlan() throws -> [String: [[String: String]]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("expected.json")))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [[String: Any]]])
        var out: [String: [[String: String]]] = [:]
        for (table, columns) in Self.tableColumns {
            var rows: [[String: String]] = []
            for row in json[table] ?? [] {
                let decided = Self.edits(table: table) { row[$0] }
                if decided.contains(where: { $0.edit == .delete }) { continue }
                var r: [String: Any] = row
                for (_, cols) in decided {
                    for (name, placeholder) in cols { r[name] = placeholder.map { $0 as Any } ?? NSNull() }
                }
                rows.append(Dictionary(uniqueKeysWithValues: columns.map { ($0, Self.norm(r[$0])) }))
            }
            out[table] = rows.sorted { Double($0["id"]!.dropFirst(2))! < Double($1["id"]!.dropFirst(2))! }
        }
        return out
    }

    /// A value from expected.json or a database's JSON output, normalized for comparison.
    static func norm(_ v: Any?) -> String {
        switch v {
        case nil: return "NULL"
        case is NSNull: return "NULL"
        case let s as String: return "s:" + s
        case let n as NSNumber: return String(format: "n:%.4f", n.doubleValue)
        default: return "?:\(v!)"
        }
    }

    /// Parses a database's JSON array of row objects into normalized rows.
    func normalizedRows(_ json: String, columns: [String], context: String) throws -> [[String: String]] {
        let text = json.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return [] }  // sqlite3 -json prints nothing for no rows
        guard let rows = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
            throw TestError("\(context): not a JSON array of objects: \(text.prefix(300))")
        }
        return rows.map { row in Dictionary(uniqueKeysWithValues: columns.map { ($0, Self.norm(row[$0])) }) }
    }

    /// Compares the database's tables (read by `query(table, columns)`, which returns JSON) with expected.json after the plan.
    func assertDatabaseMatches(_ label: String, _ query: (String, [String]) throws -> String) throws {
        let expected = try expectedAfterPlan()
        for (table, columns) in Self.tableColumns {
            let actual = try normalizedRows(try query(table, columns), columns: columns, context: "\(label) \(table)")
            if table == "customers" {
                XCTAssertFalse(
                    actual.contains { $0["id"] == "n:1042.0000" }, "\(label): the subject's customer row is still there"
                )
            }
            if table == "orders" {
                XCTAssertFalse(
                    actual.contains { $0["customer_id"] == "n:1042.0000" },
                    "\(label): the subject's orders are still there")
            }
            if table == "support_tickets" {
                let t1 = actual.first { $0["id"] == "n:1.0000" }
                XCTAssertEqual(t1?["customer_email"], "s:" + Self.emailPlaceholder, "\(label): ticket 1 customer_email")
                XCTAssertEqual(t1?["body"], "s:" + Self.bodyPlaceholder, "\(label): ticket 1 body")
            }
            let exp = expected[table] ?? []
            XCTAssertEqual(actual.count, exp.count, "\(label): \(table) row count")
            for (a, e) in zip(actual, exp) where a != e {
                XCTFail(
                    "\(label): \(table) row differs:\n  got      \(a.sorted { $0.key < $1.key })\n  expected \(e.sorted { $0.key < $1.key })"
                )
            }
        }
    }

    /// Rewrites a fixture with the subject's plan and checks the counts.
    func rewriteFixture(_ file: String, _ dialect: SQLDialect) throws -> String {
        let src = fixture(file)
        let (plan, _) = subjectPlan(try readAll(src, dialect))
        let out = try rewrite(src, dialect, plan)
        XCTAssertEqual(out.deleted, 4, "\(file): customer 1042 and orders 1-3")
        XCTAssertEqual(out.redacted, 3, "\(file): ticket 1, customer 10420, order 4")
        return out.path
    }

    // MARK: - Byte identity and re-parsing

    func testEmptyPlanIsByteIdentical() throws {
        for (file, dialect) in Self.dumps {
            let src = fixture(file)
            let out = try rewrite(src, dialect, SQLRewritePlan())
            XCTAssertEqual(out.deleted, 0)
            XCTAssertEqual(out.redacted, 0)
            XCTAssertEqual(try bytes(out.path), try bytes(src), file)
            let small = try rewrite(src, dialect, SQLRewritePlan(), bufferSize: 16)
            XCTAssertEqual(try bytes(small.path), try bytes(src), "\(file), 16-byte buffer")
        }
    }

    /// A plan whose edits change nothing (redacting NULLs to NULL) still goes through the reader
    /// and the splicer: the output must equal the input.
    func testNoOpEditsAreByteIdentical() throws {
        let src = try write(
            Array("CREATE TABLE t (id integer, s text);\nINSERT INTO t VALUES (1,NULL),(2,'b');\n".utf8), "noop.sql")
        var plan = SQLRewritePlan()
        for r in try readAll(src, .sqlite) where id(r) == 1 {
            plan.add(r, .redact(columns: [1], placeholder: "x"))
        }
        let out = try rewrite(src, .sqlite, plan)
        XCTAssertEqual(
            String(decoding: try bytes(out.path), as: UTF8.self),
            "CREATE TABLE t (id integer, s text);\nINSERT INTO t VALUES (1,NULL),(2,'b');\n")
    }

    /// For every fixture: the rewritten dump, read again by SQLDumpReader, has exactly the remaining
    /// rows (redacted values replaced), and every byte outside the edited statements is unchanged.
    func testRewrittenFixturesReparseToRemainingRows() throws {
        for (file, dialect) in Self.dumps {
            let src = fixture(file)
            let original = try bytes(src)
            let origRows = try readAll(src, dialect)
            let (plan, remaining) = subjectPlan(origRows)
            let out = try rewrite(src, dialect, plan)
            XCTAssertEqual(out.deleted, 4, file)
            XCTAssertEqual(out.redacted, 3, file)
            let outRows = try readAll(out.path, dialect)
            XCTAssertEqual(outRows.map { Self.describe($0.table, $0.values) }, remaining, file)

            // The same with a 16-byte copy buffer and a 7-byte reader chunk: the same bytes.
            let small = try rewrite(src, dialect, plan, bufferSize: 16, readerChunk: 7)
            XCTAssertEqual(try bytes(small.path), try bytes(out.path), "\(file): tiny buffers")

            try assertOutsideEditsIdentical(
                file: file, original: original, origRows: origRows, output: try bytes(out.path), outRows: outRows,
                plan: plan)
        }
    }

    /// Cuts the edited statements (INSERT) / lines (COPY) out of both files and compares the rest.
    func assertOutsideEditsIdentical(
        file: String, original: [UInt8], origRows: [SQLRow], output: [UInt8], outRows: [SQLRow], plan: SQLRewritePlan
    ) throws {
        func key(_ r: SQLRow) -> String { "\(r.table)#\(id(r) ?? -1)" }
        var byStatement: [Int64: [SQLRow]] = [:]
        for r in origRows { byStatement[r.statementRange.start, default: []].append(r) }
        var origCuts: [ByteRange] = []
        var survivors = Set<String>()
        var seen = Set<Int64>()
        for r in origRows where plan.entries[r.rowRange.start] != nil && !seen.contains(r.statementRange.start) {
            seen.insert(r.statementRange.start)
            let members = byStatement[r.statementRange.start]!
            let kept = members.filter { plan.entries[$0.rowRange.start]?.delete != true }
            var cut = r.statementRange
            if r.kind == .insert && kept.isEmpty && Int(cut.end) < original.count && original[Int(cut.end)] == 0x0A {
                cut.end += 1
            }
            origCuts.append(cut)
            for k in kept { survivors.insert(key(k)) }
        }
        var outCuts: [ByteRange] = []
        for r in outRows where survivors.contains(key(r)) && outCuts.last != r.statementRange {
            outCuts.append(r.statementRange)
        }
        func outside(_ b: [UInt8], _ cuts: [ByteRange]) -> [UInt8] {
            var result: [UInt8] = []
            var at = 0
            for c in cuts.sorted(by: { $0.start < $1.start }) {
                result += b[at..<Int(c.start)]
                at = Int(c.end)
            }
            result += b[at...]
            return result
        }
        let a = outside(original, origCuts)
        let b = outside(output, outCuts)
        XCTAssertTrue(a == b, "\(file): bytes outside the edited statements differ")
        XCTAssertGreaterThan(a.count, original.count / 2, "\(file): most of the file is outside the edits")
    }

    // MARK: - Real databases as oracles

    func testPostgresLoadsRewrittenDumps() throws {
        let pg = try Self.postgres()
        for (file, dialect) in Self.dumps where dialect == .postgres {
            let out = try rewriteFixture(file, dialect)
            let db = try pg.freshDatabase()
            let load = try pg.psql(db, ["-v", "ON_ERROR_STOP=1", "-q", "-f", out])
            XCTAssertEqual(load.status, 0, "\(file): psql -f failed: \(load.err)")
            XCTAssertFalse(load.err.contains("ERROR"), "\(file): \(load.err)")
            try assertDatabaseMatches("postgres \(file)") { table, columns in
                let list = columns.map { $0 == "avatar" ? "encode(avatar, 'hex') AS avatar" : $0 }.joined(
                    separator: ", ")
                let q =
                    "SELECT coalesce(json_agg(t ORDER BY t.id), '[]'::json) FROM (SELECT \(list) FROM public.\(table)) t"
                let r = try pg.psql(db, ["-v", "ON_ERROR_STOP=1", "-At", "-c", q])
                guard r.status == 0 else { throw TestError("\(file): \(q): \(r.err)") }
                return r.out
            }
        }
    }

    /// The oracle catches a broken erasure: deleting the customer but not its orders must make the
    /// foreign key fail when the dump is loaded.
    func testPostgresOracleRejectsDanglingForeignKey() throws {
        let pg = try Self.postgres()
        let src = fixture("pg_default.sql")
        var plan = SQLRewritePlan()
        for r in try readAll(src, .postgres) where r.table == "customers" && Self.int(r["id"]) == Self.subjectID {
            plan.add(r, .delete)
        }
        let out = try rewrite(src, .postgres, plan)
        XCTAssertEqual(out.deleted, 1)
        let db = try pg.freshDatabase()
        let load = try pg.psql(db, ["-v", "ON_ERROR_STOP=1", "-q", "-f", out.path])
        XCTAssertNotEqual(load.status, 0, "orders 1-3 still point at the deleted customer 1042")
        XCTAssertTrue(load.err.contains("orders_customer_id_fkey"), load.err)
    }

    func testMariaDBLoadsRewrittenDumps() throws {
        let my = try Self.mariadb()
        for (file, dialect) in Self.dumps where dialect == .mysql {
            let out = try rewriteFixture(file, dialect)
            let db = try my.freshDatabase()
            let load = try my.client([db], stdinFile: out)
            XCTAssertEqual(load.status, 0, "\(file): mariadb < dump failed: \(load.err)")
            XCTAssertFalse(load.err.contains("ERROR"), "\(file): \(load.err)")
            try assertDatabaseMatches("mariadb \(file)") { table, columns in
                let pairs = columns.map { "'\($0)', " + ($0 == "avatar" ? "LOWER(HEX(avatar))" : "`\($0)`") }.joined(
                    separator: ", ")
                let q = "SELECT COALESCE(JSON_ARRAYAGG(JSON_OBJECT(\(pairs)) ORDER BY id), '[]') FROM `\(table)`"
                let r = try my.client(["-N", "-B", "-r", "-e", q, db])
                guard r.status == 0 else { throw TestError("\(file): \(q): \(r.err)") }
                return r.out
            }
        }
    }

    func testSQLiteLoadsRewrittenDump() throws {
        let sqlite = try PrivateServerTools.require("sqlite3", package: "sqlite3")
        let out = try rewriteFixture("sqlite.sql", .sqlite)
        let db = try tempDir() + "/new.db"
        let load = try PrivateServerTools.run([sqlite, "-bail", db], stdinFile: out)
        XCTAssertEqual(load.status, 0, "sqlite3 < dump failed: \(load.err)")
        XCTAssertEqual(load.err, "")
        try assertDatabaseMatches("sqlite") { table, columns in
            let list = columns.map {
                $0 == "avatar" ? "CASE WHEN avatar IS NULL THEN NULL ELSE lower(hex(avatar)) END AS avatar" : $0
            }.joined(separator: ", ")
            let r = try PrivateServerTools.run([sqlite, "-json", db, "SELECT \(list) FROM \(table) ORDER BY id"])
            guard r.status == 0 else { throw TestError("sqlite \(table): \(r.err)") }
            return r.out
        }
    }

    // MARK: - Multi-row INSERTs

    /// Every subset of the tuples of a 4-tuple INSERT deleted, in three layouts (mysqldump's compact
    /// one, pg_dump --rows-per-insert's one-per-line, and spaced): the tuples go with exactly one
    /// comma and its whitespace; with none left the statement and its newline go; the statements
    /// around are untouched. Each result is also loaded into SQLite.
    func testDeletingTuplesOfMultiRowInsert() throws {
        let sqlite = PrivateServerTools.find("sqlite3")
        let tuples = ["(1,'a')", "(2,'b;(x),')", "(3,'c')", "(4,'d')"]
        let layouts: [(open: String, sep: String)] = [
            ("INSERT INTO t VALUES ", ","),
            ("INSERT INTO t VALUES\n\t", ",\n\t"),
            ("INSERT INTO t VALUES  ", " ,  "),
        ]
        let head = "-- head\nCREATE TABLE t (id integer, s text);\nINSERT INTO t VALUES (0,'keep');\n"
        let tail = "INSERT INTO t VALUES (9,'z'),(10,'y');\n-- tail\n"
        for dialect in SQLDialect.allCases {
            for (open, sep) in layouts {
                let stmt = open + tuples.joined(separator: sep) + ";\n"
                for mask in 0..<(1 << tuples.count) {
                    let deleted = Set((0..<tuples.count).filter { mask & (1 << $0) != 0 }.map { $0 + 1 })
                    let got = try rewriteText(head + stmt + tail, dialect) { r in
                        deleted.contains(self.id(r) ?? -1) ? [.delete] : []
                    }
                    let kept = tuples.enumerated().filter { !deleted.contains($0.offset + 1) }.map(\.element)
                    let want = head + (kept.isEmpty ? "" : open + kept.joined(separator: sep) + ";\n") + tail
                    XCTAssertEqual(got, want, "\(dialect) layout \(open.debugDescription) deleting \(deleted.sorted())")
                    if let sqlite, dialect == .sqlite, mask == 0b0101 || mask == 0b1111 || mask == 0b1001 {
                        let path = try write(Array(got.utf8), "t.sql")
                        let r = try PrivateServerTools.run([sqlite, "-bail", ":memory:"], stdinFile: path)
                        XCTAssertEqual(r.status, 0, r.err)
                    }
                }
            }
        }
    }

    func testSingleRowInsertsVanishWithTheirLineBreak() throws {
        let text =
            "INSERT INTO t VALUES (1,'a');\nINSERT INTO t VALUES (2,'b');\r\nINSERT INTO t VALUES (3,'c'); -- c\nINSERT INTO t VALUES (4,'d');"
        let got = try rewriteText(text, .mysql) { _ in [.delete] }
        XCTAssertEqual(got, " -- c\n")
        let some = try rewriteText(text, .mysql) { r in self.id(r) == 2 ? [.delete] : [] }
        XCTAssertEqual(
            some, "INSERT INTO t VALUES (1,'a');\nINSERT INTO t VALUES (3,'c'); -- c\nINSERT INTO t VALUES (4,'d');")
    }

    /// Deleting and redacting in the same statement, and redacting several columns of a row.
    func testMixedEditsInOneStatement() throws {
        let text =
            "CREATE TABLE t (id int, s text, n int, b blob);\n"
            + "INSERT INTO t VALUES (1,'a',5,X'00'),(2,'b',6,X'01'),(3,'c',7,X'02'),(4,'d',8,NULL);\n"
        let got = try rewriteText(text, .sqlite) { r in
            switch self.id(r) {
            case 1, 3: return [.delete]
            case 2: return [.redact(columns: [1, 2], placeholder: "it's"), .redact(columns: [3], placeholder: "x")]
            case 4: return [.redact(columns: [3, 1], placeholder: "[R]")]
            default: return []
            }
        }
        XCTAssertEqual(
            got,
            "CREATE TABLE t (id int, s text, n int, b blob);\nINSERT INTO t VALUES (2,'it''s',NULL,NULL),(4,'[R]',8,NULL);\n"
        )
    }

    // MARK: - Redaction literals

    func testCopyRedactionEscapesPlaceholderAndNullsNonStrings() throws {
        let text = """
            CREATE TABLE public.c (id integer, name text, amount numeric(10,2), flag boolean, data bytea, note text);
            COPY public.c (id, name, amount, flag, data, note) FROM stdin;
            1\talice\t1.50\tt\t\\\\x00ff\t\\N
            2\tbob\t\\N\tf\t\\N\tx
            3\tcarol\t2.00\tt\t\\\\x01\ty
            \\.

            SELECT 1;

            """
        let got = try rewriteText(text, .postgres) { r in
            switch self.id(r) {
            case 1: return [.redact(columns: [1, 2, 3, 4, 5], placeholder: "a\\b\tc\nd\re'f")]
            case 2: return [.delete]
            default: return []
            }
        }
        let want = """
            CREATE TABLE public.c (id integer, name text, amount numeric(10,2), flag boolean, data bytea, note text);
            COPY public.c (id, name, amount, flag, data, note) FROM stdin;
            1\ta\\\\b\\tc\\nd\\re'f\t\\N\t\\N\t\\N\t\\N
            3\tcarol\t2.00\tt\t\\\\x01\ty
            \\.

            SELECT 1;

            """
        XCTAssertEqual(got, want)
        // All rows of a COPY block deleted: the block stays, empty, and still loads.
        let none = try rewriteText(text, .postgres) { _ in [.delete] }
        XCTAssertTrue(none.contains("FROM stdin;\n\\.\n"), none)
    }

    func testInsertLiteralsPerDialect() {
        func lit(_ s: String, _ d: SQLDialect) -> String {
            String(decoding: SQLRewriter.literal(s, dialect: d), as: UTF8.self)
        }
        XCTAssertEqual(lit("[REDACTED]", .postgres), "'[REDACTED]'")
        XCTAssertEqual(lit("it's", .postgres), "'it''s'")
        XCTAssertEqual(lit("a\\b'c", .postgres), "E'a\\\\b''c'")
        XCTAssertEqual(lit("it's a\\b\n\r\u{1A}\0", .mysql), "'it''s a\\\\b\\n\\r\\Z\\0'")
        XCTAssertEqual(lit("it's a\\b\n", .sqlite), "'it''s a\\b\n'")
        func copy(_ s: String) -> String { String(decoding: SQLRewriter.copyField(s), as: UTF8.self) }
        XCTAssertEqual(copy("a\\b\tc\nd\re'f"), "a\\\\b\\tc\\nd\\re'f")
        let pgRepl = SQLRewriter.replacement(for: .number("1"), kind: .insert, dialect: .postgres, placeholder: "x")
        XCTAssertEqual(String(decoding: pgRepl, as: UTF8.self), "NULL")
        let copyRepl = SQLRewriter.replacement(for: .blob([1]), kind: .copy, dialect: .postgres, placeholder: "x")
        XCTAssertEqual(String(decoding: copyRepl, as: UTF8.self), "\\N")
    }

    // MARK: - Plan

    func testPlanMergesEditsOfTheSameRow() throws {
        let src = try write(Array("INSERT INTO t (a, b, c) VALUES (1,'x','y'),(2,'p','q');\n".utf8), "merge.sql")
        let rows = try readAll(src, .mysql)
        var plan = SQLRewritePlan()
        XCTAssertTrue(plan.isEmpty)
        plan.add(rows[0], .redact(columns: [1], placeholder: "R1"))
        plan.add(rows[0], .redact(columns: [1, 2], placeholder: "R2"))
        plan.add(rows[1], .delete)
        plan.add(rows[1], .redact(columns: [1], placeholder: "R3"))
        XCTAssertFalse(plan.isEmpty)
        XCTAssertEqual(plan.count, 2)
        XCTAssertEqual(plan.entries[rows[0].rowRange.start]?.redact, [1: "R1", 2: "R2"])
        XCTAssertEqual(plan.entries[rows[1].rowRange.start]?.delete, true)
        var empty = SQLRewritePlan()
        empty.add(rows[0], .redact(columns: [], placeholder: "x"))
        XCTAssertTrue(empty.isEmpty)
        let out = try rewrite(src, .mysql, plan)
        XCTAssertEqual(out.deleted, 1)
        XCTAssertEqual(out.redacted, 1)
        XCTAssertEqual(
            String(decoding: try bytes(out.path), as: UTF8.self), "INSERT INTO t (a, b, c) VALUES (1,'R1','R2');\n")
    }

    func testPlanFromAnotherFileIsRejected() throws {
        let a = try write(Array("INSERT INTO t VALUES (1,'a'),(2,'b');\n".utf8), "a.sql")
        let b = try write(Array("INSERT INTO t VALUES (1,'a'), (2,'b');\n".utf8), "b.sql")
        var plan = SQLRewritePlan()
        for r in try readAll(a, .mysql) where self.id(r) == 2 { plan.add(r, .delete) }
        XCTAssertThrowsError(try rewrite(b, .mysql, plan)) { error in
            XCTAssertEqual((error as? DSARError)?.code, .invalidInput, "\(error)")
        }
        var bad = SQLRewritePlan()
        for r in try readAll(a, .mysql) where self.id(r) == 1 { bad.add(r, .redact(columns: [7], placeholder: "x")) }
        XCTAssertThrowsError(try rewrite(a, .mysql, bad)) { error in
            XCTAssertEqual((error as? DSARError)?.code, .processing, "\(error)")
        }
    }

    func testRewritingOntoTheSourceIsRefused() throws {
        let a = try write(Array("INSERT INTO t VALUES (1,'a');\n".utf8), "a.sql")
        let fd = open(a, O_WRONLY | O_APPEND | O_CLOEXEC)
        defer { close(fd) }
        XCTAssertThrowsError(
            try SQLRewriter.rewrite(source: a, dialect: .mysql, plan: SQLRewritePlan(), output: fd, outputPath: a))
        XCTAssertEqual(String(decoding: try bytes(a), as: UTF8.self), "INSERT INTO t VALUES (1,'a');\n")
    }

    // MARK: - Size (opt-in: DSAR_SQL_REWRITE_BENCH=1)

    /// A large COPY dump and a large extended-INSERT dump (about 150 MB each) with a few thousand edits:
    /// prints the time and the process's peak RSS. Skipped unless DSAR_SQL_REWRITE_BENCH=1.
    func testLargeDumpsStreamInBoundedMemory() throws {
        guard ProcessInfo.processInfo.environment["DSAR_SQL_REWRITE_BENCH"] == "1" else {
            throw XCTSkip("set DSAR_SQL_REWRITE_BENCH=1 to rewrite two ~150 MB dumps")
        }
        let dir = try tempDir()
        let pad = String(repeating: "x", count: 50)
        func make(_ name: String, _ head: String, _ line: (Int) -> String, _ tail: String, rows: Int) throws -> String {
            let path = dir + "/" + name
            FileManager.default.createFile(atPath: path, contents: nil)
            let h = try XCTUnwrap(FileHandle(forWritingAtPath: path))
            defer { try? h.close() }
            var chunk = head
            for i in 0..<rows {
                chunk += line(i)
                if chunk.utf8.count > 1 << 20 {
                    h.write(Data(chunk.utf8))
                    chunk = ""
                }
            }
            h.write(Data((chunk + tail).utf8))
            return path
        }
        let rows = 1_500_000
        let copy = try make(
            "big_copy.sql",
            "CREATE TABLE public.t (id integer, email text, note text);\nCOPY public.t (id, email, note) FROM stdin;\n",
            { "\($0)\tuser\($0)@example.com\t\(pad)\n" }, "\\.\n", rows: rows)
        let inserts = try make(
            "big_insert.sql", "CREATE TABLE `t` (`id` int, `email` text, `note` text);\n",
            { i in
                (i % 1000 == 0 ? "INSERT INTO `t` VALUES " : ",") + "(\(i),'user\(i)@example.com','\(pad)')"
                    + (i % 1000 == 999 ? ";\n" : "")
            },
            "", rows: rows)
        for (path, dialect) in [(copy, SQLDialect.postgres), (inserts, SQLDialect.mysql)] {
            var plan = SQLRewritePlan()
            let tScan = Date()
            var reader = try SQLDumpReader(path: path, dialect: dialect)
            try reader.forEachRow { r in
                guard let id = id(r) else { return }
                if id % 997 == 0 {
                    plan.add(r, .delete)
                } else if id % 1009 == 0 {
                    plan.add(r, .redact(columns: [1, 2], placeholder: "[REDACTED]"))
                }
            }
            let scan = Date().timeIntervalSince(tScan)
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let before = usage.ru_maxrss >> 10
            let t0 = Date()
            let out = try rewrite(path, dialect, plan)
            let secs = Date().timeIntervalSince(t0)
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            print(
                "rewrite \(dialect) \(size >> 20) MiB, \(plan.count) edits: \(String(format: "%.1f", secs)) s (a read-only scan: \(String(format: "%.1f", scan)) s), peak RSS \(before) MiB before, \(usage.ru_maxrss >> 10) MiB after"
            )
            XCTAssertEqual(out.deleted + out.redacted, plan.count)
            try? FileManager.default.removeItem(atPath: out.path)
        }
    }
}

// MARK: - Test infrastructure: commands and private servers
