import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// `SQLDumpReader.truncation`: dumps written by the real tools (the committed fixtures, made by
/// Tests/Fixtures/make-sql-fixtures.sh, and a `sqlite3 .dump` made here), cut at chosen byte offsets.
final class SQLDumpTruncationTests: XCTestCase {
    static let fixtureDir = repoRoot + "/Tests/Fixtures/sql"

    static let complete: [(file: String, producer: SQLDumpReader.Producer)] = [
        ("pg_default.sql", .pgDump), ("pg_inserts.sql", .pgDump), ("pg_column_inserts.sql", .pgDump),
        ("pg_rows_per_insert.sql", .pgDump), ("mysql_default.sql", .mysqldump),
        ("mysql_skip_extended.sql", .mysqldump), ("mysql_hex_blob.sql", .mysqldump), ("sqlite.sql", .sqlite),
    ]

    // MARK: - Helpers

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func fixture(_ name: String) throws -> [UInt8] { try bytes(Self.fixtureDir + "/" + name) }

    func temp(_ data: [UInt8], name: String = "dump.sql") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sqltrunc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try Data(data).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The offset of the first `needle` at or after `from` (fails the test if absent).
    func offset(
        of needle: String, in data: [UInt8], from: Int = 0, file: StaticString = #filePath, line: UInt = #line
    ) -> Int {
        let n = Array(needle.utf8)
        var i = from
        while i + n.count <= data.count {
            if data[i] == n[0] && data[i..<i + n.count].elementsEqual(n) { return i }
            i += 1
        }
        XCTFail("\(needle.debugDescription) not found", file: file, line: line)
        return data.count
    }

    /// The 1-based line of byte `offset`, counted by the test itself.
    func line(at offset: Int, in data: [UInt8]) -> Int { 1 + data[0..<offset].filter { $0 == 0x0A }.count }

    struct Read {
        var reader: SQLDumpReader
        var rows: [SQLRow]
        var error: DSARError?
    }

    /// Reads the first `count` bytes of `data` as a dump (with a tiny read chunk too, which must agree).
    func readCut(_ data: [UInt8], _ count: Int, dialect: SQLDialect? = nil) throws -> Read {
        let path = try temp(Array(data[0..<count]))
        var results: [Read] = []
        for chunk in [SQLInput.defaultChunk, 7] {
            var reader = try SQLDumpReader(path: path, dialect: dialect)
            reader.chunkSize = chunk
            var rows: [SQLRow] = []
            var error: DSARError?
            do {
                try reader.forEachRow { rows.append($0) }
            } catch let e as DSARError {
                error = e
            }
            results.append(Read(reader: reader, rows: rows, error: error))
        }
        XCTAssertEqual(results[0].reader.truncation, results[1].reader.truncation, "chunk size changes the verdict")
        XCTAssertEqual(results[0].rows.map(\.rowRange), results[1].rows.map(\.rowRange))
        XCTAssertEqual(results[0].error?.message, results[1].error?.message)
        return results[0]
    }

    /// No e-mail, no customer name, no data value of the fixtures in a message.
    func assertNoData(_ message: String, file: StaticString = #filePath, line: UInt = #line) {
        for value in ["@", "alice", "Alice", "bob", "1042", "Liddell", "gold tier"] {
            XCTAssertFalse(
                message.contains(value), "\(message.debugDescription) contains \(value)", file: file, line: line)
        }
    }

    // MARK: - Complete dumps

    func testEveryCompleteFixtureHasNoTruncationAndItsProducerIsRecognised() throws {
        for d in Self.complete {
            let data = try fixture(d.file)
            let r = try readCut(data, data.count)
            XCTAssertNil(r.error, d.file)
            XCTAssertEqual(r.rows.count, 26, d.file)
            XCTAssertEqual(r.reader.producer, d.producer, d.file)
            XCTAssertNil(r.reader.truncation, d.file)
            // Blank lines and spaces after the trailer are fine; so is a dump ending without its last "\n".
            var padded = data
            padded += Array("\n\n   \n\t\n".utf8)
            XCTAssertNil(try readCut(padded, padded.count).reader.truncation, d.file)
            XCTAssertNil(try readCut(data, data.count - 1).reader.truncation, d.file)
        }
    }

