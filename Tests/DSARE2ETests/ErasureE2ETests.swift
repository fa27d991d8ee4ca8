import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Erasure through the real binary on CSV, plain, gzip and JSON-lines logs, and exec plugins.
final class ErasureE2ETests: XCTestCase {

    let csv =
        "email;name;note\r\nalice@example.com;Alice;\"likes \"\"quotes\"\"; and semicolons\"\r\nbob@example.org;Bob;\"forwarded by alice@example.com\"\r\nmalice@example.com;Mal;near miss\r\n"
    let log = """
        203.0.113.7 GET /account?user=1042 200
        198.51.100.23 GET /products/10420 200
        203.0.113.7 POST /unsubscribe?email=alice%40example.com 302
        192.0.2.44 GET /unsubscribe?email=malice%40example.com 302

        """
    let jsonl = """
        {"user_id":1042,"msg":"login by alice@example.com","n":1}
        {"user_id":10420,"msg":"login","n":2}
        {"user_id":"1042","msg":"logout","n":3}

        """

    func setUp(_ s: TempSpool, logErase: String = "redact") throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/news.csv", csv)
        try writeFile(dir + "/data/web.log", log)
        try writeFile(dir + "/data/old.log", log)
        XCTAssertEqual(try runCommand("/bin/gzip", ["-f", dir + "/data/old.log"]).status, 0)
        try writeFile(dir + "/data/app.jsonl", jsonl)
        try writeFile(
            dir + "/news.yaml",
            "name: news\ntype: csv\npaths: [ data/news.csv ]\ndelimiter: \";\"\ncolumns: { email: email }\ntext: [ note ]\nerase: delete\n"
        )
        try writeFile(
            dir + "/web.yaml",
            "name: web\ntype: log\npaths: [ data/web.log, data/old.log.gz ]\nmatch: [ email, user_id ]\nerase: \(logErase)\n"
        )
        try writeFile(
            dir + "/app.yaml",
            "name: app\ntype: log\nformat: jsonl\npaths: [ data/app.jsonl ]\nfields: { user_id: user_id }\nerase: redact\n"
        )
        try s.initialize()
        return dir
    }

    func lines(_ s: String) -> [String] { s.components(separatedBy: "\n") }

    func testDeleteRedactsAndDropsAndVerifies() throws {
        let s = try TempSpool()
        let dir = try setUp(s)
        try s.drop(
            "d.json",
            #"{"request_id": "D-1", "action": "delete", "subject": {"email": "alice@example.com", "user_id": "1042"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        // CSV: her row is gone; Bob's row that mentions her keeps its place, only the note is overwritten;
        // untouched rows byte-identical, quoting and CRLF kept.
        let news = try String(contentsOfFile: dir + "/data/news.csv", encoding: .utf8)
        XCTAssertEqual(
            news, "email;name;note\r\nbob@example.org;Bob;\"[REDACTED]\"\r\nmalice@example.com;Mal;near miss\r\n")
        // Plain log: tokens replaced, the rest of each line kept; near misses untouched.
        let web = try String(contentsOfFile: dir + "/data/web.log", encoding: .utf8)
        let original = lines(log)
        XCTAssertEqual(
            lines(web),
            [
                "203.0.113.7 GET /account?user=[REDACTED] 200", original[1],
                "203.0.113.7 POST /unsubscribe?email=[REDACTED] 302", original[3], "",
            ])
        // gzip rotation rewritten as gzip with the same content as the plain one.
        let gz = try runCommand("/bin/gzip", ["-dc", dir + "/data/old.log.gz"])
        XCTAssertEqual(gz.status, 0)
        XCTAssertEqual(gz.stdout, web)
        // JSON lines stay valid JSON; a bare number becomes a string placeholder.
        let app = lines(try String(contentsOfFile: dir + "/data/app.jsonl", encoding: .utf8)).filter { !$0.isEmpty }
        XCTAssertEqual(app.count, 3)
        for l in app { XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(l.utf8)), l) }
        XCTAssertEqual(app[0], #"{"user_id":"[REDACTED]","msg":"login by [REDACTED]","n":1}"#)
        XCTAssertEqual(app[1], lines(jsonl)[1])
        XCTAssertEqual(app[2], #"{"user_id":"[REDACTED]","msg":"logout","n":3}"#)
        // The signed receipt: 0 remaining, before/after hashes, verified by ssh-keygen.
        let entry = s.root + "/outbox/" + rec.jobID
        let manifest =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: entry + "/manifest.json")))
            as! [String: Any]
        let erasure = try XCTUnwrap(manifest["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["remaining"] as? Int, 0)
        XCTAssertEqual(manifest["action"] as? String, "delete")
        XCTAssertTrue(manifest["bundle"] is NSNull)
        let sources = try XCTUnwrap(erasure["sources"] as? [[String: Any]])
        let newsSource = try XCTUnwrap(sources.first { $0["connector"] as? String == "news" })
        XCTAssertEqual(newsSource["deleted"] as? Int, 1)
        XCTAssertEqual(newsSource["redacted"] as? Int, 1)
        XCTAssertEqual(newsSource["sha256_after"] as? String, try AtomicRewrite.hash(path: dir + "/data/news.csv"))
        let v = try runCommand(
            "/usr/bin/ssh-keygen",
            [
                "-Y", "verify", "-f", s.root + "/keys/allowed_signers", "-I", "dsar", "-n", "dsar-manifest", "-s",
                entry + "/manifest.json.sig",
            ], stdin: String(contentsOfFile: entry + "/manifest.json", encoding: .utf8))
        XCTAssertEqual(v.status, 0, v.stderr)
        // Each changed file is a journal entry; the journal verifies.
        let j = try s.dsar(["audit", "verify"])
        XCTAssertEqual(j.status, 0, j.stderr)
        XCTAssertEqual(
            try Journal(layout: s.layout, signer: nil).entries().filter { $0.entry.type == "file.erased" }.count, 4,
            "news.csv, web.log, old.log.gz, app.jsonl")
        // Owner and mode kept; no temp file or backup left next to the sources.
        XCTAssertEqual(try FileSystem.status(dir + "/data/news.csv")!.mode & 0o777, 0o644)
        XCTAssertEqual(try FileSystem.list(dir + "/data").filter { $0.hasPrefix(".") }, [])
    }

    func testDropLineAndDryRunChangesNothing() throws {
        let s = try TempSpool()
        let dir = try setUp(s, logErase: "drop_line")
        let before = try ["news.csv", "web.log", "old.log.gz", "app.jsonl"].map {
            try AtomicRewrite.hash(path: dir + "/data/" + $0)
        }
        try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com", "user_id": "1042", "dry_run": true}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let after = try ["news.csv", "web.log", "old.log.gz", "app.jsonl"].map {
            try AtomicRewrite.hash(path: dir + "/data/" + $0)
        }
        XCTAssertEqual(before, after, "a dry run changes nothing")
        let rec = try XCTUnwrap(try s.records().first)
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")))
            as! [String: Any]
        XCTAssertEqual((manifest["erasure"] as? [String: Any])?["dry_run"] as? Bool, true)
        // Now for real, dropping log lines.
        try s.drop("d2.json", #"{"action": "delete", "email": "alice@example.com", "user_id": "1042"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let original = lines(log)
        XCTAssertEqual(
            lines(try String(contentsOfFile: dir + "/data/web.log", encoding: .utf8)), [original[1], original[3], ""])
    }

    func testExportThenDeleteInOneBatchRunInReceivedOrder() throws {
        let s = try TempSpool()
        let dir = try setUp(s)
        // With her user id too: the JSON-lines log names her e-mail only in a free-text field, found
        // through the user_id field of the same line (an e-mail alone there is a coverage gap).
        try s.drop(
            "1-export.json",
            #"{"request_id": "E", "action": "export", "email": "alice@example.com", "user_id": "1042"}"#)
        age(s.root + "/inbox/1-export.json", secondsAgo: 10)
        try s.drop(
            "2-delete.json",
            #"{"request_id": "D", "action": "delete", "email": "alice@example.com", "user_id": "1042"}"#)
        age(s.root + "/inbox/2-delete.json", secondsAgo: 5)
        try s.drop(
            "3-export.json",
            #"{"request_id": "E2", "action": "export", "email": "alice@example.com", "user_id": "1042"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let recs = try s.records()
        func records(_ rid: String) -> Int {
            recs.first { $0.requestID == rid }!.connectors.reduce(0) { $0 + $1.records }
        }
        XCTAssertGreaterThan(records("E"), 0, "the export received first saw the data")
        XCTAssertEqual(
            records("E2"), 0,
            "the export received after the delete finds nothing: \(recs.first { $0.requestID == "E2" }!.connectors.map { "\($0.name)=\($0.records)" })"
        )
        XCTAssertEqual(
            recs.first { $0.requestID == "D" }?.status, .completed, recs.first { $0.requestID == "D" }?.error ?? "")
    }

    let dump = """
        CREATE TABLE public.customers (
            id integer NOT NULL,
            email text NOT NULL,
            name text
        );
        CREATE TABLE public.orders (
            id integer NOT NULL,
            customer_id integer NOT NULL,
            total numeric(10,2)
        );
        COPY public.customers (id, email, name) FROM stdin;
        1042\talice@example.com\tAlice
        1043\tbob@example.org\tBob
        10420\tmalice@example.com\tMal
        \\.

        COPY public.orders (id, customer_id, total) FROM stdin;
        1\t1042\t19.99
        2\t1043\t5.00
        3\t1042\t7.50
        \\.

        """

    func sqlSetup(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/shop.sql", dump)
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\ntables:\n  customers: { match: { email: email, id: user_id }, erase: delete }\n  orders: { match: { customer_id: user_id }, erase: retain, reason: \"invoices, tax law\" }\n"
        )
        try s.initialize()
        return dir
    }

    func testRetainedTablesAreUntouchedAndListedInTheReceipt() throws {
        let s = try TempSpool()
        let dir = try sqlSetup(s)
        try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let after = try String(contentsOfFile: dir + "/data/shop.sql", encoding: .utf8)
        XCTAssertEqual(
            after, dump.replacingOccurrences(of: "1042\talice@example.com\tAlice\n", with: ""),
            "only her customer row is gone; orders kept")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let m =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json")))
            as! [String: Any]
        let e = try XCTUnwrap(m["erasure"] as? [String: Any])
        XCTAssertEqual(e["remaining"] as? Int, 0, "retained records do not count as remaining")
        XCTAssertEqual(e["retained"] as? Int, 2)
        let kept = try XCTUnwrap((e["retained_records"] as? [[String: Any]])?.first)
        XCTAssertEqual(kept["reason"] as? String, "invoices, tax law")
        XCTAssertEqual(kept["records"] as? Int, 2)
    }

    /// kill -9 at every point of the rewrite, looped: each file is wholly old or wholly new and
    /// parses fully; the next run finishes the erasure.
    func testKill9DuringARewriteLeavesEachFileOldOrNew() throws {
        let newDump = dump.replacingOccurrences(of: "1042\talice@example.com\tAlice\n", with: "")
        for point in ["erase.synced", "erase.renamed", "job.scanned", "journal.appended:40"] {
            let s = try TempSpool()
            let dir = try sqlSetup(s)
            try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com"}"#)
            let crashed = try s.dsar(["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": point])
            XCTAssertTrue(crashed.signaled || crashed.status == 0, point)
            let mid = try String(contentsOfFile: dir + "/data/shop.sql", encoding: .utf8)
            XCTAssertTrue(mid == dump || mid == newDump, "\(point): the dump is neither old nor new")
            var reader = try SQLDumpReader(path: dir + "/data/shop.sql")
            var rows = 0
            try reader.forEachRow { _ in rows += 1 }
            XCTAssertEqual(rows, mid == dump ? 6 : 5, point)
            let again = try s.dsar(["run", "--settle", "0", "--connectors", dir])
            XCTAssertEqual(again.status, 0, "\(point): \(again.stderr)")
            XCTAssertEqual(try String(contentsOfFile: dir + "/data/shop.sql", encoding: .utf8), newDump, point)
            XCTAssertEqual(try s.records().first?.status, .completed, point)
            XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0, point)
            XCTAssertEqual(
                try FileSystem.list(dir + "/data").filter { $0.hasPrefix(".") }, [], "\(point): a temp file was left")
        }
    }

    func testSeveralDeletesTouchingOneFileAreAppliedInOneRewrite() throws {
        let s = try TempSpool()
        let dir = try sqlSetup(s)
        try s.drop("a.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        try s.drop("b.json", #"{"action": "delete", "email": "bob@example.org"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let erased = try Journal(layout: s.layout, signer: nil).entries().filter {
            $0.entry.type == "file.erased" && "\($0.entry.details)".contains("customers")
        }
        XCTAssertEqual(erased.count, 2, "one entry per job")
        // Both jobs saw the same single rewrite: the same before and after hashes.
        XCTAssertEqual(
            Set(erased.map { "\($0.entry.details["sha256_before"]!)/\($0.entry.details["sha256_after"]!)" }).count, 1)
        let after = try String(contentsOfFile: dir + "/data/shop.sql", encoding: .utf8)
        XCTAssertFalse(after.contains("\talice@example.com\t"))
        XCTAssertFalse(after.contains("bob@example.org"), after)
        XCTAssertTrue(after.contains("malice@example.com"))
    }

    /// A retained table is journaled as file.retained (typed strategy and table), never file.erased;
    /// the erased table of the same dump is file.erased. (It was once "orders: retain" as a string
    /// and so journaled as file.erased.)
    func testARetainedTableIsJournaledAsFileRetained() throws {
        let s = try TempSpool()
        let dir = try sqlSetup(s)
        try s.drop("d.json", #"{"action": "delete", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let entries = try Journal(layout: s.layout, signer: nil).entries().map(\.entry)
        let retained = entries.filter { $0.type == "file.retained" }
        XCTAssertEqual(retained.count, 1, "\(entries.map(\.type))")
        XCTAssertEqual(retained.first?.details["table"], .string("orders"))
        XCTAssertEqual(retained.first?.details["strategy"], .string("retain"))
        XCTAssertEqual(retained.first?.details["retained"], .number("2"))
        XCTAssertEqual(retained.first?.details["deleted"], .number("0"))
        let erased = entries.filter { $0.type == "file.erased" }
        XCTAssertEqual(erased.map { $0.details["table"] }, [.string("customers")])
        XCTAssertEqual(erased.first?.details["strategy"], .string("delete"))
        XCTAssertEqual(erased.first?.details["deleted"], .number("1"))
        // Every entry fits its type's definition (what `dsar audit verify` checks).
        for e in entries {
            let type = try XCTUnwrap(AuditEventType(rawValue: e.type), e.type)
            XCTAssertNil(type.problem(with: e.details), e.type)
        }
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }
}
