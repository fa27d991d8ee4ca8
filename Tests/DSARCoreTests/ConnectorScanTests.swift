import DSARCore
import DSARTestSupport
import Foundation
import Logging
import XCTest

/// Every built-in connector over fixtures made by the real tools (pg_dump, mysqldump, sqlite3,
/// gzip): the exact set of records per subject — nothing missed, no near miss.
final class ConnectorScanTests: XCTestCase {
    let fixtures = repoRoot + "/Tests/Fixtures"
    let logger = Logger(label: "test")
    let aliceEmail = [Identifier(type: "email", value: "alice@example.com")]
    let aliceID = [Identifier(type: "user_id", value: "1042")]

    func jobs(_ ids: [[Identifier]]) -> ScanBatch {
        ScanBatch(
            jobs: ids.enumerated().map {
                ScanJob(
                    jobID: "job\($0.offset)", action: .export, identifiers: $0.element, dryRun: false,
                    workDir: "/nonexistent")
            })
    }

    func config(_ yaml: String, dir: String) throws -> ConnectorConfig {
        let file = NSTemporaryDirectory() + "dsar-conn-\(UUID().uuidString).yaml"
        try yaml.replacingOccurrences(of: "@DIR@", with: dir).write(toFile: file, atomically: true, encoding: .utf8)
        defer { unlink(file) }
        let (c, problems) = try ConnectorCatalog.parse(file: file, checkSources: true)
        XCTAssertEqual(problems.map(\.description), [])
        return try XCTUnwrap(c)
    }

