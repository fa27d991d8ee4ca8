import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// GDPR Art. 15(4) end to end through the real `dsar` binary: a record of someone else that
/// mentions the subject in free text exports only that text, with other people's e-mail
/// addresses, phone numbers and IPs masked (also in the subject's log lines); the bundle is opened
/// with the real `age` and `unzip`, the counts are read from the signed manifest.
final class RightsOfOthersE2ETests: XCTestCase {
    static let tickets = """
        id,author_email,author_phone,body,internal_note
        1,alice@example.com,+49 170 1234567,My order 0123456789 of 2026-11-02 is late,paid 19.99 EUR
        2,bob@example.org,+44 20 7946 0958,"Customer alice@example.com called at 10:30 about carol@example.net's parcel; reach me at +44 20 7946 0958",Bob says: escalate to legal
        3,dave@example.net,0151 9876543,unrelated,nothing

        """

    static let webLog = """
        2026-11-02T10:00:00Z login alice@example.com from 198.51.100.23 referred by bob@example.org via 203.0.113.9 (v1.2.3)
        2026-11-02T10:05:00Z login bob@example.org from 203.0.113.9

        """

    /// Text that must appear nowhere in the bundle: Bob's and Carol's data.
    static let othersData = [
        "bob@example.org", "carol@example.net", "7946", "escalate to legal", "203.0.113.9", "dave@example.net",
        "carol%40", "o'dave", "dave@",
    ]

    func tool(_ name: String) throws -> String {
        guard let p = which(name) else { throw XCTSkip("this test uses the real `\(name)` as an oracle") }
        return p
    }