    // MARK: - pg_dump

    func testPgDumpCutInsideACopyBlock() throws {
        let data = try fixture("pg_default.sql")
        let copy = offset(of: "COPY public.customers ", in: data)
        XCTAssertEqual(line(at: copy, in: data), 96)
        // After the 4th complete data line of customers: 4 rows, then the block just stops.
        var cut = offset(of: "\n", in: data, from: copy) + 1
        for _ in 0..<4 { cut = offset(of: "\n", in: data, from: cut) + 1 }
        let r = try readCut(data, cut)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.rows.count, 4)
        let t = try XCTUnwrap(r.reader.truncation)
        XCTAssertEqual(t.kind, .copyUnterminated)
        XCTAssertEqual(t.line, 96)
        XCTAssertEqual(t.message, #"COPY public.customers (line 96) has no terminating \. line: the dump is cut off"#)
        assertNoData(t.message)
    }

    func testPgDumpCutMidLineInACopyBlockDropsTheCutRow() throws {
        let data = try fixture("pg_default.sql")
        let copy = offset(of: "COPY public.orders ", in: data)
        let row3 = offset(of: "\n3\t1042\t", in: data, from: copy) + 1
        let r = try readCut(data, row3 + 6)  // "3\t1042" of the third order
        XCTAssertNil(r.error)
        // All customers, two whole orders; the cut third one is not passed on with wrong values.
        XCTAssertEqual(r.rows.filter { $0.table == "customers" }.count, 10)
        XCTAssertEqual(r.rows.filter { $0.table == "orders" }.count, 2)
        let t = try XCTUnwrap(r.reader.truncation)
        XCTAssertEqual(t.kind, .copyUnterminated)
        XCTAssertEqual(t.line, line(at: copy, in: data))
        XCTAssertTrue(t.message.hasPrefix("COPY public.orders (line \(t.line)) has no terminating \\. line"), t.message)
        XCTAssertTrue(t.message.contains("cut off mid-line"), t.message)
        assertNoData(t.message)
    }

    func testPgDumpCutInOrJustAfterACopyHeader() throws {
        let data = try fixture("pg_default.sql")
        let copy = offset(of: "COPY public.support_tickets ", in: data)
        let copyLine = line(at: copy, in: data)
        // In the COPY statement itself: an open statement.
        let inHeader = try readCut(data, copy + 20)
        XCTAssertEqual(inHeader.reader.truncation?.kind, .insideStatement)
        XCTAssertEqual(inHeader.reader.truncation?.line, copyLine)
        XCTAssertEqual(
            inHeader.reader.truncation?.message,
            "the dump ends inside a COPY statement that has no terminating ;: the dump is cut off")
        // Right after "FROM stdin;\n", before any data.
        let afterHeader = try readCut(data, offset(of: "\n", in: data, from: copy) + 1)
        XCTAssertEqual(afterHeader.reader.truncation?.kind, .copyUnterminated)
        XCTAssertEqual(afterHeader.reader.truncation?.line, copyLine)
        XCTAssertEqual(afterHeader.rows.filter { $0.table == "support_tickets" }.count, 0)
        // Between the "\" and the "." of its terminator.
        let term = offset(of: "\n\\.\n", in: data, from: copy) + 1
        let inTerminator = try readCut(data, term + 1)
        XCTAssertEqual(inTerminator.reader.truncation?.kind, .copyUnterminated)
        XCTAssertEqual(inTerminator.rows.filter { $0.table == "support_tickets" }.count, 8)
    }