    /// table → sorted ids of the records found for job k.
    func ids(_ f: ConnectorFindings?, key: String = "id") -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for r in f?.found ?? [] {
            let v = r.fields.first { $0.key == key }?.value
            if case .number(let n)? = v { out[r.table, default: []].append(Int(n)!) }
        }
        return out.mapValues { $0.sorted() }
    }

    let dumps = [
        ("pg_default.sql", SQLDialect.postgres), ("pg_inserts.sql", .postgres), ("pg_column_inserts.sql", .postgres),
        ("pg_rows_per_insert.sql", .postgres), ("mysql_default.sql", .mysql), ("mysql_skip_extended.sql", .mysql),
        ("sqlite.sql", .sqlite),
    ]

    func testSQLDumpsExactRecordsPerSubjectInEveryFormat() async throws {
        for (file, dialect) in dumps {
            let c = try config(
                """
                name: shop
                type: sqldump
                paths: [ @DIR@/\(file) ]
                tables:
                  customers:       { match: { email: email, id: user_id }, text: [ notes ] }
                  orders:          { match: { customer_id: user_id }, text: [ note ] }
                  support_tickets: { match: { customer_email: email }, text: [ body ] }
                """, dir: fixtures + "/sql")
            var reader = try SQLDumpReader(path: fixtures + "/sql/" + file)
            XCTAssertEqual(reader.dialect, dialect, file)
            try reader.forEachRow { _ in }
            let found = try await SQLDumpConnector(config: c).scan(jobs([aliceEmail, aliceID]), logger: logger)
            // E-mail only: the customer row, the order whose note names her, the tickets from or about her
            // (case-insensitive, URL-encoded); never malice@…, …com.evil.org, 10420 or 21042.
            XCTAssertEqual(
                ids(found["job0"]), ["customers": [1042], "orders": [3], "support_tickets": [1, 2, 3]], file)
            // user_id only: her customer row and her three orders; 1042.00 as an amount is not an id column.
            XCTAssertEqual(ids(found["job1"]), ["customers": [1042], "orders": [1, 2, 3]], file)
            // The customer row reveals her user_id (identity expansion), with provenance.
            let derived = try XCTUnwrap(found["job0"]).derived
            XCTAssertEqual(derived.map(\.0), [Identifier(type: "user_id", value: "1042")], file)
            XCTAssertEqual(derived.first?.1, "user_id derived from shop.customers via email", file)
            // Values decoded exactly, NULL as null, numbers as numbers.
            let alice = try XCTUnwrap(found["job1"]?.found.first { $0.table == "customers" })
            let fields = Dictionary(uniqueKeysWithValues: alice.fields.map { ($0.key, $0.value) })
            XCTAssertEqual(fields["notes"], .string("VIP customer\tgold tier\nsecond line"), file)
            XCTAssertEqual(fields["id"], .number("1042"), file)
            let order2 = try XCTUnwrap(
                found["job1"]?.found.first { $0.table == "orders" && $0.fields.first?.value == .number("2") })
            XCTAssertEqual(order2.fields.first { $0.key == "note" }?.value, .null, file)
        }
    }

    func testPostgresCopyCSVWithHeader() async throws {
        let c = try config(
            """
            name: copy
            type: csv
            paths: [ @DIR@/pg_copy_customers.csv ]
            columns: { email: email, id: user_id }
            text: [ notes ]
            """, dir: fixtures + "/sql")
        let found = try await CSVConnector(config: c).scan(jobs([aliceEmail, aliceID]), logger: logger)
        for job in ["job0", "job1"] {
            let recs = try XCTUnwrap(found[job]).found
            XCTAssertEqual(recs.map { $0.fields.first { $0.key == "id" }?.value }, [.string("1042")], job)
            XCTAssertEqual(
                recs.first?.fields.first { $0.key == "notes" }?.value, .string("VIP customer\tgold tier\nsecond line"))
        }
    }

    func testSemicolonCSVWithMalformedRowsKeepsScanning() async throws {
        let c = try config(
            """
            name: news
            type: csv
            paths: [ @DIR@/newsletter_semicolon.csv ]
            delimiter: ";"
            columns: { email: email }
            """, dir: fixtures + "/csv")
        let subjects = ["alice@example.com", "heidi@example.com", "eve@example.com", "grace@example.com"].map {
            [Identifier(type: "email", value: $0)]
        }
        let found = try await CSVConnector(config: c).scan(jobs(subjects), logger: logger)
        XCTAssertEqual(found["job0"]?.found.map(\.line), [2])
        XCTAssertEqual(found["job1"]?.found.count, 1, "the record after the malformed ones is still found")
        XCTAssertEqual(found["job2"]?.found.count, 0, "a malformed row is skipped, not half-read")
        XCTAssertEqual(found["job3"]?.found.count, 1)
        XCTAssertEqual(found["job0"]?.details["malformed_rows"], "2")
        // The original row is exported as CSV with the header.
        let r = try XCTUnwrap(found["job0"]?.found.first)
        XCTAssertEqual(
            String(decoding: r.raw ?? [], as: UTF8.self),
            "alice@example.com;Alice Anders;\"likes ; semicolons\";2023-01-05\r\n")
        XCTAssertEqual(String(decoding: r.rawHeader ?? [], as: UTF8.self), "email;name;note;subscribed_at\r\n")
    }

    func testAccessLogsWithGzipRotationOnTokenBoundaries() async throws {
        let c = try config(
            """
            name: web
            type: log
            paths: [ @DIR@/access.log* ]
            match: [ email, ip, user_id ]
            """, dir: fixtures + "/logs")
        let found = try await LogConnector(config: c).scan(
            jobs([aliceEmail, aliceID, [Identifier(type: "ip", value: "2001:db8::1")]]), logger: logger)
        func lines(_ job: String) -> [String] {
            (found[job]?.found ?? []).map { "\(FindingsWriter.tableName(forFile: $0.source)):\($0.line)" }
        }
        let plain = try String(contentsOfFile: fixtures + "/logs/access.log", encoding: .utf8).split(
            separator: "\n", omittingEmptySubsequences: false)
        let expectedEmail = plain.enumerated().filter {
            $0.element.contains("alice%40example.com") || $0.element.contains("alice@example.com ")
        }.map { "access.log:\($0.offset + 1)" }
        XCTAssertFalse(expectedEmail.isEmpty)
        XCTAssertEqual(lines("job0").filter { $0.hasPrefix("access.log:") }, expectedEmail)
        XCTAssertTrue(
            lines("job0").contains { $0.hasPrefix("access.log.1:") }, "the gzip rotation is searched: \(lines("job0"))")
        for l in lines("job1") {
            let n = Int(l.split(separator: ":").last!)!
            if l.hasPrefix("access.log:") {
                XCTAssertTrue(
                    plain[n - 1].range(of: #"\b1042\b"#, options: .regularExpression) != nil, String(plain[n - 1]))
            }
        }
        XCTAssertTrue(lines("job2").contains("access.log:5"), lines("job2").description)
    }

    func testJSONLinesFieldsAndNonJSONLinesAsText() async throws {
        let c = try config(
            """
            name: app
            type: log
            format: jsonl
            paths: [ @DIR@/app.jsonl ]
            fields: { email: email, user_id: user_id }
            """, dir: fixtures + "/logs")
        let found = try await LogConnector(config: c).scan(
            jobs([aliceEmail, [Identifier(type: "user_id", value: "7")], [Identifier(type: "user_id", value: "3")]]),
            logger: logger)
        XCTAssertEqual(found["job0"]?.found.map(\.line), [1, 5], "case-insensitive e-mail field; malice@ is not her")
        let seven = try XCTUnwrap(found["job1"]?.found.first)
        XCTAssertEqual(seven.line, 4)
        // Invalid UTF-8 inside the JSON string is kept (as the replacement-free raw line is not JSON-decodable).
        XCTAssertEqual(found["job2"]?.found.map(\.line), [3], "a line that is not JSON is searched as text")
    }
}
