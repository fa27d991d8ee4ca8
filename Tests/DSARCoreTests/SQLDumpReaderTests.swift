import DSARCore
import Foundation
import XCTest

/// Tests of `SQLDumpReader` on dumps written by the real tools (Tests/Fixtures/sql, made by
/// Tests/Fixtures/make-sql-fixtures.sh) and on small inline dumps for the tricky lexical cases.
final class SQLDumpReaderTests: XCTestCase {
    static let fixtureDir: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/sql").path

    /// Every dump fixture, its dialect, and whether its rows come from COPY.
    static let dumps: [(file: String, dialect: SQLDialect, copy: Bool)] = [
        ("pg_default.sql", .postgres, true),
        ("pg_inserts.sql", .postgres, false),
        ("pg_column_inserts.sql", .postgres, false),
        ("pg_rows_per_insert.sql", .postgres, false),
        ("mysql_default.sql", .mysql, false),
        ("mysql_skip_extended.sql", .mysql, false),
        ("mysql_hex_blob.sql", .mysql, false),
        ("sqlite.sql", .sqlite, false),
    ]

    static let tableColumns: [String: [String]] = [
        "customers": ["id", "email", "name", "phone", "notes", "avatar"],
        "orders": ["id", "customer_id", "total", "note"],
        "support_tickets": ["id", "customer_email", "body"],
    ]

    // MARK: - Helpers

    func fixture(_ name: String) -> String { Self.fixtureDir + "/" + name }