    func testPgDumpCutAfterACopyBlockOrBeforeTheTrailer() throws {
        let data = try fixture("pg_default.sql")
        // Right after the orders block's "\.\n": every statement complete, the trailer missing.
        let orders = offset(of: "COPY public.orders ", in: data)
        let term = offset(of: "\n\\.\n", in: data, from: orders) + 1
        let afterCopy = try readCut(data, term + 3)
        XCTAssertNil(afterCopy.error)
        XCTAssertEqual(afterCopy.rows.count, 18)
        let t = try XCTUnwrap(afterCopy.reader.truncation)
        XCTAssertEqual(t.kind, .missingTrailer)
        XCTAssertEqual(t.line, line(at: term, in: data))
        XCTAssertEqual(
            t.message,
            "the pg_dump dump does not end with its \"-- PostgreSQL database dump complete\" line (it stops at line \(t.line)): the dump is cut off"
        )
        // Just before the trailer comment, after the last statement.
        let trailer = offset(of: "-- PostgreSQL database dump complete", in: data)
        let before = try readCut(data, trailer)
        XCTAssertEqual(before.rows.count, 26)
        XCTAssertEqual(before.reader.truncation?.kind, .missingTrailer)
        // In the trailer line: "-- PostgreSQL database dump" alone is the header, not the trailer.
        let inTrailer = try readCut(data, trailer + 28)
        XCTAssertEqual(inTrailer.reader.truncation?.kind, .missingTrailer)
        // After the trailer, in the \unrestrict line: all data is there, the dump is complete.
        let unrestrict = offset(of: "\\unrestrict", in: data, from: trailer)
        for cut in [trailer + 36, unrestrict, unrestrict + 5, unrestrict + 20] {
            XCTAssertNil(try readCut(data, cut).reader.truncation, "cut at \(cut)")
        }
    }

