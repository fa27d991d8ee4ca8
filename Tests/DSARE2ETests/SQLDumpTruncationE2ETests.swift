import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// `dsar connectors check` on a pg_dump cut off in a COPY block (the committed real pg_dump fixture, cut).
final class SQLDumpTruncationE2ETests: XCTestCase {
    func testConnectorsCheckReportsACutDumpWithFileAndLineUnlessAllowed() throws {
        let s = try TempSpool()
        try s.initialize()
        let dir = s.base + "/connectors"
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/sql/pg_default.sql")))
        let text = String(decoding: full, as: UTF8.self)
        let copy = try XCTUnwrap(text.range(of: "COPY public.customers "))
        let copyOffset = text.utf8.distance(from: text.startIndex, to: copy.lowerBound)
        let copyLine = 1 + full[0..<copyOffset].filter { $0 == 0x0A }.count
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try Data(full[0..<(copyOffset + 300)]).write(to: URL(fileURLWithPath: dir + "/data/shop.sql"))
        let yaml =
            "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\ntables:\n  customers: { match: { email: email } }\n"
        try writeFile(dir + "/shop.yaml", yaml)

        let bad = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(bad.status, 78, bad.stdout + bad.stderr)
        XCTAssertTrue(
            bad.stderr.contains(
                "\(dir)/shop.yaml:3: paths: \(dir)/data/shop.sql:\(copyLine): COPY public.customers (line \(copyLine)) has no terminating \\. line"
            ),
            bad.stderr)
        XCTAssertFalse(bad.stderr.contains("@example"), bad.stderr)

        try writeFile(dir + "/shop.yaml", yaml + "allow_truncated: true\n")
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)

