import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Red-team findings against "receipts never lie" (issue 12): each test is a way a careless
/// operator or an attacker got dsar to sign a false statement (or leak personal data), through the
/// real binary on real files. Fixed defects assert the honest outcome; known, unfixed ones skip
/// with the reason.
final class RedTeamE2ETests: XCTestCase {

    func manifest(_ s: TempSpool, _ job: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(job)/manifest.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func run(_ s: TempSpool, _ dir: String) throws -> CommandResult {
        try s.dsar(["run", "--settle", "0", "--connectors", dir])
    }

    /// Every file of the spool that a person without the bundle key can read (journal, job
    /// records, manifests, reasons): none may hold `value`.
    func assertNoPersonalData(
        _ s: TempSpool, _ value: String, also: [String] = [], file: StaticString = #filePath, line: UInt = #line
    ) {
        // The request and its identity set are meant to hold the identifiers (active/, failed/).
        for rel in s.allFiles()
        where !rel.hasSuffix(".age") && !rel.hasPrefix("keys/") && !rel.hasPrefix("failed/")
            && !rel.hasPrefix("active/")
        {
            XCTAssertFalse(
                s.text(rel).lowercased().contains(value.lowercased()), "\(rel) holds \(value)", file: file, line: line)
        }
        for text in also {
            XCTAssertFalse(
                text.lowercased().contains(value.lowercased()), "output holds \(value): \(text)", file: file, line: line
            )
        }
    }

    // MARK: - Escaped control characters before an identifier (fixed)

    /// A pg_dump COPY row writes a line break inside a value as `\n`. Before the fix the raw search
    /// read `\nalice@example.com` as the token `nalice@example.com`, so the subject's address in an
    /// unconfigured table was invisible: the delete deleted her customer row and signed
    /// `verified: true, remaining: 0` with her address still in `notes`. Now the export and the
    /// delete are PARTIAL with the line, and a literal backslash (`\\n`) is still not a match.
    func testCopyEscapeBeforeAnAddressInAnUnconfiguredTableIsNotVerified() throws {
        for action in ["export", "delete"] {
            let s = try TempSpool()
            let dir = s.base + "/connectors"
            let dump = """
                CREATE TABLE public.customers (
                    id integer NOT NULL,
                    email text
                );
                CREATE TABLE public.notes (
                    id integer NOT NULL,
                    body text
                );
                COPY public.customers (id, email) FROM stdin;
                1042\talice@example.com
                7\tbob@example.org
                \\.
                COPY public.notes (id, body) FROM stdin;
                1\tcalled back\\nalice@example.com about order
                2\tliteral \\\\nalice@example.com is someone else
                \\.
                --
                -- PostgreSQL database dump complete
                --

                """
            try writeFile(dir + "/data/shop.sql", dump)
            try writeFile(
                dir + "/shop.yaml",
                "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\ntables:\n  customers: { match: { email: email, id: user_id }, erase: delete }\n"
            )
            try s.initialize()
            try s.drop("r.json", "{\"action\": \"\(action)\", \"email\": \"alice@example.com\"}")
            let r = try run(s, dir)
            XCTAssertEqual(r.status, 1, r.stderr)
            let rec = try XCTUnwrap(try s.records().first)
            XCTAssertEqual(rec.status, .partial, "\(action): \(rec.error ?? "")")
            XCTAssertTrue(rec.error?.contains("shop.sql:14") ?? false, rec.error ?? "")
            XCTAssertFalse(
                rec.error?.contains("shop.sql:15") ?? true, "`\\\\n` is a backslash and `n`: \(rec.error ?? "")")
            let m = try manifest(s, rec.jobID)
            XCTAssertEqual((m["coverage"] as? [String: Any])?["complete"] as? Bool, false)
            if action == "delete" {
                let erasure = try XCTUnwrap(m["erasure"] as? [String: Any])
                XCTAssertEqual(erasure["verified"] as? Bool, false, "her address is still in notes")
                let after = try String(contentsOfFile: dir + "/data/shop.sql", encoding: .utf8)
                XCTAssertTrue(after.contains("called back\\nalice@example.com"), "the oracle: the data is still there")
                XCTAssertFalse(after.contains("1042\talice@example.com"), "the configured row was deleted")
            }
            assertNoPersonalData(s, "alice@example.com", also: [r.stdout, r.stderr])
        }
    }

    /// The same in JSON lines (`"note":"x\nalice@…"` in a field the rules do not name) and in a
    /// text log (`?note=hi\nalice@…`): the JSON-lines delete is not verified; the text log's scan
    /// finds the address after the escape and redacts exactly it, keeping `\n`.
    func testJSONAndLogEscapesBeforeAnIdentifier() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/app.log",
            "{\"email\":\"alice@example.com\",\"n\":2}\n{\"note\":\"x\\nalice@example.com\"}\n{\"note\":\"y\\tbob@example.org\"}\n"
        )
        try writeFile(
            dir + "/app.yaml",
            "name: app\ntype: log\nformat: jsonl\npaths: [ data/app.log ]\nfields: { email: email }\nerase: redact\n")
        try writeFile(
            dir + "/data/web.log", "GET /x?note=hi\\nalice@example.com 200\nGET /y?note=\\t+44 20 7946 0000 200\n")
        try writeFile(
            dir + "/web.yaml",
            "name: web\ntype: log\nformat: text\npaths: [ data/web.log ]\nmatch: [ email, phone ]\nerase: redact\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        XCTAssertEqual(try run(s, dir).status, 1)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial, rec.error ?? "")
        XCTAssertTrue(rec.error?.contains("app.log:2") ?? false, rec.error ?? "")
        let erasure = try XCTUnwrap(try manifest(s, rec.jobID)["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["verified"] as? Bool, false)
        let web = try String(contentsOfFile: dir + "/data/web.log", encoding: .utf8)
        XCTAssertEqual(
            web, "GET /x?note=hi\\n[REDACTED] 200\nGET /y?note=\\t+44 20 7946 0000 200\n",
            "only her address, after the escape")
        let app = try String(contentsOfFile: dir + "/data/app.log", encoding: .utf8)
        XCTAssertTrue(app.hasPrefix("{\"email\":\"[REDACTED]\""), app)

        // A phone after `\t` in a text log is found too, also when a number follows it after a
        // space (the status code): it used to be read as one long number and missed.
        let s2 = try TempSpool()
        try s2.initialize()
        try s2.drop("p.json", #"{"action": "export", "phone": "+44 20 7946 0000"}"#)
        XCTAssertEqual(try run(s2, dir).status, 0)
        let r2 = try XCTUnwrap(try s2.records().first)
        XCTAssertEqual(r2.status, .completed, r2.error ?? "")
        let web2 = try XCTUnwrap(
            (try manifest(s2, r2.jobID)["connectors"] as? [[String: Any]])?.first { $0["name"] as? String == "web" })
        XCTAssertEqual(web2["records"] as? Int, 1, "\(web2)")
    }

    // MARK: - Personal data in operator output (fixed)

    /// A header-less CSV with the default `header: true`: the first data row is read as the
    /// header, and "it has: alice@example.com, Alice Smith, 10420001" went to `connectors check`,
    /// `dsar run`'s log (cron's /var/log/dsar.log) and, at run time, job records and manifests. Now
    /// the message says the row looks like data and what to set; a real header is still listed.
    func testHeaderlessCSVIsNotEchoedIntoLogs() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", "alice@example.com,Alice Smith,10420001\nbob@example.org,Bob,7\n")
        try writeFile(
            dir + "/news.yaml", "name: news\ntype: csv\npaths: [ data/news.csv ]\ncolumns: { email: email }\n")
        try writeFile(dir + "/data/crm.csv", "Email,name\ncarol@example.net,Carol\n")
        try writeFile(dir + "/crm.yaml", "name: crm\ntype: csv\npaths: [ data/crm.csv ]\ncolumns: { email: email }\n")
        try s.initialize()
        let c = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(c.status, 78, c.stdout + c.stderr)
        XCTAssertTrue((c.stdout + c.stderr).contains("news.yaml:4: columns: "), c.stdout + c.stderr)
        XCTAssertTrue((c.stdout + c.stderr).contains("header: false"), c.stdout + c.stderr)
        XCTAssertTrue(
            (c.stdout + c.stderr).contains("did you mean \"Email\""), "a real header still gets its hint: \(c.stderr)")
        try s.drop("r.json", #"{"action": "export", "email": "carol@example.net"}"#)
        let r = try run(s, dir)
        XCTAssertEqual(r.status, 78, r.stderr)
        for v in ["alice@example.com", "Alice Smith", "10420001"] {
            assertNoPersonalData(s, v, also: [c.stdout, c.stderr, r.stdout, r.stderr])
        }
    }

    // MARK: - dsar verify (fixed)

    /// Someone with write access to the outbox copies Carol's signed export into Alice's
    /// `outbox/<alice-job>/`: every signature and hash is valid, and `dsar verify` said
    /// "OK: outbox/<alice-job> verified" — the team would send Carol's data to Alice. Now the entry
    /// of a job id must hold that job's manifest, and the report names the job.
    func testVerifyRefusesAnotherJobsEntryUnderAJobsDirectory() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", "email,name\nalice@example.com,Alice\ncarol@example.net,Carol\n")
        try writeFile(
            dir + "/news.yaml", "name: news\ntype: csv\npaths: [ data/news.csv ]\ncolumns: { email: email }\n")
        try s.initialize()
        try s.drop("a.json", #"{"request_id": "A", "action": "export", "email": "alice@example.com"}"#)
        try s.drop("c.json", #"{"request_id": "C", "action": "export", "email": "carol@example.net"}"#)
        XCTAssertEqual(try run(s, dir).status, 0)
        let alice = try XCTUnwrap(try s.record(requestID: "A")).jobID
        let carol = try XCTUnwrap(try s.record(requestID: "C")).jobID
        let key = s.teamKeys + "/age.key"
        let ok = try s.dsar(["verify", "-i", key, s.root + "/outbox/\(carol)"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("job: \(carol) (export, request C)"), ok.stdout)
        for f in ["bundle.zip.age", "manifest.json", "manifest.json.sig"] {
            let from = s.root + "/outbox/\(carol)/" + f
            let to = s.root + "/outbox/\(alice)/" + f
            try FileManager.default.removeItem(atPath: to)
            try FileManager.default.copyItem(atPath: from, toPath: to)
        }
        let swapped = try s.dsar(["verify", "-i", key, s.root + "/outbox/\(alice)"])
        XCTAssertEqual(swapped.status, 1, swapped.stdout)
        XCTAssertFalse(swapped.stdout.contains("OK:"), swapped.stdout)
        XCTAssertTrue(swapped.stderr.contains("holds the manifest of job \(carol)"), swapped.stderr)
    }
}