    func testAMentionExportsOnlyItsTextMaskedAndTheManifestCountsIt() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/tickets.csv", Self.tickets)
        try writeFile(dir + "/data/web.log", Self.webLog)
        try writeFile(
            dir + "/tickets.yaml",
            "name: tickets\ntype: csv\npaths: [ data/tickets.csv ]\ncolumns: { author_email: email }\ntext: [ body ]\n")
        try writeFile(dir + "/web.yaml", "name: web\ntype: log\npaths: [ data/web.log ]\nmatch: [ email, ip ]\n")
        try writeFile(
            dir + "/data/app.jsonl",
            #"{"user": "alice@example.com", "msg": "shared with bob@example.org at 2026-11-02 10:30", "ip": "203.0.113.9", "n": 5, "peer": {"ref": "/?cc=carol%40example.net", "to": ["o'dave@example.net", {"by": "carol@example.net"}]}}"#
                + "\n" + #"{"user": "bob@example.org", "msg": "hi"}"# + "\n")
        try writeFile(
            dir + "/app.yaml",
            "name: app\ntype: log\nformat: jsonl\npaths: [ data/app.jsonl ]\nfields: { user: email }\n")
        try s.initialize()
        try s.drop(
            "req.json",
            #"{"request_id": "R-1", "action": "export", "email": "alice@example.com", "ip": "198.51.100.23"}"#)
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let rec = try XCTUnwrap(try s.records().first { $0.requestID == "R-1" })
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        XCTAssertEqual(rec.connectors.first { $0.name == "tickets" }?.records, 2)
        XCTAssertEqual(rec.connectors.first { $0.name == "web" }?.records, 1)
        // The job record says so too (counts only, no personal data).
        XCTAssertEqual(rec.connectors.first { $0.name == "tickets" }?.details?["mentions"], "1")
        XCTAssertEqual(rec.connectors.first { $0.name == "tickets" }?.details?["masked"], "2")
        XCTAssertEqual(rec.connectors.first { $0.name == "web" }?.details?["masked"], "2")
        XCTAssertNil(rec.connectors.first { $0.name == "web" }?.details?["mentions"])
        let entry = s.root + "/outbox/" + rec.jobID

        // The signed manifest counts the mention and the masks (and the signature still holds).
        let manifest = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try FileSystem.readFile(entry + "/manifest.json")))
                as? [String: Any])
        let connectors = try XCTUnwrap(manifest["connectors"] as? [[String: Any]])
        func count(_ name: String, _ key: String) -> Int? {
            (connectors.first { $0["name"] as? String == name }?[key] as? NSNumber)?.intValue
        }
        XCTAssertEqual(count("tickets", "records"), 2)
        XCTAssertEqual(count("tickets", "mentions"), 1)
        XCTAssertEqual(count("tickets", "masked"), 2, "carol's e-mail and bob's phone in the body")
        XCTAssertEqual(count("web", "mentions"), 0)
        XCTAssertEqual(count("web", "masked"), 2, "bob's e-mail and IP in alice's log line")
        XCTAssertEqual(count("app", "records"), 1)
        XCTAssertEqual(
            count("app", "masked"), 5, "bob's e-mail and IP, and carol's and dave's in the nested peer object")
        let verify = try s.dsar(["verify", "-i", s.teamKeys + "/age.key", entry])
        XCTAssertEqual(
            verify.status, 0, "dsar verify (every file against the manifest): \(verify.stdout)\(verify.stderr)")

        // Open the bundle with the real age and unzip.
        let zip = s.base + "/bundle.zip"
        let age = try runCommand(
            try tool("age"), ["-d", "-i", s.teamKeys + "/age.key", "-o", zip, entry + "/bundle.zip.age"])
        XCTAssertEqual(age.status, 0, age.stderr)
        let out = s.base + "/unzipped"
        let unzip = try runCommand(try tool("unzip"), ["-q", zip, "-d", out])
        XCTAssertEqual(unzip.status, 0, unzip.stdout + unzip.stderr)
        func read(_ name: String) throws -> String {
            String(decoding: try FileSystem.readFile(out + "/" + name), as: UTF8.self)
        }

        // tickets.json: Alice's own ticket whole; Bob's ticket only its body, masked.
        let tickets = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try read("data/tickets/tickets.json").utf8)) as? [[String: Any]]
        )
        XCTAssertEqual(tickets.count, 2)
        let own = try XCTUnwrap(tickets.first { ($0["record"] as? [String: Any])?["id"] as? String == "1" })
        XCTAssertEqual(
            Set((own["record"] as? [String: Any] ?? [:]).keys),
            ["id", "author_email", "author_phone", "body", "internal_note"])
        XCTAssertEqual(
            (own["record"] as? [String: Any])?["body"] as? String, "My order 0123456789 of 2026-11-02 is late")
        XCTAssertNil(own["mention"])
        XCTAssertNil(own["masked"])
        let mention = try XCTUnwrap(tickets.first { $0["mention"] as? Bool == true })
        XCTAssertEqual((mention["location"] as? [String: Any])?["line"] as? Int, 3)
        XCTAssertEqual(mention["matched_on"] as? [String], ["email in body"])
        XCTAssertEqual((mention["masked"] as? NSNumber)?.intValue, 2)
        let body = try XCTUnwrap(mention["record"] as? [String: Any])
        XCTAssertEqual(Array(body.keys), ["body"], "no other column of Bob's ticket")
        XCTAssertEqual(
            body["body"] as? String,
            "Customer alice@example.com called at 10:30 about [e-mail of another person]'s parcel; reach me at [phone number of another person]"
        )

        // tickets.csv: only Alice's own row, as it is in the source.
        XCTAssertEqual(
            try read("data/tickets/tickets.csv"),
            "id,author_email,author_phone,body,internal_note\r\n"
                + "1,alice@example.com,+49 170 1234567,My order 0123456789 of 2026-11-02 is late,paid 19.99 EUR\r\n")

        // web.json: her log line, her own e-mail and IP visible, Bob's masked; timestamps and versions kept.
        let web = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try read("data/web/web.log.json").utf8)) as? [[String: Any]])
        XCTAssertEqual(web.count, 1)
        XCTAssertEqual(
            (web.first?["record"] as? [String: Any])?["line"] as? String,
            "2026-11-02T10:00:00Z login alice@example.com from 198.51.100.23 referred by [e-mail of another person] via [IP address of another person] (v1.2.3)"
        )
        XCTAssertEqual((web.first?["masked"] as? NSNumber)?.intValue, 2)
        XCTAssertNil(web.first?["mention"])
        // app.jsonl.json: her JSON log line, every field kept, the other strings masked.
        let app = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try read("data/app/app.jsonl.json").utf8)) as? [[String: Any]])
        let appRecord = try XCTUnwrap(app.first?["record"] as? [String: Any])
        XCTAssertEqual(appRecord["user"] as? String, "alice@example.com")
        XCTAssertEqual(appRecord["msg"] as? String, "shared with [e-mail of another person] at 2026-11-02 10:30")
        XCTAssertEqual(appRecord["ip"] as? String, "[IP address of another person]")
        XCTAssertEqual((appRecord["n"] as? NSNumber)?.intValue, 5)
        let peer = try XCTUnwrap(appRecord["peer"] as? [String: Any])
        XCTAssertEqual(peer["ref"] as? String, "/?cc=[e-mail of another person]")
        let to = try XCTUnwrap(peer["to"] as? [Any])
        XCTAssertEqual(to.first as? String, "[e-mail of another person]")
        XCTAssertEqual((to.last as? [String: Any])?["by"] as? String, "[e-mail of another person]")

        // The report the subject reads shows the same masked view and counts the mention.
        let index = try read("index.html")
        XCTAssertTrue(
            index.contains("Customer alice@example.com called at 10:30 about [e-mail of another person]"), index)
        XCTAssertTrue(index.contains("1 mentions of you in other people"), index)
        XCTAssertTrue(try read("README.txt").contains("1 mentions of you in other people's records; 2 other"))

        // Nothing of Bob, Carol or Dave anywhere in the bundle.
        let listing = try runCommand(try tool("unzip"), ["-Z1", zip])
        let names = listing.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(names.contains("data/tickets/tickets.csv"), "\(names)")
        for name in names where !name.hasSuffix("/") {
            let text = try read(name)
            for other in Self.othersData {
                XCTAssertFalse(text.contains(other), "\(name) contains \(other)")
            }
        }
    }

    /// The same through a live SQLite database (built by the real sqlite3) and a pg_dump-style SQL
    /// dump: the row that mentions Alice exports only its `body`, Carol's address in it masked.
    func testMentionsInALiveDatabaseAndASQLDump() throws {
        guard which("sqlite3") != nil else { throw XCTSkip("sqlite3 not installed") }
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/app.sql",
            """
            CREATE TABLE messages (id INTEGER PRIMARY KEY, sender_email TEXT, body TEXT, sender_ip TEXT);
            INSERT INTO messages VALUES (1, 'alice@example.com', 'hello from 2026-11-02', '198.51.100.23'),
              (2, 'bob@example.org', 'forwarding alice@example.com to carol@example.net', '203.0.113.9'),
              (3, 'dave@example.net', 'nothing', '203.0.113.10');

            """)
        let made = try runTool("sqlite3", [dir + "/data/app.db"], stdinPath: dir + "/data/app.sql")
        XCTAssertEqual(made.status, 0, made.stderr)
        try writeFile(
            dir + "/data/dump.sql",
            """
            CREATE TABLE public.messages (
                id integer NOT NULL,
                sender_email text,
                body text,
                sender_ip text
            );

            COPY public.messages (id, sender_email, body, sender_ip) FROM stdin;
            1\talice@example.com\thello from 2026-11-02\t198.51.100.23
            2\tbob@example.org\tforwarding alice@example.com to carol@example.net\t203.0.113.9
            3\tdave@example.net\tnothing\t203.0.113.10
            \\.

            """)
        let tables = "tables:\n  messages: { match: { sender_email: email }, text: [ body ] }\n"
        try writeFile(dir + "/db.yaml", "name: db\ntype: sqlite\npath: data/app.db\n" + tables)
        try writeFile(dir + "/dump.yaml", "name: dump\ntype: sqldump\npaths: [ data/dump.sql ]\n" + tables)
        try s.initialize()
        try s.drop("req.json", #"{"request_id": "R-2", "action": "export", "email": "alice@example.com"}"#)
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let rec = try XCTUnwrap(try s.records().first { $0.requestID == "R-2" })
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let entry = s.root + "/outbox/" + rec.jobID
        let manifest = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try FileSystem.readFile(entry + "/manifest.json")))
                as? [String: Any])
        let connectors = try XCTUnwrap(manifest["connectors"] as? [[String: Any]])
        for name in ["db", "dump"] {
            let c = try XCTUnwrap(connectors.first { $0["name"] as? String == name }, name)
            XCTAssertEqual((c["records"] as? NSNumber)?.intValue, 2, name)
            XCTAssertEqual((c["mentions"] as? NSNumber)?.intValue, 1, name)
            XCTAssertEqual((c["masked"] as? NSNumber)?.intValue, 1, name)
        }
        let zip = s.base + "/bundle.zip"
        let age = try runCommand(
            try tool("age"), ["-d", "-i", s.teamKeys + "/age.key", "-o", zip, entry + "/bundle.zip.age"])
        XCTAssertEqual(age.status, 0, age.stderr)
        for name in ["db", "dump"] {
            let r = try runCommand(try tool("unzip"), ["-p", zip, "data/\(name)/messages.json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let found = try XCTUnwrap(
                try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], name)
            XCTAssertEqual(found.count, 2, name)
            let mention = try XCTUnwrap(found.first { $0["mention"] as? Bool == true }, name)
            XCTAssertEqual(
                mention["record"] as? [String: String],
                ["body": "forwarding alice@example.com to [e-mail of another person]"], name)
            let own = try XCTUnwrap(found.first { $0["mention"] == nil }, name)
            XCTAssertEqual((own["record"] as? [String: Any])?["sender_ip"] as? String, "198.51.100.23", name)
            XCTAssertFalse(r.stdout.contains("bob@example.org"), name)
            XCTAssertFalse(r.stdout.contains("203.0.113.9"), name)
            XCTAssertFalse(r.stdout.contains("carol@"), name)
        }
    }
}