        try Data(full).write(to: URL(fileURLWithPath: dir + "/data/shop.sql"))
        try writeFile(dir + "/shop.yaml", yaml)
        let complete = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(complete.status, 0, complete.stdout + complete.stderr)
    }

    // MARK: - Runs on dumps made by the real tools, cut

    let tables = """
        tables:
          customers:       { match: { email: email, id: user_id }, erase: delete }
          orders:          { match: { customer_id: user_id }, text: [ note ], erase: retain, reason: "invoices" }
          support_tickets: { match: { customer_email: email }, text: [ body ], erase: delete }

        """

    /// The fixture cut just after the first line that contains `marker` (a whole line kept).
    func cut(_ bytes: [UInt8], afterLineContaining marker: String) throws -> [UInt8] {
        let text = String(decoding: bytes, as: UTF8.self)
        let r = try XCTUnwrap(text.range(of: marker), marker)
        let end = try XCTUnwrap(text[r.upperBound...].firstIndex(of: "\n"))
        return Array(bytes[0...text.utf8.distance(from: text.startIndex, to: end)])
    }

    func run(_ dump: [UInt8], action: String, allow: Bool = false) throws -> (JobRecord, [String: Any], String) {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try Data(dump).write(to: URL(fileURLWithPath: dir + "/data/shop.sql"))
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\n" + (allow ? "allow_truncated: true\n" : "") + tables)
        try s.initialize()
        try s.drop("r.json", "{\"action\": \"\(action)\", \"email\": \"alice@example.com\", \"user_id\": \"1042\"}")
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertTrue([0, 1].contains(r.status), r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json"))
        let m = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (
            rec, m, String(decoding: try Data(contentsOf: URL(fileURLWithPath: dir + "/data/shop.sql")), as: UTF8.self)
        )
    }

    func testCutDumpsOfAllThreeToolsMakeExportAndDeletePartial() throws {
        // (fixture, a line of her customer row, the line that ends the customers data)
        let dumps: [(String, String, String)] = [
            ("pg_default.sql", "1042\talice@example.com", "1042\talice@example.com"),
            ("mysql_default.sql", "INSERT INTO `customers`", "(21042,'alice@example.com.evil.org'"),
            ("sqlite.sql", "INSERT INTO customers VALUES(1042", "INSERT INTO customers VALUES(21042"),
        ]
        for (fixture, _, endOfCustomers) in dumps {
            let full = Array(try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/sql/" + fixture)))
            // The complete dump: every record, COMPLETED.
            let (ok, okManifest, _) = try run(full, action: "export")
            XCTAssertEqual(ok.status, .completed, "\(fixture): \(ok.error ?? "")")
            XCTAssertEqual((okManifest["coverage"] as? [String: Any])?["complete"] as? Bool, true)
            let all = ok.connectors.first?.records ?? 0
            XCTAssertGreaterThanOrEqual(all, 4, fixture)
            // Cut after her customer row: what was found is exported, and the job says the dump is cut off.
            let cutDump = try cut(full, afterLineContaining: endOfCustomers)
            for action in ["export", "delete"] {
                let (rec, m, after) = try run(cutDump, action: action)
                XCTAssertEqual(rec.status, .partial, "\(fixture) \(action): a cut dump is never COMPLETED")
                let err = rec.error ?? ""
                XCTAssertTrue(err.contains("shop.sql"), err)
                XCTAssertTrue(
                    err.contains("cut off") || err.contains("trailer") || err.contains("ends"), "\(fixture): \(err)")
                XCTAssertFalse(err.contains("alice@"), err)
                XCTAssertLessThan(rec.connectors.first?.records ?? 0, all, fixture)
                let gaps = (m["coverage"] as? [String: Any])?["gaps"] as? [[String: Any]] ?? []
                XCTAssertTrue(gaps.contains { $0["kind"] as? String == "truncated" }, "\(fixture): \(gaps)")
                let src = ((m["connectors"] as? [[String: Any]])?.first?["sources"] as? [[String: Any]])?.first
                XCTAssertNotNil(src?["truncated"] as? String, fixture)
                if action == "delete" {
                    XCTAssertEqual((m["erasure"] as? [String: Any])?["verified"] as? Bool, false, fixture)
                    XCTAssertFalse(
                        after.contains("1042\talice@example.com") || after.contains("(1042,'alice@example.com'"),
                        "her row found before the cut is still erased")
                }
            }
            // The operator accepts cut dumps of this source: the cut is no longer a gap, but on record.
            // (pg_dump declares every table first; in the others the tables after the cut are simply
            // not there, which is still a gap.)
            let (allowed, am, _) = try run(cutDump, action: "export", allow: true)
            XCTAssertFalse((allowed.error ?? "").contains("cut off"), "\(fixture): \(allowed.error ?? "")")
            if fixture.hasPrefix("pg") {
                XCTAssertEqual(allowed.status, .completed, "\(fixture): \(allowed.error ?? "")")
            } else {
                XCTAssertTrue((allowed.error ?? "").contains("the dump has no table \"orders\""), allowed.error ?? "")
            }
            let src = ((am["connectors"] as? [[String: Any]])?.first?["sources"] as? [[String: Any]])?.first
            XCTAssertNotNil(src?["truncated"] as? String, "the coverage still says it was cut")
        }
    }

    /// A pg_dump whose last COPY block and trailer are missing (cut right after a COPY line's data).
    func testPgDumpWithoutItsTrailerIsPartial() throws {
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/sql/pg_default.sql")))
        let text = String(decoding: full, as: UTF8.self)
        let trailer = try XCTUnwrap(text.range(of: "-- PostgreSQL database dump complete"))
        let (rec, _, _) = try run(
            Array(full[0..<text.utf8.distance(from: text.startIndex, to: trailer.lowerBound)]), action: "export")
        XCTAssertEqual(rec.status, .partial)
        XCTAssertTrue((rec.error ?? "").contains("dump complete"), rec.error ?? "")
    }

    /// Cut inside her COPY row (mid e-mail): even with allow_truncated, the partial last record is an
    /// unparsed record, and it still holds her user id, so the export is not COMPLETED.
    func testACutInsideHerRowIsAGapEvenWhenCutsAreAllowed() throws {
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/sql/pg_default.sql")))
        let text = String(decoding: full, as: UTF8.self)
        let at = text.utf8.distance(
            from: text.startIndex, to: try XCTUnwrap(text.range(of: "1042\talice@example.com")).lowerBound)
        let (rec, m, _) = try run(Array(full[0..<(at + 10)]), action: "export", allow: true)
        XCTAssertEqual(rec.status, .partial, rec.error ?? "")
        let gaps = (m["coverage"] as? [String: Any])?["gaps"] as? [[String: Any]] ?? []
        XCTAssertTrue(
            gaps.contains {
                $0["kind"] as? String == "unparsed_record" && $0["identifier_type"] as? String == "user_id"
            }, "\(gaps)")
        XCTAssertFalse(gaps.contains { $0["kind"] as? String == "truncated" }, "the cut itself is accepted")
    }
}