    func testPgDumpCutMidLineInAStatement() throws {
        let data = try fixture("pg_default.sql")
        let alter = offset(of: "ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_customer_id_fkey", in: data)
        let r = try readCut(data, alter + 40)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.rows.count, 26)
        let t = try XCTUnwrap(r.reader.truncation)
        XCTAssertEqual(t.kind, .insideStatement)
        XCTAssertEqual(t.line, line(at: alter, in: data))
        XCTAssertEqual(
            t.message, "the dump ends inside an ALTER statement that has no terminating ;: the dump is cut off")
    }

    func testPgInsertsCutInsideAnInsertStillFails() throws {
        let data = try fixture("pg_inserts.sql")
        let alice = offset(of: "INSERT INTO public.customers VALUES (1042,", in: data)
        let r = try readCut(data, alice + 60)
        XCTAssertEqual(r.error?.code, .invalidInput)
        XCTAssertTrue(r.error?.message.contains("cut off inside a tuple") ?? false, "\(String(describing: r.error))")
        XCTAssertEqual(r.reader.truncation?.kind, .insideStatement)
        XCTAssertEqual(r.reader.truncation?.line, line(at: alice, in: data))
        assertNoData(r.reader.truncation?.message ?? "")
    }

    // MARK: - mysqldump

    func testMysqldumpCutBetweenStatementsOrBeforeTheTrailer() throws {
        let data = try fixture("mysql_default.sql")
        // After the customers INSERT (and its ";\n"), before the UNLOCK TABLES that follows.
        let insert = offset(of: "INSERT INTO `customers` VALUES", in: data)
        let end = offset(of: ");\n", in: data, from: insert) + 3
        let r = try readCut(data, end)
        XCTAssertNil(r.error)
        XCTAssertEqual(r.rows.count, 10)
        let t = try XCTUnwrap(r.reader.truncation)
        XCTAssertEqual(t.kind, .missingTrailer)
        XCTAssertEqual(t.line, line(at: end - 1, in: data))
        XCTAssertTrue(t.message.contains("mysqldump dump does not end with its \"-- Dump completed\" line"), t.message)
        assertNoData(t.message)
        // Everything but the "-- Dump completed on …" line.
        let trailer = offset(of: "-- Dump completed", in: data)
        let before = try readCut(data, trailer)
        XCTAssertEqual(before.rows.count, 26)
        XCTAssertEqual(before.reader.truncation?.kind, .missingTrailer)
        XCTAssertEqual(try readCut(data, trailer + 10).reader.truncation?.kind, .missingTrailer)  // "-- Dump co"
        XCTAssertNil(try readCut(data, trailer + 17).reader.truncation)  // "-- Dump completed": the date is cut
    }

    func testMysqldumpCutInsideAnExtendedInsertFails() throws {
        let data = try fixture("mysql_default.sql")
        let insert = offset(of: "INSERT INTO `orders` VALUES", in: data)
        // In the middle of a tuple: an error, as before.
        let mid = try readCut(data, offset(of: "\n(4,", in: data, from: insert) + 4)
        XCTAssertEqual(mid.error?.code, .invalidInput)
        XCTAssertEqual(mid.reader.truncation?.kind, .insideStatement)
        XCTAssertEqual(mid.reader.truncation?.line, line(at: insert, in: data))
        // Right after a complete tuple: the rows read are whole, but the statement has no ";".
        let after = try readCut(data, offset(of: "),\n(4,", in: data, from: insert) + 1)
        XCTAssertNil(after.error)
        XCTAssertEqual(after.rows.filter { $0.table == "orders" }.count, 3)
        let t = try XCTUnwrap(after.reader.truncation)
        XCTAssertEqual(t.kind, .insideStatement)
        XCTAssertEqual(t.line, line(at: insert, in: data))
        XCTAssertEqual(t.message, "the dump ends inside an INSERT that has no terminating ;: the dump is cut off")
    }

    func testMysqldumpCutInsideAVersionComment() throws {
        let data = try fixture("mysql_default.sql")
        let last = offset(of: "/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;", in: data)
        let r = try readCut(data, last + 20)
        let t = try XCTUnwrap(r.reader.truncation)
        XCTAssertEqual(t.kind, .insideComment)
        XCTAssertEqual(t.line, line(at: last, in: data))
    }

    // MARK: - SQLite

    func testSQLiteDumpCutBeforeCommitOrMidInsert() throws {
        let data = try fixture("sqlite.sql")
        let commit = offset(of: "\nCOMMIT;", in: data) + 1
        let before = try readCut(data, commit)
        XCTAssertNil(before.error)
        XCTAssertEqual(before.rows.count, 26)
        let t = try XCTUnwrap(before.reader.truncation)
        XCTAssertEqual(t.kind, .missingTrailer)
        XCTAssertEqual(t.line, line(at: commit - 1, in: data))
        XCTAssertTrue(t.message.contains("sqlite3 dump does not end with its \"COMMIT;\" line"), t.message)
        XCTAssertEqual(try readCut(data, commit + 6).reader.truncation?.kind, .insideStatement)  // "COMMIT"
        let alice = offset(of: "INSERT INTO customers VALUES(1042,", in: data)
        let mid = try readCut(data, alice + 50)
        XCTAssertEqual(mid.error?.code, .invalidInput)
        XCTAssertEqual(mid.reader.truncation?.kind, .insideStatement)
        XCTAssertEqual(mid.reader.truncation?.line, line(at: alice, in: data))
    }

    func testADumpMadeBySqlite3NowIsCompleteAndItsCutsAreNot() throws {
        guard let sqlite3 = which("sqlite3") else { throw XCTSkip("sqlite3 is not installed") }
        let db = try temp([], name: "live.db")
        try FileManager.default.removeItem(atPath: db)
        var script = "CREATE TABLE people (id integer PRIMARY KEY, email text, note text);\n"
        for k in 1...200 {
            script += "INSERT INTO people VALUES (\(k), 'p\(k)@example.org', 'line one' || char(10) || 'line; two');\n"
        }
        let load = try runCommand(sqlite3, [db], stdin: script)
        XCTAssertEqual(load.status, 0, load.stderr)
        let dump = try runCommand(sqlite3, [db, ".dump"])
        XCTAssertEqual(dump.status, 0, dump.stderr)
        let data = Array(dump.stdout.utf8)
        let full = try readCut(data, data.count)
        XCTAssertNil(full.error)
        XCTAssertEqual(full.rows.count, 200)
        XCTAssertEqual(full.reader.producer, .sqlite)
        XCTAssertNil(full.reader.truncation)
        // Every cut at a line end between the header and COMMIT is reported, never silent.
        let lineEnds = data.indices.filter { data[$0] == 0x0A }.map { $0 + 1 }
        XCTAssertEqual(lineEnds.last, data.count)
        XCTAssertEqual(Array(data.suffix(8)), Array("COMMIT;\n".utf8))
        var cuts = 0
        for i in lineEnds.dropLast() where i % 3 == 0 || i == data.count - 8 {
            let r = try readCut(data, i)
            XCTAssertNil(r.error, "cut at \(i)")
            XCTAssertEqual(r.reader.truncation?.kind, .missingTrailer, "cut at \(i)")
            cuts += 1
        }
        XCTAssertGreaterThan(cuts, 20)
    }

    // MARK: - Unknown provenance

    func testADumpWithoutAHeaderNeedsNoTrailerButCutsStillCount() throws {
        var data = Array("CREATE TABLE t (a int, b text);\nCOPY t (a, b) FROM stdin;\n1\tx\n2\ty\n\\.\n".utf8)
        let r = try readCut(data, data.count, dialect: .postgres)
        XCTAssertEqual(r.reader.producer, .unknown)
        XCTAssertNil(r.reader.truncation)
        XCTAssertEqual(r.rows.count, 2)
        XCTAssertEqual(try readCut(data, data.count - 3, dialect: .postgres).reader.truncation?.kind, .copyUnterminated)
        data += Array("INSERT INTO t VALUES (3, 'z')".utf8)
        let open = try readCut(data, data.count, dialect: .postgres)
        XCTAssertEqual(open.rows.count, 3)
        XCTAssertEqual(open.reader.truncation?.kind, .insideStatement)
        XCTAssertEqual(open.reader.truncation?.line, 6)
        XCTAssertNil(try readCut(data + [0x3B, 0x0A], data.count + 2, dialect: .postgres).reader.truncation)
    }

    func testTruncationIsResetWhenTheFileIsReadAgain() throws {
        let data = try fixture("pg_default.sql")
        let path = try temp(Array(data[0..<(data.count / 2)]))
        var reader = try SQLDumpReader(path: path)
        try reader.forEachRow { _ in }
        XCTAssertNotNil(reader.truncation)
        try Data(data).write(to: URL(fileURLWithPath: path))
        try reader.forEachRow { _ in }
        XCTAssertNil(reader.truncation)
    }

    // MARK: - Config and `connectors check`

    /// Parses a sqldump connector over `dump` with sources checked; returns the config and the problems.
    func parseConnector(dump: String, extra: String = "") throws -> (ConnectorConfig?, [String]) {
        let dir = (dump as NSString).deletingLastPathComponent
        let yaml = dir + "/shop.yaml"
        try """
        name: shop
        type: sqldump
        paths: [ \((dump as NSString).lastPathComponent) ]
        \(extra)tables:
          customers: { match: { email: email } }

        """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let (c, problems) = try ConnectorCatalog.parse(file: yaml, checkSources: true)
        return (c, problems.map(\.description))
    }

    func testAllowTruncatedIsParsedAndCheckReportsACutDumpUnlessAllowed() throws {
        let data = try fixture("pg_default.sql")
        let complete = try temp(data)
        let (ok, okProblems) = try parseConnector(dump: complete)
        XCTAssertEqual(okProblems, [])
        XCTAssertEqual((ok?.settings as? SQLDumpSettings)?.allowTruncated, false)

        let copy = offset(of: "COPY public.orders ", in: data)
        let cut = try temp(Array(data[0..<(copy + 200)]))
        let (bad, problems) = try parseConnector(dump: cut)
        XCTAssertNil(bad)
        XCTAssertEqual(
            problems,
            [
                "\((cut as NSString).deletingLastPathComponent)/shop.yaml:3: paths: \(cut):\(line(at: copy, in: data)): "
                    + "COPY public.orders (line \(line(at: copy, in: data))) has no terminating \\. line and its last data line is "
                    + "cut off mid-line (not read): the dump is cut off (set `allow_truncated: true` on this connector to accept it)"
            ])
        assertNoData(problems.joined())

        let (allowed, allowedProblems) = try parseConnector(dump: cut, extra: "allow_truncated: true\n")
        XCTAssertEqual(allowedProblems, [])
        XCTAssertEqual((allowed?.settings as? SQLDumpSettings)?.allowTruncated, true)
        let (_, typo) = try parseConnector(dump: cut, extra: "allow_truncated: maybe\n")
        XCTAssertTrue(typo.contains { $0.contains("allow_truncated: expected true or false") }, "\(typo)")
    }

    func testCheckReportsAnInsertCutInARowEvenWhenTruncationIsAllowed() throws {
        let data = try fixture("mysql_default.sql")
        let insert = offset(of: "INSERT INTO `orders` VALUES", in: data)
        let tuple = offset(of: "\n(4,", in: data, from: insert) + 1
        let cut = try temp(Array(data[0..<(tuple + 3)]))
        for extra in ["", "allow_truncated: true\n"] {
            let (c, problems) = try parseConnector(dump: cut, extra: extra)
            XCTAssertNil(c)
            XCTAssertEqual(problems.count, 1, "\(problems)")
            XCTAssertTrue(
                problems.first?.contains(
                    "\(cut): line \(line(at: tuple, in: data)): INSERT into orders is cut off inside a tuple") ?? false,
                "\(problems)")
        }
    }

    // MARK: - Erasure keeps the ending as it is

    func testRewritingADumpNeitherAddsNorRemovesATrailer() throws {
        for (file, dialect) in [
            ("pg_default.sql", SQLDialect.postgres), ("mysql_default.sql", .mysql), ("sqlite.sql", .sqlite),
        ] {
            let data = try fixture(file)
            var probe = try SQLDumpReader(path: try temp(data))
            try probe.forEachRow { _ in }
            let trailer = try XCTUnwrap(probe.producer.trailer)
            let cutAt = offset(of: trailer, in: data)
            for (label, source) in [("complete", data), ("cut", Array(data[0..<cutAt]))] {
                let src = try temp(source)
                var reader = try SQLDumpReader(path: src, dialect: dialect)
                var plan = SQLRewritePlan()
                try reader.forEachRow { row in
                    if case .number("1042")? = row.values.first, row.table == "customers" { plan.add(row, .delete) }
                }
                XCTAssertEqual(plan.count, 1, "\(file) \(label)")
                let out = try temp([], name: "out.sql")
                let fd = open(out, O_WRONLY | O_TRUNC | O_CLOEXEC)
                XCTAssertGreaterThanOrEqual(fd, 0)
                let counts = try SQLRewriter.rewrite(
                    source: src, dialect: dialect, plan: plan, output: fd, outputPath: out)
                close(fd)
                XCTAssertEqual(counts.deleted, 1, "\(file) \(label)")
                var after = try SQLDumpReader(path: out, dialect: dialect)
                var rows = 0
                try after.forEachRow { _ in rows += 1 }
                XCTAssertEqual(rows, 25, "\(file) \(label)")
                XCTAssertEqual(after.truncation?.kind, reader.truncation?.kind, "\(file) \(label)")
                XCTAssertEqual(after.truncation == nil, label == "complete", "\(file) \(label)")
                let written = try bytes(out)
                XCTAssertEqual(
                    Array(written.suffix(200)), Array(source.suffix(200)), "\(file) \(label): the ending changed")
            }
        }
    }
}