    func readAll(_ path: String, dialect: SQLDialect? = nil) throws -> (SQLDumpReader, [SQLRow]) {
        var reader = try SQLDumpReader(path: path, dialect: dialect)
        var rows: [SQLRow] = []
        try reader.forEachRow { rows.append($0) }
        return (reader, rows)
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func slice(_ file: [UInt8], _ r: ByteRange) -> [UInt8] { Array(file[Int(r.start)..<Int(r.end)]) }

    func str(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

    /// Writes `text` to a fresh temp file and returns its path.
    func temp(_ text: String, name: String = "dump.sql") throws -> String { try temp(Array(text.utf8), name: name) }

    func temp(_ data: [UInt8], name: String = "dump.sql") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqldump-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try Data(data).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// expected.json: table → rows (column → value).
    func expectedRows() throws -> [String: [[String: Any]]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture("expected.json")))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: [[String: Any]]])
    }

    func id(_ v: SQLValue?) -> Int? {
        guard case .number(let n)? = v else { return nil }
        return Int(n)
    }

    /// Compares one decoded value with its expected.json counterpart; nil if equal, else a description.
    func mismatch(_ actual: SQLValue, _ expected: Any, column: String) -> String? {
        switch (actual, expected) {
        case (.null, is NSNull):
            return nil
        case (.number(let t), let n as NSNumber):
            return Double(t) == n.doubleValue ? nil : "number \(t) != \(n)"
        case (.blob(let b), let s as String) where column == "avatar":
            return hex(b) == s ? nil : "blob \(hex(b)) != \(s)"
        case (.string(let b), let s as String) where column != "avatar":
            return b == Array(s.utf8) ? nil : "string \(str(b).debugDescription) != \(s.debugDescription)"
        default:
            return "\(actual) != \(expected)"
        }
    }

    // MARK: - Fixtures made by the real tools

    func testDetectsTheDialectOfEveryFixture() throws {
        for d in Self.dumps {
            XCTAssertEqual(try SQLDumpReader(path: fixture(d.file)).dialect, d.dialect, d.file)
        }
    }

    func testEveryDumpYieldsExactlyTheExpectedRowsAndValues() throws {
        let expected = try expectedRows()
        XCTAssertEqual(expected["customers"]?.count, 10)
        XCTAssertEqual(expected["orders"]?.count, 8)
        XCTAssertEqual(expected["support_tickets"]?.count, 8)
        for d in Self.dumps {
            let (_, rows) = try readAll(fixture(d.file))
            XCTAssertEqual(rows.count, 26, d.file)
            for (table, wantRows) in expected {
                let got = rows.filter { $0.table == table }
                XCTAssertEqual(got.count, wantRows.count, "\(d.file) \(table)")
                for want in wantRows {
                    let wantID = (want["id"] as? NSNumber)?.intValue
                    let matches = got.filter { id($0["id"]) == wantID }
                    guard matches.count == 1, let row = matches.first else {
                        XCTFail("\(d.file) \(table) id \(wantID ?? -1): found \(matches.count) rows")
                        continue
                    }
                    XCTAssertEqual(row.kind, d.copy ? .copy : .insert, d.file)
                    XCTAssertEqual(row.values.count, Self.tableColumns[table]?.count, "\(d.file) \(table)")
                    for (column, value) in want {
                        guard let actual = row[column] else {
                            XCTFail("\(d.file) \(table) id \(wantID ?? -1): no column \(column)")
                            continue
                        }
                        if let m = mismatch(actual, value, column: column) {
                            XCTFail("\(d.file) \(table) id \(wantID ?? -1) \(column): \(m)")
                        }
                    }
                }
            }
        }
    }

    func testColumnNamesSchemasAndTables() throws {
        for d in Self.dumps {
            let (reader, rows) = try readAll(fixture(d.file))
            for row in rows {
                XCTAssertEqual(row.columns, Self.tableColumns[row.table], "\(d.file) \(row.table)")
                XCTAssertEqual(row.schema, d.dialect == .postgres ? "public" : nil, d.file)
            }
            let tables = reader.tables
            XCTAssertEqual(tables.map(\.name), ["customers", "orders", "support_tickets"], d.file)
            for t in tables { XCTAssertEqual(t.columns, Self.tableColumns[t.name], "\(d.file) \(t.name)") }
            XCTAssertEqual(reader.bytesRead, Int64(try bytes(fixture(d.file)).count), d.file)
        }
    }

    func testRangesPointAtTheRightBytes() throws {
        for d in Self.dumps {
            let path = fixture(d.file)
            let file = try bytes(path)
            let (_, rows) = try readAll(path)
            for row in rows {
                let rowBytes = slice(file, row.rowRange)
                let what = "\(d.file) \(row.table) line \(row.line)"
                // The row starts on the line it says.
                XCTAssertEqual(file[..<Int(row.rowRange.start)].filter { $0 == 0x0A }.count + 1, row.line, what)
                if row.kind == .copy {
                    XCTAssertEqual(rowBytes.last, 0x0A, what)
                    XCTAssertEqual(row.statementRange, row.rowRange, what)
                    XCTAssertEqual(row.tupleIndex, 0, what)
                    // The fields joined by tabs are the line.
                    let fields = row.valueRanges.map { str(slice(file, $0)) }
                    XCTAssertEqual(fields.joined(separator: "\t") + "\n", str(rowBytes), what)
                } else {
                    XCTAssertEqual(rowBytes.first, UInt8(ascii: "("), what)
                    XCTAssertEqual(rowBytes.last, UInt8(ascii: ")"), what)
                    let stmt = slice(file, row.statementRange)
                    XCTAssertTrue(stmt.starts(with: Array("INSERT INTO".utf8)), what)
                    XCTAssertEqual(stmt.last, UInt8(ascii: ";"), what)
                    XCTAssertTrue(
                        row.statementRange.start < row.rowRange.start && row.rowRange.end < row.statementRange.end, what
                    )
                }
                XCTAssertEqual(row.valueRanges.count, row.values.count, what)
                for (v, r) in zip(row.values, row.valueRanges) {
                    XCTAssertTrue(r.start >= row.rowRange.start && r.end <= row.rowRange.end, what)
                    let lit = str(slice(file, r))
                    switch v {
                    case .null: XCTAssertTrue(lit == "NULL" || lit == "\\N", "\(what): \(lit)")
                    case .number(let n): XCTAssertEqual(lit, n, what)
                    case .string(let s):
                        if row.kind == .copy {
                            XCTAssertTrue(lit.utf8.count >= s.count || lit.contains("\\"), what)
                        } else {
                            XCTAssertTrue(
                                lit.hasPrefix("'") || lit.hasPrefix("replace(") || lit.hasPrefix("E'"),
                                "\(what): \(lit)")
                            XCTAssertTrue(lit.hasSuffix("'") || lit.hasSuffix(")"), "\(what): \(lit)")
                        }
                    case .blob:
                        XCTAssertTrue(
                            lit.hasPrefix("'") || lit.hasPrefix("X'") || lit.hasPrefix("0x") || lit.hasPrefix("\\\\x"),
                            "\(what): \(lit)")
                    default: XCTFail("\(what): unexpected \(v)")
                    }
                }
            }
        }
    }

    func testExactLiteralBytesOfTheSubjectsRow() throws {
        let path = fixture("mysql_default.sql")
        let file = try bytes(path)
        let (_, rows) = try readAll(path)
        let alice = try XCTUnwrap(rows.first { $0.table == "customers" && id($0["id"]) == 1042 })
        XCTAssertEqual(str(slice(file, alice.valueRanges[1])), "'alice@example.com'")
        XCTAssertEqual(str(slice(file, alice.valueRanges[4])), "'VIP customer\tgold tier\\nsecond line'")
        XCTAssertEqual(slice(file, alice.valueRanges[5]), Array("'\\0\\'\\\\".utf8) + [0xFF, 0x27])
        XCTAssertEqual(alice["avatar"], .blob([0x00, 0x27, 0x5C, 0xFF]))
        XCTAssertEqual(
            slice(file, alice.rowRange),
            Array(
                "(1042,'alice@example.com','Alice Liddell','+1 555 0100','VIP customer\tgold tier\\nsecond line','\\0\\'\\\\"
                    .utf8)
                + [0xFF] + Array("')".utf8))

        let pg = fixture("pg_default.sql")
        let pgFile = try bytes(pg)
        let (_, pgRows) = try readAll(pg)
        let pgAlice = try XCTUnwrap(pgRows.first { $0.table == "customers" && id($0["id"]) == 1042 })
        XCTAssertEqual(
            str(slice(pgFile, pgAlice.rowRange)),
            "1042\talice@example.com\tAlice Liddell\t+1 555 0100\tVIP customer\\tgold tier\\nsecond line\t\\\\x00275cff\n"
        )
        XCTAssertEqual(str(slice(pgFile, pgAlice.valueRanges[5])), "\\\\x00275cff")
        XCTAssertEqual(pgAlice["avatar"], .blob([0x00, 0x27, 0x5C, 0xFF]))
    }

    func testTupleIndexIncrementsWithinMultiRowInserts() throws {
        let (_, my) = try readAll(fixture("mysql_default.sql"))
        let customers = my.filter { $0.table == "customers" }
        XCTAssertEqual(customers.map(\.tupleIndex), Array(0..<10))
        XCTAssertEqual(Set(customers.map(\.statementRange)).count, 1)
        XCTAssertEqual(my.filter { $0.table == "orders" }.map(\.tupleIndex), Array(0..<8))

        let (_, pg3) = try readAll(fixture("pg_rows_per_insert.sql"))
        let pgCustomers = pg3.filter { $0.table == "customers" }
        XCTAssertEqual(pgCustomers.map(\.tupleIndex), [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
        XCTAssertEqual(Set(pgCustomers.map(\.statementRange)).count, 4)
        // Tuples of one statement are on successive lines (each starts a line after a tab).
        XCTAssertEqual(pgCustomers[1].line, pgCustomers[0].line + 1)

        for file in ["mysql_skip_extended.sql", "pg_inserts.sql", "pg_column_inserts.sql", "sqlite.sql"] {
            let (_, rows) = try readAll(fixture(file))
            XCTAssertEqual(Set(rows.map(\.tupleIndex)), [0], file)
            XCTAssertEqual(Set(rows.map(\.statementRange)).count, rows.count, file)
        }
    }

    func testNumbersKeepTheirTextAndCopyFieldsAreTypedByTheDeclaredType() throws {
        for file in ["pg_default.sql", "pg_inserts.sql", "mysql_default.sql"] {
            let (_, rows) = try readAll(fixture(file))
            let order2 = try XCTUnwrap(rows.first { $0.table == "orders" && id($0["id"]) == 2 }, file)
            XCTAssertEqual(order2["total"], .number("5.00"), file)
            XCTAssertEqual(order2["note"], .null, file)
            let order3 = try XCTUnwrap(rows.first { $0.table == "orders" && id($0["id"]) == 3 }, file)
            XCTAssertEqual(order3["total"], .number("-3.50"), file)
            // Digits in a text column stay text (in COPY, because CREATE TABLE says `text`).
            let heidi = try XCTUnwrap(rows.first { $0.table == "customers" && id($0["id"]) == 6 }, file)
            XCTAssertEqual(heidi["phone"], .string(Array("0041 44 000 00 00".utf8)), file)
            let erin = try XCTUnwrap(rows.first { $0.table == "customers" && id($0["id"]) == 3 }, file)
            XCTAssertEqual(erin["phone"], .string([]), file)
        }
        // SQLite stores numeric(10,2) as REAL and prints it with 20 digits.
        let (_, lite) = try readAll(fixture("sqlite.sql"))
        XCTAssertEqual(
            lite.first { $0.table == "orders" && id($0["id"]) == 1 }?["total"], .number("19.989999999999998436"))

        // COPY of a table without CREATE TABLE: the plain-number pattern decides.
        let path = try temp("COPY t (a, b, c, d) FROM stdin;\n0042\t-1.5\t1e5\t12a\n\\.\n")
        let (_, rows) = try readAll(path)
        XCTAssertEqual(
            rows.first?.values,
            [.number("0042"), .number("-1.5"), .string(Array("1e5".utf8)), .string(Array("12a".utf8))])
    }

    // MARK: - Inline dumps: lexical traps

    func testQuotedTextThatLooksLikeStatementsIsData() throws {
        let cases: [(SQLDialect, String, String)] = [
            (
                .postgres, "INSERT INTO t VALUES (1, 'a'');\nINSERT INTO t VALUES (''evil');\n",
                "a');\nINSERT INTO t VALUES ('evil"
            ),
            (
                .mysql, "INSERT INTO `t` VALUES (1,'a\\');\\nINSERT INTO t VALUES (\\'evil');\n",
                "a');\nINSERT INTO t VALUES ('evil"
            ),
            (
                .sqlite, "INSERT INTO t VALUES(1,'a'');\nINSERT INTO t VALUES (''evil');\n",
                "a');\nINSERT INTO t VALUES ('evil"
            ),
        ]
        for (dialect, sql, want) in cases {
            let (_, rows) = try readAll(try temp(sql), dialect: dialect)
            XCTAssertEqual(rows.count, 1, "\(dialect)")
            XCTAssertEqual(rows.first?.values, [.number("1"), .string(Array(want.utf8))], "\(dialect)")
        }
    }

    func testDollarQuotedFunctionBodiesAndPsqlCommandsAreSkipped() throws {
        let sql = """
            \\restrict abc123
            SET standard_conforming_strings = on;
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO t VALUES (666, 'from function; not data');
              RETURN NEW;
            END $$;
            CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $fn$ SELECT 'INSERT INTO t VALUES (667);' $fn$;
            /* outer /* nested ; INSERT INTO t VALUES (668); */ still comment */
            CREATE RULE r AS ON INSERT TO x DO ALSO (INSERT INTO t VALUES (669); INSERT INTO t VALUES (670));
            COMMENT ON TABLE t IS 'see INSERT INTO t VALUES (671);';
            CREATE TABLE public.t (id integer, note text);
            INSERT INTO public.t VALUES (1, E'tab\\there\\nnew \\'q\\' \\u00e9\\x41\\101'), (2, $x$dollar ' string$x$);
            INSERT INTO public.t VALUES (3, E'a''b\\'c); INSERT INTO t VALUES (672);');
            INSERT INTO public.t (id, note) OVERRIDING SYSTEM VALUE VALUES (4, 'o') ON CONFLICT DO NOTHING;
            \\unrestrict abc123

            """
        let (reader, rows) = try readAll(try temp(sql))
        XCTAssertEqual(reader.dialect, .postgres)
        XCTAssertEqual(rows.map { id($0["id"]) }, [1, 2, 3, 4])
        XCTAssertEqual(rows[3]["note"], .string(Array("o".utf8)))
        XCTAssertEqual(rows[0]["note"], .string(Array("tab\there\nnew 'q' éAA".utf8)))
        XCTAssertEqual(rows[2]["note"], .string(Array("a'b'c); INSERT INTO t VALUES (672);".utf8)))
        XCTAssertEqual(rows[1]["note"], .string(Array("dollar ' string".utf8)))
        XCTAssertEqual(rows[0].columns, ["id", "note"])
        XCTAssertEqual(rows[0].line, 13)
    }

    func testMySQLCommentsDelimiterAndLiterals() throws {
        let sql = """
            -- MySQL dump 10.13
            /*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
            # a hash comment with INSERT INTO t VALUES (1);
            /*!40000 ALTER TABLE `t` DISABLE KEYS */;
            LOCK TABLES `t` WRITE;
            CREATE TABLE `t` (
              `id` int(11) NOT NULL,
              `note` varchar(20) DEFAULT 'a,b' COMMENT 'x, y',
              `data` longblob,
              PRIMARY KEY (`id`),
              UNIQUE KEY `n` (`note`),
              CONSTRAINT `c` FOREIGN KEY (`id`) REFERENCES `u` (`id`)
            ) ENGINE=InnoDB;
            DELIMITER ;;
            /*!50003 CREATE*/ /*!50003 TRIGGER trg BEFORE INSERT ON t FOR EACH ROW BEGIN INSERT INTO t VALUES (9,'',''); END */;;
            CREATE PROCEDURE p() BEGIN INSERT INTO t VALUES (8,'',''); SELECT 1; END ;;
            DELIMITER ;
            INSERT INTO `t` VALUES (1,'a\\0b\\Zc\\bd\\%e\\_f\\"g''h',_binary 'x\\'y'),(2,"dq \\"s\\"",0x414243),(3,_utf8mb4'z',X'00ff'),(-4,NULL,'');
            UNLOCK TABLES;
            INSERT INTO t SET `id` = 5, note = 'set form', data = CONCAT('a', 'b');

            """
        let (reader, rows) = try readAll(try temp(sql))
        XCTAssertEqual(reader.dialect, .mysql)
        XCTAssertEqual(reader.tables.first?.columns, ["id", "note", "data"])
        XCTAssertEqual(rows.map { id($0["id"]) }, [1, 2, 3, -4, 5])
        XCTAssertEqual(rows[4].columns, ["id", "note", "data"])
        XCTAssertEqual(rows[4]["note"], .string(Array("set form".utf8)))
        XCTAssertEqual(rows[4]["data"], .raw("CONCAT('a', 'b')"))
        XCTAssertEqual(
            rows[0]["note"],
            .string(
                Array("a".utf8) + [0] + Array("b".utf8) + [0x1A] + Array("c".utf8) + [8] + Array("d\\%e\\_f\"g'h".utf8))
        )
        XCTAssertEqual(rows[0]["data"], .blob(Array("x'y".utf8)))
        XCTAssertEqual(rows[1]["note"], .string(Array("dq \"s\"".utf8)))
        XCTAssertEqual(rows[1]["data"], .blob(Array("ABC".utf8)))
        XCTAssertEqual(rows[2]["note"], .string(Array("z".utf8)))
        XCTAssertEqual(rows[2]["data"], .blob([0x00, 0xFF]))
        XCTAssertEqual(rows[3]["data"], .blob([]), "a string in a blob column is a blob")
        XCTAssertEqual(rows.map(\.tupleIndex), [0, 1, 2, 3, 0])
    }

    func testPostgresCopyEscapesBooleansAndCasts() throws {
        let sql = #"""
            --
            -- PostgreSQL database dump
            --
            CREATE TABLE public."Weird Name" (
                "Full ""Name""" text,
                flag boolean,
                amount numeric(10,2),
                raw bytea
            );
            COPY public."Weird Name" ("Full ""Name""", flag, amount, raw) FROM stdin;
            a\tb\nc\\d\be\ff\vg\101\x42\0\#tt\#tNaN\#t\\x00ff
            \N\#tf\#t-12.50\#t\\x
            \.
            INSERT INTO public."Weird Name" VALUES ('2026-01-01'::date, true, -7, '\x0a'), ('x'::character varying(5), FALSE, DEFAULT, NULL);
            INSERT INTO "Weird Name" ("Full ""Name""", amount) VALUES (now(), ARRAY[1,2]), (1 + 2, '1.5'::numeric(10,2));

            """#
        let (reader, rows) = try readAll(try temp(sql))
        XCTAssertEqual(reader.dialect, .postgres)
        XCTAssertEqual(reader.tables.map(\.name), ["Weird Name"])
        XCTAssertEqual(rows.count, 6)
        XCTAssertEqual(rows[0].table, "Weird Name")
        XCTAssertEqual(rows[0].columns, ["Full \"Name\"", "flag", "amount", "raw"])
        XCTAssertEqual(
            rows[0].values,
            [
                .string(Array("a\tb\nc\\d\u{8}e\u{C}f\u{B}gAB".utf8) + [0]), .bool(true), .string(Array("NaN".utf8)),
                .blob([0, 255]),
            ])
        XCTAssertEqual(rows[1].values, [.null, .bool(false), .number("-12.50"), .blob([])])
        XCTAssertEqual(rows[2].values, [.string(Array("2026-01-01".utf8)), .bool(true), .number("-7"), .blob([10])])
        XCTAssertEqual(rows[3].values, [.string(Array("x".utf8)), .bool(false), .raw("DEFAULT"), .null])
        XCTAssertEqual(rows[4].values, [.raw("now()"), .raw("ARRAY[1,2]")])
        XCTAssertEqual(rows[5].values, [.raw("1 + 2"), .string(Array("1.5".utf8))])
        XCTAssertEqual(rows[4].columns, ["Full \"Name\"", "amount"])
    }

    func testSQLiteReplaceCharUnistrAndTriggers() throws {
        let sql = """
            PRAGMA foreign_keys=OFF;
            BEGIN TRANSACTION;
            CREATE TABLE IF NOT EXISTS "t" ("id" INTEGER PRIMARY KEY, [note] TEXT, data);
            CREATE TRIGGER trg AFTER DELETE ON t BEGIN
              UPDATE t SET note = CASE WHEN note IS NULL THEN 'x' ELSE note END WHERE id = old.id;
              INSERT INTO t VALUES (99, 'from trigger', NULL);
            END;
            INSERT INTO t VALUES(1,replace(replace('a\\r\\nb','\\r',char(13)),'\\n',char(10)),X'0A0b');
            INSERT INTO t VALUES(2,unistr('caf\\u00e9 \\+01F600 \\\\'),'a'||char(9, 10)||'b');
            INSERT INTO "t"("id",note) VALUES(3,'x');
            CREATE TABLE kv(key TEXT PRIMARY KEY, value TEXT, UNIQUE (value));
            INSERT INTO kv VALUES('k','v');
            COMMIT;

            """
        let (reader, rows) = try readAll(try temp(sql))
        XCTAssertEqual(reader.dialect, .sqlite)
        XCTAssertEqual(reader.tables.map(\.name), ["t", "kv"])
        XCTAssertEqual(reader.tables.first?.columns, ["id", "note", "data"])
        XCTAssertEqual(rows.map { id($0["id"]) }, [1, 2, 3, nil])
        XCTAssertEqual(rows[3].columns, ["key", "value"], "`key` is a column name in SQLite")
        XCTAssertEqual(rows[3]["value"], .string(Array("v".utf8)))
        XCTAssertEqual(rows[0]["note"], .string(Array("a\r\nb".utf8)))
        XCTAssertEqual(rows[0]["data"], .blob([0x0A, 0x0B]))
        XCTAssertEqual(rows[1]["note"], .string(Array("café 😀 \\".utf8)))
        XCTAssertEqual(rows[1]["data"], .string(Array("a\t\nb".utf8)))
        XCTAssertEqual(rows[2].columns, ["id", "note"])
    }

    func testCRLFLineEndingsInASQLiteDump() throws {
        let sql =
            "PRAGMA foreign_keys=OFF;\r\nBEGIN TRANSACTION;\r\nCREATE TABLE t(a text, b int);\r\n"
            + "INSERT INTO t VALUES('x\r\ny',1);\r\nINSERT INTO t VALUES('z',2);\r\nCOMMIT;\r\n"
        let path = try temp(sql)
        let file = try bytes(path)
        let (reader, rows) = try readAll(path)
        XCTAssertEqual(reader.dialect, .sqlite)
        XCTAssertEqual(
            rows.map(\.values),
            [[.string(Array("x\r\ny".utf8)), .number("1")], [.string(Array("z".utf8)), .number("2")]])
        XCTAssertEqual(rows.map(\.line), [4, 6])
        XCTAssertEqual(str(slice(file, rows[1].statementRange)), "INSERT INTO t VALUES('z',2);")
        XCTAssertEqual(str(slice(file, rows[1].rowRange)), "('z',2)")

        // COPY data with CRLF lines as well.
        let copy = try temp("COPY t (a) FROM stdin;\r\nx\r\n\\.\r\n")
        let (_, copied) = try readAll(copy, dialect: .postgres)
        XCTAssertEqual(copied.map(\.values), [[.string(Array("x".utf8))]])
    }

    func testStatementsSplitAcrossTheBufferBoundary() throws {
        // Well over 2 MiB: a long INSERT value straddles the 1 MiB and 2 MiB read boundaries; a COPY line
        // and a short INSERT after it must still come out whole, with correct offsets.
        let chunk = 1 << 20
        let long = String(repeating: "abcdefghij", count: (chunk + 300_000) / 10)  // ~1.3 MiB
        var sql = "-- PostgreSQL database dump\nCREATE TABLE t (id integer, s text);\n"
        sql += String(repeating: "-- padding comment line ; INSERT INTO t VALUES (0, 'no');\n", count: 15_000)
        sql += "INSERT INTO t VALUES (1, '\(long)'), (2, 'it''s');\n"
        sql += "COPY t (id, s) FROM stdin;\n3\t\(long)\\n\n\\.\n"
        sql += "INSERT INTO t VALUES (4, 'tail');\n"
        XCTAssertGreaterThan(sql.utf8.count, 2 * chunk + 500_000)
        let path = try temp(sql)
        let file = try bytes(path)
        var reader = try SQLDumpReader(path: path)
        var rows: [SQLRow] = []
        try reader.forEachRow { rows.append($0) }
        XCTAssertEqual(rows.map { id($0["id"]) }, [1, 2, 3, 4])
        XCTAssertEqual(rows[0]["s"], .string(Array(long.utf8)))
        XCTAssertEqual(rows[1]["s"], .string(Array("it's".utf8)))
        XCTAssertEqual(rows[2]["s"], .string(Array((long + "\n").utf8)))
        XCTAssertEqual(rows[3]["s"], .string(Array("tail".utf8)))
        XCTAssertLessThan(rows[0].rowRange.start, Int64(chunk))
        XCTAssertGreaterThan(rows[0].rowRange.end, Int64(chunk))
        XCTAssertEqual(str(slice(file, rows[0].valueRanges[1])), "'\(long)'")
        XCTAssertEqual(str(slice(file, rows[1].rowRange)), "(2, 'it''s')")
        XCTAssertEqual(str(slice(file, rows[3].statementRange)), "INSERT INTO t VALUES (4, 'tail');")
        XCTAssertEqual(str(slice(file, rows[2].valueRanges[0])), "3")
        XCTAssertEqual(rows[0].line, 15_003)
        XCTAssertEqual(rows[2].line, 15_005)
        XCTAssertEqual(rows[3].line, 15_007)
        XCTAssertEqual(reader.bytesRead, Int64(file.count))
    }

    func testFixturesParseTheSameWhereverTheReadBoundaryFalls() throws {
        // A comment line of padding puts a chosen byte of the dump just before / at / after the 1 MiB read
        // boundary; quotes, escapes, comment starts, delimiters and line ends all get their turn.
        let chunk = 1 << 20
        let rare = Set("\\$".utf8)
        let lexical = Set("'\";-/*`\n\t(),#".utf8)
        for d in Self.dumps where !["pg_inserts.sql", "pg_column_inserts.sql", "mysql_hex_blob.sql"].contains(d.file) {
            let content = try bytes(fixture(d.file))
            let (_, ref) = try readAll(fixture(d.file))
            let escapes = content.indices.filter { rare.contains(content[$0]) }
            let others = content.indices.filter { lexical.contains(content[$0]) }
            let sample =
                escapes.prefix(24) + stride(from: 0, to: others.count, by: max(1, others.count / 10)).map { others[$0] }
            for p in sample {
                for delta in [-1, 0] {  // the byte is the last one of the first read, or the first of the next
                    let pad = chunk - p + delta
                    var data = Array("-- ".utf8) + Array(repeating: UInt8(ascii: "x"), count: pad - 4) + [0x0A]
                    data += content
                    let (_, rows) = try readAll(try temp(data), dialect: d.dialect)
                    let what = "\(d.file) byte \(p) at boundary\(delta)"
                    XCTAssertEqual(rows.count, ref.count, what)
                    let s = Int64(pad)
                    func moved(_ r: ByteRange) -> ByteRange { ByteRange(start: r.start + s, end: r.end + s) }
                    for (a, b) in zip(rows, ref) {
                        XCTAssertEqual(a.values, b.values, what)
                        XCTAssertEqual(a.valueRanges, b.valueRanges.map(moved), what)
                        XCTAssertEqual(a.rowRange, moved(b.rowRange), what)
                        XCTAssertEqual(a.statementRange, moved(b.statementRange), what)
                        XCTAssertEqual(a.line, b.line + 1, what)
                        XCTAssertEqual(a.tupleIndex, b.tupleIndex, what)
                        XCTAssertEqual(a.columns, b.columns, what)
                    }
                }
            }
        }
    }

    func testTruncatedOrMalformedInsertIsAnErrorNotSilence() throws {
        for sql in [
            "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1, 'cut off",
            "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), 2;\n",
        ] {
            var reader = try SQLDumpReader(path: try temp(sql), dialect: .sqlite)
            XCTAssertThrowsError(try reader.forEachRow { _ in }, sql) { e in
                XCTAssertEqual((e as? DSARError)?.code, .invalidInput, sql)
                XCTAssertTrue((e as? DSARError)?.message.contains("line 2") ?? false, "\(e)")
            }
        }
        XCTAssertThrowsError(try SQLDumpReader(path: "/nonexistent/dump.sql")) { e in
            XCTAssertEqual((e as? DSARError)?.code, .io)
        }
    }

    func testDialectDetectionFromMarkers() throws {
        let cases: [(String, SQLDialect)] = [
            ("COPY t (a) FROM stdin;\n1\n\\.\n", .postgres),
            ("SET search_path = public;\nINSERT INTO t VALUES (1);\n", .postgres),
            ("/*!40101 SET NAMES utf8 */;\nINSERT INTO t VALUES (1);\n", .mysql),
            ("INSERT INTO `t` VALUES (1);\n", .mysql),
            ("BEGIN TRANSACTION;\nINSERT INTO t VALUES(1);\nCOMMIT;\n", .sqlite),
            ("INSERT INTO t VALUES (1);\n", .postgres),
        ]
        for (sql, want) in cases {
            XCTAssertEqual(try SQLDumpReader(path: try temp(sql)).dialect, want, sql)
        }
        XCTAssertEqual(
            try SQLDumpReader(path: try temp("INSERT INTO `t` VALUES (1);"), dialect: .sqlite).dialect, .sqlite)
    }
}
