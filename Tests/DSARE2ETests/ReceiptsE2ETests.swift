import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// "Receipts never lie": every path that used to sign a false statement, through the real binary.
/// Each test shows the old false receipt is now PARTIAL or refused, and the true one still COMPLETED.
final class ReceiptsE2ETests: XCTestCase {

    /// The subject's row, a near miss and another person, in a semicolon CSV with a header.
    let goodCSV =
        "email;name;note\nalice@example.com;Alice;hello\nmalice@example.com;Mal;near miss\nbob@example.org;Bob;x\n"

    func csvConnector(
        _ dir: String, columns: String = "{ email: email }", extra: String = "", erase: String = "delete"
    ) throws {
        try writeFile(
            dir + "/news.yaml",
            "name: news\ntype: csv\npaths: [ data/news.csv ]\ndelimiter: \";\"\ncolumns: \(columns)\n\(extra)erase: \(erase)\n"
        )
    }

    func manifest(_ s: TempSpool, _ job: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(job)/manifest.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func gaps(_ m: [String: Any]) -> [[String: Any]] {
        ((m["coverage"] as? [String: Any])?["gaps"] as? [[String: Any]]) ?? []
    }

    // MARK: - No connectors

    func testNoConnectorsRefusesToClaimAndCheckFails() throws {
        let s = try TempSpool()
        try s.initialize()
        let dir = s.base + "/connectors"
        try FileManager.default.removeItem(atPath: dir)  // the test support's baseline connector
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        // An empty directory, and the default one missing altogether.
        for args in [["--connectors", dir], []] {
            if args.isEmpty { try FileManager.default.removeItem(atPath: dir) }
            let r = try s.dsar(["run", "--settle", "0"] + args)
            XCTAssertEqual(r.status, 78, r.stderr)
            XCTAssertTrue(r.stderr.contains("dsar would search nothing"), r.stderr)
            XCTAssertEqual(s.list("inbox"), ["d.json"], "the inbox is untouched")
            XCTAssertEqual(s.recordNames(), [])
            XCTAssertEqual(s.list("outbox"), [])
            let c = try s.dsar(["connectors", "check"] + args)
            XCTAssertEqual(c.status, 78, c.stdout + c.stderr)
            XCTAssertFalse(c.stdout.contains("OK"), c.stdout)
        }
    }

    // MARK: - Malformed rows

    /// A row with one field too many and an unterminated quote before another row: both hold the
    /// subject's address. The export and the delete are PARTIAL with file:line, the delete's receipt
    /// is not "verified", and the bad row is still reported; a clean file stays COMPLETED.
    func testMalformedRowsMakeExportAndDeletePartial() throws {
        for action in ["export", "delete"] {
            let s = try TempSpool()
            let dir = s.base + "/connectors"
            let bad =
                goodCSV
                + "alice@example.com;Alice;again;one field too many\nalice@example.com;\"Alice;unterminated\nalice@example.com;Alice;after the stray quote\n"
            try writeFile(dir + "/data/news.csv", bad)
            try csvConnector(dir)
            try s.initialize()
            try s.drop("r.json", "{\"action\": \"\(action)\", \"email\": \"alice@example.com\"}")
            let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
            XCTAssertEqual(r.status, 1, r.stderr)
            let rec = try XCTUnwrap(try s.records().first)
            XCTAssertEqual(rec.status, .partial, "\(action): \(rec.error ?? "")")
            let err = rec.error ?? ""
            XCTAssertTrue(err.contains("news.csv:5"), err)
            XCTAssertTrue(err.contains("could not be parsed"), err)
            XCTAssertFalse(err.contains("alice@example.com"), "no personal data in the job record")
            let m = try manifest(s, rec.jobID)
            XCTAssertEqual((m["coverage"] as? [String: Any])?["complete"] as? Bool, false)
            // The scan's gaps (the delete's receipt adds those of the second search after erasure).
            let g = try XCTUnwrap((m["connectors"] as? [[String: Any]])?.first?["gaps"] as? [[String: Any]])
            XCTAssertEqual(Set(g.compactMap { $0["line"] as? Int }), [5, 6], "\(g)")
            XCTAssertTrue(
                g.allSatisfy {
                    $0["kind"] as? String == "unparsed_record" && $0["identifier_type"] as? String == "email"
                })
            // The row after the stray quote was read (the reader resumes on the next line).
            XCTAssertEqual((m["connectors"] as? [[String: Any]])?.first?["records"] as? Int, 2)
            let source = try XCTUnwrap((m["connectors"] as? [[String: Any]])?.first?["sources"] as? [[String: Any]])
                .first
            XCTAssertEqual(source?["unparsed_records"] as? Int, 2)
            XCTAssertEqual(source?["unparsed_lines"] as? [Int], [5, 6])
            XCTAssertEqual((source?["sha256"] as? String)?.count, 64)
            if action == "delete" {
                let erasure = try XCTUnwrap(m["erasure"] as? [String: Any])
                XCTAssertEqual(erasure["verified"] as? Bool, false)
                // The unparseable row is still there (dsar never rewrites what it cannot parse), and the
                // receipt says so instead of "remaining: 0, verified".
                let after = try String(contentsOfFile: dir + "/data/news.csv", encoding: .utf8)
                XCTAssertTrue(after.contains("alice@example.com;Alice;again;one field too many"))
                XCTAssertFalse(after.contains("\nalice@example.com;Alice;hello"), "the parsed row was deleted")
                XCTAssertFalse(after.contains("after the stray quote"), "the row after the stray quote was deleted")
                let v = try XCTUnwrap(erasure["verification_gaps"] as? [[String: Any]])
                XCTAssertFalse(v.isEmpty, "the second search still finds her in the bad row")
                XCTAssertEqual(
                    try runCommand(
                        "/usr/bin/ssh-keygen",
                        [
                            "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-manifest",
                            "-s", s.root + "/outbox/\(rec.jobID)/manifest.json.sig",
                        ], stdin: s.text("outbox/\(rec.jobID)/manifest.json")
                    ).status, 0)
            }
        }
    }

    func testCleanCSVStaysCompletedAndOtherPeoplesBadRowsDoNotCount() throws {
        for action in ["export", "delete"] {
            let s = try TempSpool()
            let dir = s.base + "/connectors"
            // A malformed row of someone else: counted in the coverage, but it holds no identifier of hers.
            try writeFile(dir + "/data/news.csv", goodCSV + "dave@example.net;Dave;x;extra\n")
            try csvConnector(dir)
            try s.initialize()
            try s.drop("r.json", "{\"action\": \"\(action)\", \"email\": \"alice@example.com\"}")
            let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
            XCTAssertEqual(r.status, 0, r.stderr)
            let rec = try XCTUnwrap(try s.records().first)
            XCTAssertEqual(rec.status, .completed, rec.error ?? "")
            let m = try manifest(s, rec.jobID)
            XCTAssertEqual((m["coverage"] as? [String: Any])?["complete"] as? Bool, true)
            XCTAssertEqual((m["coverage"] as? [String: Any])?["unparsed_records"] as? Int, 1)
            if action == "delete" {
                let erasure = try XCTUnwrap(m["erasure"] as? [String: Any])
                XCTAssertEqual(erasure["verified"] as? Bool, true)
                XCTAssertEqual(erasure["remaining"] as? Int, 0)
                let after = try String(contentsOfFile: dir + "/data/news.csv", encoding: .utf8)
                XCTAssertFalse(after.contains("\nalice@example.com"))
            }
        }
    }

    /// The subject's address in a column the rules do not search: the raw search finds it, so the
    /// export cannot say it holds everything.
    func testIdentifierInAnUnsearchedColumnIsAGap() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", "email;name;note\nbob@example.org;Bob;forwarded to alice@example.com\n")
        try csvConnector(dir)
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        XCTAssertTrue((rec.error ?? "").contains("news.csv:2"), rec.error ?? "")
        XCTAssertEqual(gaps(try manifest(s, rec.jobID)).first?["kind"] as? String, "unmatched")
        // Searching the column as text accounts for it: COMPLETED.
        let t = try TempSpool()
        try writeFile(
            t.base + "/connectors/data/news.csv",
            "email;name;note\nbob@example.org;Bob;forwarded to alice@example.com\n")
        try csvConnector(t.base + "/connectors", extra: "text: [ note ]\n")
        try t.initialize()
        try t.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try t.dsar(["run", "--settle", "0", "--connectors", t.base + "/connectors"]).status, 0)
        XCTAssertEqual(try t.records().first?.status, .completed)
    }

    // MARK: - Columns, types and commands that do not exist

    func testMissingColumnsAreConfigErrorsWithDidYouMean() throws {
        let cases: [(columns: String, extra: String, expect: [String])] = [
            ("{ e_mail: email }", "", ["columns", "no column \"e_mail\" (did you mean \"email\"?)"]),
            ("{ Email: email }", "", ["no column \"Email\" (did you mean \"email\"?)", "case-sensitive"]),
            ("{ email: email }", "text: [ notes ]\n", ["text", "no column \"notes\" (did you mean \"note\"?)"]),
            ("{ email: email }", "redact: [ nmae ]\n", ["redact", "no column \"nmae\" (did you mean \"name\"?)"]),
        ]
        for c in cases {
            let s = try TempSpool()
            let dir = s.base + "/connectors"
            try writeFile(dir + "/data/news.csv", goodCSV)
            try csvConnector(
                dir, columns: c.columns, extra: c.extra, erase: c.extra.hasPrefix("redact") ? "redact" : "delete")
            try s.initialize()
            let check = try s.dsar(["connectors", "check", "--connectors", dir])
            XCTAssertEqual(check.status, 78, check.stdout)
            for e in c.expect { XCTAssertTrue(check.stderr.contains(e), "\(c): \(check.stderr)") }
            XCTAssertTrue(check.stderr.contains("news.yaml:"), check.stderr)
            // dsar run makes the same check before claiming anything, for an export as for a delete.
            try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com"}"#)
            try s.drop("e.json", #"{"action": "export", "email": "alice@example.com"}"#)
            let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
            XCTAssertEqual(r.status, 78, r.stderr)
            for e in c.expect { XCTAssertTrue(r.stderr.contains(e), r.stderr) }
            XCTAssertEqual(s.list("inbox").sorted(), ["d.json", "e.json"])
            XCTAssertEqual(s.recordNames(), [])
            XCTAssertEqual(try String(contentsOfFile: dir + "/data/news.csv", encoding: .utf8), goodCSV)
        }
    }

    /// Every problem of every file in one pass: types, empty commands and field names, recipients.
    func testEveryProblemReportedInOnePass() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", goodCSV)
        try writeFile(dir + "/data/app.jsonl", "{\"a\":1}\n")
        try csvConnector(dir, columns: "{ email: emial, card: loyalty_card }")
        try writeFile(dir + "/p1.yaml", "name: p1\ntype: exec\ncommand: []\n")
        try writeFile(dir + "/p2.yaml", "name: p2\ntype: exec\ncommand: \"\"\n")
        try writeFile(dir + "/p3.yaml", "name: p3\ntype: exec\ncommand: [ \"\" ]\n")
        try writeFile(
            dir + "/app.yaml", "name: app\ntype: log\nformat: jsonl\npaths: [ data/app.jsonl ]\nfields: { '': email }\n"
        )
        try writeFile(dir + "/nothing.yaml", "name: nothing\ntype: csv\npaths: []\ncolumns: { email: email }\n")
        try writeFile(
            dir + "/noname.yaml",
            "name: ''\ntype: csv\npaths: [ data/news.csv ]\ndelimiter: \";\"\ncolumns: { email: email }\n")
        try s.initialize()
        // No recipients, and a signing key that is not there.
        try writeFile(
            s.root + "/config.yaml", "require_signed_requests: false\nsigning_key: keys/no_such_key\n", mode: 0o640)
        let c = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(c.status, 78)
        let expected = [
            "news.yaml:5: columns.email: \"emial\" is not a known identifier type (did you mean \"email\"?)",
            "\"loyalty_card\" is not a known identifier type", "identifier_types: [ loyalty_card ]",
            "p1.yaml:3: command:", "p2.yaml:3: command: is empty", "p3.yaml:3: command:",
            "app.yaml:5: fields.: a column or field name cannot be empty",
            "nothing.yaml:3: paths: lists no file", "noname.yaml:1: name: is empty", "config.yaml:",
            "recipients: no recipients", "signing_key: the signing key",
        ]
        for e in expected { XCTAssertTrue(c.stderr.contains(e), "missing \(e) in:\n\(c.stderr)") }
        try s.drop("r.json", #"{"action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 78)
        for e in expected { XCTAssertTrue(r.stderr.contains(e), "run: missing \(e)") }
        XCTAssertEqual(s.list("inbox"), ["r.json"])
    }

    /// A custom type declared in config.yaml is accepted by connectors and requests; an undeclared
    /// one in a request is rejected with a reason instead of searching for nothing.
    func testDeclaredCustomTypesAndUnknownRequestTypes() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", "email;card\nalice@example.com;LC-4711\n")
        try csvConnector(dir, columns: "{ email: email, card: loyalty_card }")
        try s.initialize(extraConfig: "identifier_types: [ loyalty_card ]\n")
        XCTAssertEqual(try s.dsar(["connectors", "check", "--connectors", dir]).status, 0)
        try s.drop("a.json", #"{"action": "export", "subject": {"loyalty_card": "LC-4711"}}"#)
        try s.drop("b.json", #"{"action": "export", "subject": {"emial": "alice@example.com"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(try s.records().map(\.status), [.completed])
        XCTAssertTrue(
            s.reason("b.json").contains("identifier type \"emial\" is not known (did you mean \"email\"?)"),
            s.reason("b.json"))
    }

    /// A connector whose globs match no file tonight (the export was not delivered): the run goes on,
    /// and the job says that source was not searched instead of certifying it.
    func testSourcesThatAreNotThereMakeTheJobPartial() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", goodCSV)
        try csvConnector(dir)
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: sqldump\npaths: [ data/shop-*.sql ]\ntables:\n  customers: { match: { email: email } }\n"
        )
        try s.initialize()
        XCTAssertEqual(
            try s.dsar(["connectors", "check", "--connectors", dir]).status, 78,
            "connectors check reports the empty glob")
        try s.drop("r.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        XCTAssertTrue((rec.error ?? "").contains("shop: no file matches its paths"), rec.error ?? "")
        let m = try manifest(s, rec.jobID)
        XCTAssertEqual((m["erasure"] as? [String: Any])?["verified"] as? Bool, false)
        XCTAssertTrue(gaps(m).contains { $0["kind"] as? String == "no_sources" })
        XCTAssertFalse(
            try String(contentsOfFile: dir + "/data/news.csv", encoding: .utf8).contains("\nalice@"),
            "the sources that are there are erased")
    }
}
