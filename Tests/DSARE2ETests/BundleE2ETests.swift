import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The export bundle end to end, through the real `dsar` binary, checked with the real tools as
/// oracles: `age`/`age-keygen` (encryption), `ssh-keygen -Y` (manifest signatures), `unzip`,
/// `bsdtar` and Python's `zipfile` (the ZIP inside), `sha256sum`.
final class BundleE2ETests: XCTestCase {
    // MARK: - Fixture

    static let subjectEmail = "alice@example.com"
    static let subjectUserID = "1042"
    /// Lines of the event log that belong to the subject (enough to make the bundle span several
    /// 64 KiB age chunks).
    static let subjectEvents = 3000

    /// The Art. 15 facts of each source, as configured (`purpose` of shop has an `&` to check escaping).
    static let sources: [(name: String, description: String, category: String, purpose: String, retention: String)] = [
        ("accounts", "Customer accounts", "account data", "providing the service", "while the account exists"),
        ("events", "Web application event log", "usage logs", "security monitoring", "90 days"),
        ("shop", "Shop database (pg_dump)", "orders and invoices", "billing & tax law", "10 years"),
    ]

    /// A CSV (email → user_id, expanded), a JSON-lines log and a pg_dump-style SQL dump; the subject
    /// is alice@example.com, user 1042 is reachable only through identity expansion. Look-alikes
    /// (10420, 21042, malice@…) must never match.
    func makeConnectors(_ s: TempSpool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/accounts.csv",
            "email,user_id,name\nbob@example.org,7,Bob\nalice@example.com,1042,Alice\nmalice@example.com,10420,Mal\n")
        var log = ""
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        func noise() -> String {
            // Deterministic, poorly compressible session tokens.
            var t = ""
            for _ in 0..<2 {
                x ^= x << 13
                x ^= x >> 7
                x ^= x << 17
                t += String(x, radix: 16)
            }
            return t
        }
        for k in 0..<Self.subjectEvents {
            let uid = k % 2 == 0 ? "\"1042\"" : "1042"
            log += "{\"user_id\": \(uid), \"event\": \"page_view\", \"n\": \(k), \"session\": \"\(noise())\"}\n"
            if k % 100 == 0 {
                log += "{\"user_id\": \"10420\", \"event\": \"login\", \"session\": \"\(noise())\"}\n"
                log += "{\"user_id\": 21042, \"event\": \"login\"}\n"
            }
        }
        try writeFile(dir + "/data/events.jsonl", log)
        try writeFile(
            dir + "/data/shop.sql",
            """
            --
            -- PostgreSQL database dump
            --

            SET statement_timeout = 0;
            SET client_encoding = 'UTF8';
            SET standard_conforming_strings = on;
            SELECT pg_catalog.set_config('search_path', '', false);

            CREATE TABLE public.customers (
                id integer NOT NULL,
                email text NOT NULL,
                name text
            );

            ALTER TABLE public.customers OWNER TO postgres;

            CREATE TABLE public.orders (
                id integer NOT NULL,
                customer_id integer,
                total numeric(10,2),
                note text
            );

            ALTER TABLE public.orders OWNER TO postgres;

            --
            -- Data for Name: customers; Type: TABLE DATA; Schema: public; Owner: postgres
            --

            COPY public.customers (id, email, name) FROM stdin;
            7\tbob@example.org\tBob
            1042\talice@example.com\tAlice Liddell
            10420\tmalice@example.com\tMal Ice
            \\.

            --
            -- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: postgres
            --

            COPY public.orders (id, customer_id, total, note) FROM stdin;
            1\t1042\t19.99\tfirst order
            2\t10420\t5.00\tnot the subject
            3\t1042\t-3.50\trefund
            4\t7\t1042.00\tamount equals the subject id
            \\.

            ALTER TABLE ONLY public.customers
                ADD CONSTRAINT customers_pkey PRIMARY KEY (id);

            --
            -- PostgreSQL database dump complete
            --

            """)
        func meta(_ name: String) -> String {
            let m = Self.sources.first { $0.name == name }!
            return
                "description: \(m.description)\ncategory: \(m.category)\npurpose: \(m.purpose)\nretention: \(m.retention)\n"
        }
        try writeFile(
            dir + "/accounts.yaml",
            "name: accounts\ntype: csv\npaths: [ data/accounts.csv ]\n" + meta("accounts")
                + "columns: { email: email, user_id: user_id }\n")
        try writeFile(
            dir + "/events.yaml",
            "name: events\ntype: log\nformat: jsonl\npaths: [ data/events.jsonl ]\n" + meta("events")
                + "fields: { user_id: user_id }\n")
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\n" + meta("shop")
                + "tables:\n  customers: { match: { email: email, id: user_id } }\n  orders: { match: { customer_id: user_id } }\n"
        )
        return dir
    }

    /// Records each connector must find for the subject.
    static let expectedRecords = ["accounts": 1, "events": subjectEvents, "shop": 3]

    /// A finished export: the spool, its connectors dir, the job record and the outbox entry path.
    struct Export {
        var spool: TempSpool
        var connectors: String
        var record: JobRecord
        var entry: String
        var run: CommandResult
    }

    /// Initializes a spool, drops an export request for the subject (email only) and runs it.
    func export(
        extraConfig: String = "", requestID: String = "B-1", file: StaticString = #filePath, line: UInt = #line
    ) throws -> Export {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize(extraConfig: extraConfig)
        try s.drop("req.json", #"{"request_id": "\#(requestID)", "action": "export", "email": "Alice@Example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, "dsar run: \(r.stdout)\n\(r.stderr)", file: file, line: line)
        let rec = try XCTUnwrap(try s.records().first { $0.requestID == requestID }, file: file, line: line)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "", file: file, line: line)
        XCTAssertEqual(rec.outbox, "outbox/\(rec.jobID)", file: file, line: line)
        return Export(spool: s, connectors: dir, record: rec, entry: s.root + "/outbox/" + rec.jobID, run: r)
    }

    // MARK: - Tool helpers

    func tool(_ name: String) throws -> String {
        guard let p = which(name) else {
            throw XCTSkip("this test uses the real `\(name)` as an oracle; it is not installed")
        }
        return p
    }

    func readBytes(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { throw TestFailure("cannot read \(path)") }
        return Array(d)
    }

    func writeBytes(_ path: String, _ bytes: [UInt8], mode: Int = 0o644) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw TestFailure("cannot write \(path)")
        }
        chmod(path, mode_t(mode))
    }

    /// SHA-256 by the real `sha256sum`.
    func sha256sum(_ path: String) throws -> String {
        let r = try runCommand(try tool("sha256sum"), [path])
        guard r.status == 0, let h = r.stdout.split(separator: " ").first else {
            throw TestFailure("sha256sum \(path): \(r.stderr)")
        }
        return String(h)
    }

    func json(_ path: String) throws -> [String: Any] {
        let any = try JSONSerialization.jsonObject(with: Data(try readBytes(path)))
        guard let d = any as? [String: Any] else { throw TestFailure("\(path) is not a JSON object") }
        return d
    }

    func int(_ v: Any?) -> Int64? { (v as? NSNumber)?.int64Value }

    /// `age -d -i IDENTITY -o OUT FILE` (the real age).
    @discardableResult
    func ageDecrypt(_ file: String, identity: String, to out: String) throws -> CommandResult {
        try runCommand(try tool("age"), ["-d", "-i", identity, "-o", out, file])
    }

    /// `ssh-keygen -Y verify -f ALLOWED -I PRINCIPAL -n NAMESPACE -s SIG < MESSAGE`.
    func sshVerify(
        allowed: String, principal: String, namespace: String, sig: String, message: String
    ) throws -> CommandResult {
        let keygen = try tool("ssh-keygen")
        return try runCommand(
            "/bin/sh",
            [
                "-c", "exec \"$0\" -Y verify -f \"$1\" -I \"$2\" -n \"$3\" -s \"$4\" < \"$5\"", keygen, allowed,
                principal, namespace, sig, message,
            ])
    }

    /// The files of a ZIP as Python's `zipfile` sees them, and `testzip()`.
    func pythonZip(
        _ path: String
    ) throws -> (testzip: Any, files: [(name: String, size: Int64, sha256: String, method: Int)]) {
        let script = """
            import sys, zipfile, hashlib, json
            z = zipfile.ZipFile(sys.argv[1])
            bad = z.testzip()
            files = [{"name": i.filename, "size": i.file_size, "sha256": hashlib.sha256(z.read(i)).hexdigest(),
                      "method": i.compress_type, "encrypted": bool(i.flag_bits & 1)} for i in z.infolist()]
            print(json.dumps({"testzip": bad, "files": files}))
            """
        let r = try runCommand(try tool("python3"), ["-c", script, path])
        guard r.status == 0 else { throw TestFailure("python3 zipfile failed on \(path): \(r.stderr)") }
        let d = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let files = try XCTUnwrap(d["files"] as? [[String: Any]]).map { f in
            (
                name: f["name"] as? String ?? "", size: int(f["size"]) ?? -1, sha256: f["sha256"] as? String ?? "",
                method: Int(int(f["method"]) ?? -1)
            )
        }
        return (d["testzip"] ?? NSNull(), files)
    }

    /// The manifest's `files` as tuples.
    func manifestFiles(_ m: [String: Any]) throws -> [(name: String, size: Int64, sha256: String)] {
        try XCTUnwrap(m["files"] as? [[String: Any]]).map { f in
            (name: f["name"] as? String ?? "", size: int(f["size"]) ?? -1, sha256: f["sha256"] as? String ?? "")
        }
    }

    /// Decrypts the bundle of `entry` with the team's key (real age) into `<base>/<name>.zip`.
    func decryptBundle(_ e: Export, name: String = "bundle") throws -> String {
        let out = e.spool.base + "/\(name).zip"
        let r = try ageDecrypt(e.entry + "/bundle.zip.age", identity: e.spool.teamKeys + "/age.key", to: out)
        XCTAssertEqual(r.status, 0, "age -d: \(r.stderr)")
        return out
    }

    // MARK: - 1. Bundle contents

    func testExportOverRealConnectorsYieldsAZipEveryToolReadsMatchingTheManifest() throws {
        let e = try export()
        // Identity expansion reached the log and the dump through user 1042 (the request had only the email).
        for (name, n) in Self.expectedRecords {
            let c = try XCTUnwrap(e.record.connectors.first { $0.name == name }, name)
            XCTAssertEqual(c.status, "ok", "\(name): \(c.error ?? "")")
            XCTAssertEqual(c.records, n, name)
        }
        XCTAssertEqual(
            Set(e.spool.list("outbox/" + e.record.jobID)), ["bundle.zip.age", "manifest.json", "manifest.json.sig"])

        let m = try json(e.entry + "/manifest.json")
        XCTAssertEqual(m["format"] as? String, "dsar-manifest/1")
        XCTAssertEqual(m["job_id"] as? String, e.record.jobID)
        XCTAssertEqual(m["request_id"] as? String, "B-1")
        XCTAssertEqual(m["action"] as? String, "export")
        XCTAssertEqual(m["regulation"] as? String, "gdpr")
        XCTAssertEqual(m["dry_run"] as? Bool, false)
        XCTAssertEqual(m["subject_pseudonym"] as? String, e.record.subject)
        XCTAssertNotNil(m["created_at"] as? String)
        XCTAssertTrue((m["tool"] as? String)?.hasPrefix("dsar ") ?? false)
        let teamRecipient = String(decoding: try readBytes(e.spool.teamKeys + "/age.pub"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(m["recipients"] as? [String], [teamRecipient])
        let connectors = try XCTUnwrap(m["connectors"] as? [[String: Any]])
        XCTAssertEqual(connectors.map { $0["name"] as? String ?? "" }.sorted(), ["accounts", "events", "shop"])
        for c in connectors {
            let name = c["name"] as? String ?? ""
            XCTAssertEqual(c["status"] as? String, "ok", name)
            XCTAssertEqual(int(c["records"]), Int64(Self.expectedRecords[name] ?? -1), name)
            XCTAssertEqual(c["category"] as? String, Self.sources.first { $0.name == name }?.category, name)
            XCTAssertTrue(c["error"] is NSNull, name)
        }

        // The bundle itself: size and SHA-256 (by sha256sum) as the manifest says.
        let bundle = try XCTUnwrap(m["bundle"] as? [String: Any])
        let bundlePath = e.entry + "/bundle.zip.age"
        XCTAssertEqual(bundle["name"] as? String, "bundle.zip.age")
        let bundleSize = try XCTUnwrap(try FileSystem.status(bundlePath)).size
        XCTAssertEqual(int(bundle["size"]), bundleSize)
        XCTAssertEqual(bundle["sha256"] as? String, try sha256sum(bundlePath))
        XCTAssertGreaterThan(
            bundleSize, 65536 + 200, "the fixture should make the age payload span several 64 KiB chunks")
        XCTAssertTrue(try readBytes(bundlePath).starts(with: Array("age-encryption.org/v1\n".utf8)))

        // The real age opens it; the result is a ZIP that unzip, bsdtar and Python all read.
        let zip = try decryptBundle(e)
        let zipBytes = try readBytes(zip)
        XCTAssertTrue(zipBytes.starts(with: [0x50, 0x4B, 0x03, 0x04]), "not a ZIP")
        let t = try runCommand(try tool("unzip"), ["-t", zip])
        XCTAssertEqual(t.status, 0, t.stdout + t.stderr)
        XCTAssertTrue(t.stdout.contains("No errors detected"), t.stdout)
        let list = try runCommand(try tool("bsdtar"), ["-tvf", zip])
        XCTAssertEqual(list.status, 0, list.stderr)
        let bsdtarEntries: [(String, Int64)] = list.stdout.split(separator: "\n").map { l in
            let f = l.split(separator: " ", omittingEmptySubsequences: true)
            return (f.count >= 9 ? f[8...].joined(separator: " ") : String(l), f.count >= 5 ? Int64(f[4]) ?? -1 : -1)
        }
        let py = try pythonZip(zip)
        XCTAssertTrue(py.testzip is NSNull, "zipfile.testzip() found a bad member: \(py.testzip)")

        let want = try manifestFiles(m)
        let dataNames = want.map(\.name).filter { $0.hasPrefix("data/") }
        XCTAssertEqual(Array(want.map(\.name).prefix(2)), ["README.txt", "index.html"])
        XCTAssertEqual(dataNames, dataNames.sorted(), "data files in bytewise order")
        XCTAssertEqual(Set(dataNames.map { $0.split(separator: "/")[1] }), ["accounts", "events", "shop"])
        for n in [
            "data/accounts/accounts.json", "data/accounts/accounts.csv", "data/shop/customers.json",
            "data/shop/orders.json",
        ] {
            XCTAssertTrue(dataNames.contains(n), "missing \(n) in \(dataNames)")
        }
        XCTAssertEqual(py.files.map(\.name), want.map(\.name), "Python's zipfile: names in order")
        XCTAssertEqual(py.files.map(\.size), want.map(\.size), "Python's zipfile: sizes")
        XCTAssertEqual(py.files.map(\.sha256), want.map(\.sha256), "Python's zipfile: SHA-256")
        XCTAssertEqual(bsdtarEntries.map(\.0), want.map(\.name), "bsdtar -tvf: names in order")
        XCTAssertEqual(bsdtarEntries.map(\.1), want.map(\.size), "bsdtar -tvf: sizes")

        // And extracted by bsdtar, each file hashes (sha256sum) as the manifest says.
        let out = e.spool.base + "/extracted"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try runCommand(try tool("bsdtar"), ["-xf", zip, "-C", out])
        XCTAssertEqual(x.status, 0, x.stderr)
        for f in want {
            XCTAssertEqual(try FileSystem.status(out + "/" + f.name)?.size, f.size, f.name)
            XCTAssertEqual(try sha256sum(out + "/" + f.name), f.sha256, f.name)
        }

        // data/<connector>/<table>.json: arrays of {source, location, record}, only the subject's records.
        var perConnector: [String: Int] = [:]
        for name in dataNames where name.hasSuffix(".json") {
            let any = try JSONSerialization.jsonObject(with: Data(try readBytes(out + "/" + name)))
            let items = try XCTUnwrap(any as? [[String: Any]], "\(name) is not an array of objects")
            XCTAssertFalse(items.isEmpty, name)
            let connector = String(name.split(separator: "/")[1])
            perConnector[connector, default: 0] += items.count
            for item in items {
                let source = try XCTUnwrap(item["source"] as? String, name)
                // The subject's copy names the file only, never the server path (the manifest has it).
                XCTAssertFalse(source.contains("/") || source.isEmpty, "\(name): source \(source)")
                XCTAssertTrue(
                    FileManager.default.enumerator(atPath: e.connectors + "/data")?.contains {
                        (($0 as? String).map { ($0 as NSString).lastPathComponent } ?? "") == source
                    } ?? false, "\(name): source \(source) is no file of the sample data")
                let loc = try XCTUnwrap(item["location"] as? [String: Any], name)
                XCTAssertNotNil(int(loc["line"]), "\(name): location.line")
                let record = try XCTUnwrap(item["record"] as? [String: Any], name)
                let values = record.values.map { "\($0)".lowercased() }
                XCTAssertTrue(
                    values.contains(Self.subjectUserID) || values.contains(Self.subjectEmail),
                    "\(name): a record that is not the subject's: \(record)")
                XCTAssertFalse(
                    values.contains("10420") || values.contains("21042") || values.contains("malice@example.com"),
                    "\(name): \(record)")
            }
        }
        XCTAssertEqual(perConnector, Self.expectedRecords)
        // The CSV source also gets its original rows.
        XCTAssertEqual(
            String(decoding: try readBytes(out + "/data/accounts/accounts.csv"), as: UTF8.self)
                .split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init),
            ["email,user_id,name", "alice@example.com,1042,Alice"])
    }

    func testReadmeAndIndexNameEverySourceWithCategoryPurposeRetentionAndCounts() throws {
        let e = try export()
        let out = e.spool.base + "/x"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try runCommand(try tool("bsdtar"), ["-xf", try decryptBundle(e), "-C", out])
        XCTAssertEqual(x.status, 0, x.stderr)
        let readme = String(decoding: try readBytes(out + "/README.txt"), as: UTF8.self)
        let html = String(decoding: try readBytes(out + "/index.html"), as: UTF8.self)
        XCTAssertTrue(readme.contains("B-1"), "README names the request")
        XCTAssertTrue(readme.contains("email: alice@example.com"), readme)
        XCTAssertTrue(readme.contains("user_id: 1042"), "README lists the derived identifier")

        // README: one block per source, with its facts and count.
        let sections = readme.components(separatedBy: "\n\n")
        for src in Self.sources {
            let n = Self.expectedRecords[src.name]!
            guard let block = sections.first(where: { $0.hasPrefix("\(src.name) — ") || $0.hasPrefix("\(src.name)\n") })
            else {
                XCTFail("README has no section for \(src.name):\n\(readme)")
                continue
            }
            XCTAssertTrue(block.hasPrefix("\(src.name) — \(src.description)"), block)
            XCTAssertTrue(block.contains("Records about you: \(n)\n"), block)
            XCTAssertTrue(block.contains("Category of data:  \(src.category)\n"), block)
            XCTAssertTrue(block.contains("Purpose:           \(src.purpose)\n"), block)
            XCTAssertTrue(block.contains("Retention:         \(src.retention)\n"), block)
            XCTAssertTrue(block.contains("File:              data/\(src.name)/"), block)
        }

        // index.html: one table row per source; text HTML-escaped.
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;")
        }
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        XCTAssertTrue(html.contains("billing &amp; tax law"), "an & in a purpose must be escaped")
        XCTAssertFalse(html.contains("billing & tax law"))
        // The overview table ("Where we hold data about you") follows the plain-language summary.
        let overview = try XCTUnwrap(html.components(separatedBy: "id=\"sources\"").dropFirst().first, html)
        let rows = overview.components(separatedBy: "<tr>")
        for src in Self.sources {
            let n = Self.expectedRecords[src.name]!
            guard let row = rows.first(where: { $0.contains("<strong>\(src.name)</strong>") }) else {
                XCTFail("index.html has no row for \(src.name):\n\(html)")
                continue
            }
            XCTAssertTrue(row.contains(esc(src.description)), row)
            XCTAssertTrue(
                row.contains(
                    "<td>\(esc(src.category))</td><td>\(esc(src.purpose))</td><td>\(esc(src.retention))</td><td>\(n)</td>"
                ), row)
            XCTAssertTrue(row.contains("href=\"data/\(src.name)/"), row)
        }
        // Every link in index.html points at a file in the ZIP.
        for part in html.components(separatedBy: "href=\"").dropFirst() {
            let target = String(part.prefix { $0 != "\"" })
            if target.hasPrefix("#") {
                XCTAssertTrue(
                    html.contains("id=\"\(target.dropFirst())\""), "index.html links to \(target), which it lacks")
                continue
            }
            if target.hasPrefix("https://") { continue }
            XCTAssertTrue(
                FileSystem.exists(out + "/" + target), "index.html links to \(target), which is not in the bundle")
        }
    }

    // MARK: - 2. Several recipients

    func testEveryConfiguredRecipientOpensTheBundle() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let keygen = try tool("age-keygen")
        // The second recipient: an identity file made by the real age-keygen, named by absolute path;
        // the third: a recipients file (age-keygen -y), named relative to the spool.
        let second = s.base + "/second.key"
        XCTAssertEqual(try runCommand(keygen, ["-o", second]).status, 0)
        chmod(second, 0o600)
        let third = s.base + "/third.key"
        XCTAssertEqual(try runCommand(keygen, ["-o", third]).status, 0)
        chmod(third, 0o600)
        let y = try runCommand(keygen, ["-y", third])
        XCTAssertEqual(y.status, 0, y.stderr)
        try writeFile(s.base + "/third.pub", "# the archive team\n" + y.stdout)
        let y2 = try runCommand(keygen, ["-y", second])
        let secondRecipient = y2.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let thirdRecipient = y.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        try s.initialize()
        let team = String(decoding: try readBytes(s.teamKeys + "/age.pub"), as: UTF8.self).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try writeFile(s.root + "/config.yaml", "recipients: [ \(team), \(second), ../third.pub ]\n", mode: 0o640)
        try s.drop("req.json", #"{"request_id": "R2", "action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let entry = s.root + "/outbox/" + rec.jobID
        let m = try json(entry + "/manifest.json")
        XCTAssertEqual(m["recipients"] as? [String], [team, secondRecipient, thirdRecipient])

        var plaintexts: [[UInt8]] = []
        for (k, id) in [s.teamKeys + "/age.key", second, third].enumerated() {
            let out = s.base + "/open\(k).zip"
            let d = try ageDecrypt(entry + "/bundle.zip.age", identity: id, to: out)
            XCTAssertEqual(d.status, 0, "age -d -i \(id): \(d.stderr)")
            plaintexts.append(try readBytes(out))
            let t = try runCommand(try tool("unzip"), ["-t", out])
            XCTAssertEqual(t.status, 0, t.stdout)
        }
        XCTAssertEqual(Set(plaintexts.map { $0.count }).count, 1)
        XCTAssertTrue(plaintexts.allSatisfy { $0 == plaintexts[0] })
        // dsar verify opens it with the age-keygen identity too.
        let v = try s.dsar(["verify", entry, "-i", second])
        XCTAssertEqual(v.status, 0, v.stderr)

        // A stranger's identity does not.
        let stranger = s.base + "/stranger.key"
        XCTAssertEqual(try runCommand(keygen, ["-o", stranger]).status, 0)
        XCTAssertNotEqual(
            try ageDecrypt(entry + "/bundle.zip.age", identity: stranger, to: s.base + "/nope.zip").status, 0)
    }

    // MARK: - 3. Signatures and dsar verify

    func testManifestSignatureVerifiesWithSshKeygenAndFailsWhenTampered() throws {
        let e = try export()
        let allowed = e.spool.root + "/keys/allowed_signers"
        let sig = e.entry + "/manifest.json.sig"
        let manifest = e.entry + "/manifest.json"
        XCTAssertTrue(String(decoding: try readBytes(sig), as: UTF8.self).hasPrefix("-----BEGIN SSH SIGNATURE-----"))
        let good = try sshVerify(
            allowed: allowed, principal: "dsar", namespace: "dsar-manifest", sig: sig, message: manifest)
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        XCTAssertTrue(good.stdout.contains("Good \"dsar-manifest\" signature for dsar"), good.stdout)

        // One byte of the manifest changed (at several places).
        let bytes = try readBytes(manifest)
        for offset in [0, bytes.count / 3, bytes.count / 2, bytes.count - 2] {
            var bad = bytes
            bad[offset] ^= 0x01
            let tampered = e.spool.base + "/tampered-\(offset).json"
            try writeBytes(tampered, bad)
            let r = try sshVerify(
                allowed: allowed, principal: "dsar", namespace: "dsar-manifest", sig: sig, message: tampered)
            XCTAssertNotEqual(r.status, 0, "ssh-keygen accepted a manifest with byte \(offset) changed")
        }
        // Wrong namespace (even one allowed_signers permits for this key), wrong principal.
        for ns in ["dsar-journal", "file", "git"] {
            let r = try sshVerify(allowed: allowed, principal: "dsar", namespace: ns, sig: sig, message: manifest)
            XCTAssertNotEqual(r.status, 0, "ssh-keygen accepted namespace \(ns)")
        }
        for p in ["root", "dsar2", "someone@example.com"] {
            let r = try sshVerify(
                allowed: allowed, principal: p, namespace: "dsar-manifest", sig: sig, message: manifest)
            XCTAssertNotEqual(r.status, 0, "ssh-keygen accepted principal \(p)")
        }
        // The manifest names the signer as allowed_signers does.
        let m = try json(manifest)
        let signer = try XCTUnwrap(m["signer"] as? [String: Any])
        XCTAssertEqual(signer["principal"] as? String, "dsar")
        XCTAssertEqual(signer["namespace"] as? String, "dsar-manifest")
        let pub = String(decoding: try readBytes(e.spool.root + "/keys/signing_key.pub"), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(signer["public_key"] as? String, pub)
    }

    func testDsarVerifyAcceptsTheEntryAndRejectsTampering() throws {
        let e = try export()
        let id = e.spool.teamKeys + "/age.key"
        let ok = try e.spool.dsar(["verify", e.entry, "-i", id])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("signature: valid"), ok.stdout)
        let n = try manifestFiles(try json(e.entry + "/manifest.json")).count
        XCTAssertTrue(
            ok.stdout.contains("contents: \(n) files, names, sizes and SHA-256 match the manifest"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("OK: \(e.entry) verified"), ok.stdout)
        // With the allowed_signers file instead of the spool's public key.
        let viaAllowed = try e.spool.dsar([
            "verify", e.entry, "--allowed-signers", e.spool.root + "/keys/allowed_signers", "-i", id,
        ])
        XCTAssertEqual(viaAllowed.status, 0, viaAllowed.stderr)

        func copyEntry(_ name: String) throws -> String {
            let c = e.spool.base + "/" + name
            try FileManager.default.copyItem(atPath: e.entry, toPath: c)
            return c
        }
        // One byte of bundle.zip.age flipped (header, payload middle, last byte): with and without -i.
        let bundle = try readBytes(e.entry + "/bundle.zip.age")
        for offset in [10, bundle.count / 2, bundle.count - 1] {
            let c = try copyEntry("flip-\(offset)")
            var b = bundle
            b[offset] ^= 0x80
            try writeBytes(c + "/bundle.zip.age", b)
            let r = try e.spool.dsar(["verify", c, "-i", id])
            XCTAssertNotEqual(r.status, 0, "dsar verify accepted a bundle with byte \(offset) flipped")
            XCTAssertTrue(r.stderr.contains("SHA-256"), r.stderr)
            XCTAssertNotEqual(try e.spool.dsar(["verify", c]).status, 0)
        }
        // A truncated bundle.
        let cut = try copyEntry("truncated")
        try writeBytes(cut + "/bundle.zip.age", Array(bundle.dropLast(100)))
        XCTAssertNotEqual(try e.spool.dsar(["verify", cut, "-i", id]).status, 0)
        // The manifest edited (a claim changed; a byte flipped) or its signature removed.
        let text = String(decoding: try readBytes(e.entry + "/manifest.json"), as: UTF8.self)
        let edited = try copyEntry("edited")
        try writeFile(
            edited + "/manifest.json", text.replacingOccurrences(of: "\"dry_run\": false", with: "\"dry_run\": true"))
        XCTAssertNotEqual(
            text, text.replacingOccurrences(of: "\"dry_run\": false", with: "\"dry_run\": true"),
            "fixture: the edit must change something")
        let r1 = try e.spool.dsar(["verify", edited, "-i", id])
        XCTAssertNotEqual(r1.status, 0, "dsar verify accepted an edited manifest")
        XCTAssertTrue(r1.stderr.contains("signature INVALID"), r1.stderr)
        let flipped = try copyEntry("manifest-flip")
        var mb = Array(text.utf8)
        mb[mb.count / 2] ^= 0x01
        try writeBytes(flipped + "/manifest.json", mb)
        XCTAssertNotEqual(try e.spool.dsar(["verify", flipped]).status, 0)
        let unsigned = try copyEntry("unsigned")
        try FileSystem.remove(unsigned + "/manifest.json.sig")
        XCTAssertNotEqual(try e.spool.dsar(["verify", unsigned]).status, 0)
        // A valid signature by some other key is not the spool's.
        let other = e.spool.base + "/other"
        XCTAssertEqual(
            try runCommand(try tool("ssh-keygen"), ["-q", "-t", "ed25519", "-N", "", "-f", other]).status, 0)
        let foreign = try copyEntry("foreign")
        try FileSystem.remove(foreign + "/manifest.json.sig")
        let sign = try runCommand(
            try tool("ssh-keygen"), ["-Y", "sign", "-f", other, "-n", "dsar-manifest", foreign + "/manifest.json"])
        XCTAssertEqual(sign.status, 0, sign.stderr)
        let rf = try e.spool.dsar(["verify", foreign, "-i", id])
        XCTAssertNotEqual(rf.status, 0, "dsar verify accepted a manifest signed by a foreign key")
        XCTAssertTrue(rf.stderr.contains("not the trusted signing key"), rf.stderr)
    }

    /// `dsar verify --allowed-signers` and `ssh-keygen -Y verify` agree on allowed_signers variants.
    func testDsarVerifyAgreesWithSshKeygenOnAllowedSigners() throws {
        let e = try export()
        let fields = String(decoding: try readBytes(e.spool.root + "/keys/signing_key.pub"), as: UTF8.self).split(
            separator: " ")
        let key = fields[0] + " " + fields[1]
        let variants: [(String, Bool)] = [
            ("dsar \(key)", true),
            ("dsar namespaces=\"dsar-manifest\" \(key)", true),
            ("dsar namespaces=\"dsar-journal\" \(key)", false),
            ("dsar valid-before=\"20200101\" \(key)", false),
            ("dsar valid-after=\"29990101\" \(key)", false),
            ("someone-else \(key)", false),
            ("ops,dsar \(key)", true),
            ("d*r \(key)", true),
            ("# only a comment", false),
        ]
        for (k, (line, want)) in variants.enumerated() {
            let allowed = e.spool.base + "/allowed-\(k)"
            try writeFile(allowed, line + "\n")
            let ssh = try sshVerify(
                allowed: allowed, principal: "dsar", namespace: "dsar-manifest", sig: e.entry + "/manifest.json.sig",
                message: e.entry + "/manifest.json")
            XCTAssertEqual(ssh.status == 0, want, "oracle: ssh-keygen on `\(line)`: \(ssh.stdout) \(ssh.stderr)")
            let ours = try e.spool.dsar(["verify", e.entry, "--allowed-signers", allowed])
            XCTAssertEqual(
                ours.status == 0, ssh.status == 0,
                "dsar verify disagrees with ssh-keygen on `\(line)`: \(ours.stdout) \(ours.stderr)")
        }
    }

    /// A manifest re-signed (by ssh-keygen with the spool's own key) whose `files` lie about one file:
    /// the bundle hash matches, so only the check of the contents with -i can notice.
    func testDsarVerifyComparesTheFilesInsideWithTheManifest() throws {
        let e = try export()
        let id = e.spool.teamKeys + "/age.key"
        let keygen = try tool("ssh-keygen")
        let text = String(decoding: try readBytes(e.entry + "/manifest.json"), as: UTF8.self)
        let files = try manifestFiles(try json(e.entry + "/manifest.json"))
        let victim = try XCTUnwrap(files.first { $0.name == "data/shop/orders.json" })
        let fake = String(repeating: "0", count: 64)
        let lie = text.replacingOccurrences(of: victim.sha256, with: fake)
        XCTAssertNotEqual(lie, text)
        let c = e.spool.base + "/resigned"
        try FileManager.default.copyItem(atPath: e.entry, toPath: c)
        try FileSystem.remove(c + "/manifest.json.sig")
        try writeFile(c + "/manifest.json", lie)
        let sign = try runCommand(
            keygen,
            ["-Y", "sign", "-f", e.spool.root + "/keys/signing_key", "-n", "dsar-manifest", c + "/manifest.json"])
        XCTAssertEqual(sign.status, 0, sign.stderr)
        // ssh-keygen's own signature is accepted by dsar (interoperability in that direction too) …
        let noContents = try e.spool.dsar(["verify", c])
        XCTAssertEqual(noContents.status, 0, noContents.stderr)
        // … but with the identity the lie is found.
        let withContents = try e.spool.dsar(["verify", c, "-i", id])
        XCTAssertNotEqual(withContents.status, 0, "dsar verify -i accepted a manifest whose file hash is wrong")
        XCTAssertTrue(withContents.stderr.contains("data/shop/orders.json"), withContents.stderr)
    }

    // MARK: - 4. Configured signing keys

    func testSigningKeyMadeBySshKeygenSignsManifestsSshKeygenAccepts() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let keygen = try tool("ssh-keygen")
        let key = s.base + "/ops/manifest_key"
        try FileManager.default.createDirectory(atPath: s.base + "/ops", withIntermediateDirectories: true)
        let g = try runCommand(keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "privacy-ops", "-f", key])
        XCTAssertEqual(g.status, 0, g.stderr)
        try s.initialize(extraConfig: "signing_key: \(key)\nsigner_principal: privacy-bot@example.com\n")
        try s.drop("req.json", #"{"request_id": "K-1", "action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let entry = s.root + "/outbox/" + rec.jobID

        let pubFields = String(decoding: try readBytes(key + ".pub"), as: UTF8.self).split(separator: " ")
        let pub = pubFields[0] + " " + pubFields[1]
        let allowed = s.base + "/ops/allowed_signers"
        try writeFile(allowed, "privacy-bot@example.com namespaces=\"dsar-manifest\" \(pub)\n")
        let ok = try sshVerify(
            allowed: allowed, principal: "privacy-bot@example.com", namespace: "dsar-manifest",
            sig: entry + "/manifest.json.sig", message: entry + "/manifest.json")
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        // Not by the spool's own (dsar init) key.
        let spoolKey = try sshVerify(
            allowed: s.root + "/keys/allowed_signers", principal: "dsar", namespace: "dsar-manifest",
            sig: entry + "/manifest.json.sig", message: entry + "/manifest.json")
        XCTAssertNotEqual(spoolKey.status, 0)
        let m = try json(entry + "/manifest.json")
        let signer = try XCTUnwrap(m["signer"] as? [String: Any])
        XCTAssertEqual(signer["principal"] as? String, "privacy-bot@example.com")
        XCTAssertTrue((signer["public_key"] as? String)?.hasPrefix(pub) ?? false, "\(signer)")
        // dsar verify against the allowed_signers written for it.
        let v = try s.dsar(["verify", entry, "--allowed-signers", allowed, "-i", s.teamKeys + "/age.key"])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stdout.contains("signer: privacy-bot@example.com allowed by \(allowed)"), v.stdout)
    }

    func testGroupReadableSigningKeyIsRefused() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let key = s.base + "/loose_key"
        XCTAssertEqual(try runCommand(try tool("ssh-keygen"), ["-q", "-t", "ed25519", "-N", "", "-f", key]).status, 0)
        chmod(key, 0o644)
        try s.initialize(extraConfig: "signing_key: \(key)\n")
        try s.drop("req.json", #"{"request_id": "K-2", "action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.status, 77, "a key-mode problem is a permission error (exit 77)")
        XCTAssertTrue(r.stderr.contains(key), r.stderr)
        XCTAssertTrue(r.stderr.contains("chmod 600 \(key)"), r.stderr)
        // Nothing was taken or published; the request waits for the fix.
        XCTAssertEqual(s.list("inbox"), ["req.json"])
        XCTAssertEqual(s.list("outbox"), [])
        chmod(key, 0o600)
        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try s.records().first?.status, .completed)
    }

    // MARK: - 5. dsar decrypt

    func testDecryptOpensFilesMadeByAge() throws {
        let t = try TempSpool()
        defer { withExtendedLifetime(t) {} }
        let base = t.base
        let age = try tool("age")
        let keygen = try tool("age-keygen")
        let key = base + "/id.key"
        XCTAssertEqual(try runCommand(keygen, ["-o", key]).status, 0)
        chmod(key, 0o600)
        let recipient = try runCommand(keygen, ["-y", key]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(recipient.hasPrefix("age1"))
        try writeFile(base + "/recipients.txt", "# team\n\(recipient)\n")
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 65536, 200_000] {
            let plain = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let p = base + "/plain-\(size)"
            try writeBytes(p, plain)
            // age -r RECIPIENT, opened with -o.
            let a = base + "/r-\(size).age"
            let ea = try runCommand(age, ["-r", recipient, "-o", a, p])
            XCTAssertEqual(ea.status, 0, ea.stderr)
            let outA = base + "/out-r-\(size)"
            let da = try runCommand(dsarBinary, ["decrypt", "-i", key, "-o", outA, a])
            XCTAssertEqual(da.status, 0, "size \(size), -r: \(da.stderr)")
            XCTAssertEqual(try readBytes(outA), plain, "size \(size), -r")
            // age -R recipients-file, opened to stdout.
            let b = base + "/R-\(size).age"
            let eb = try runCommand(age, ["-R", base + "/recipients.txt", "-o", b, p])
            XCTAssertEqual(eb.status, 0, eb.stderr)
            let outB = base + "/out-R-\(size)"
            let db = try runCommand(
                "/bin/sh", ["-c", "exec \"$0\" decrypt -i \"$1\" \"$2\" > \"$3\"", dsarBinary, key, b, outB])
            XCTAssertEqual(db.status, 0, "size \(size), -R: \(db.stderr)")
            XCTAssertEqual(try readBytes(outB), plain, "size \(size), -R")
        }
        // The wrong identity is refused, and writes nothing.
        let other = base + "/other.key"
        XCTAssertEqual(try runCommand(keygen, ["-o", other]).status, 0)
        chmod(other, 0o600)
        let wrong = try runCommand(dsarBinary, ["decrypt", "-i", other, "-o", base + "/wrong.out", base + "/r-1.age"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertFalse(FileSystem.exists(base + "/wrong.out"))
    }

    func testDecryptPassesTheApplicableCCTVAgeVectors() throws {
        let folder = repoRoot + "/../shared/cctv-age"
        guard FileSystem.exists(folder + "/README.md") else {
            throw XCTSkip(
                "C2SP CCTV age vectors not found at \(folder) (expected ../shared/cctv-age from the project root)")
        }
        let t = try TempSpool()
        defer { withExtendedLifetime(t) {} }
        let work = t.base
        let known: Set<String> = [
            "expect", "payload", "identity", "passphrase", "armored", "file key", "comment", "compressed",
        ]
        var counts: [String: Int] = [:]
        var used = 0
        var skipped = 0
        var failures: [String] = []
        for name in try FileSystem.list(folder).sorted() where name != "README.md" && !name.hasPrefix(".") {
            let raw = try readBytes(folder + "/" + name)
            // Header lines, an empty line, then the age file.
            var sep: Int?
            for i in 0..<(raw.count - 1) where raw[i] == 0x0A && raw[i + 1] == 0x0A {
                sep = i
                break
            }
            guard let sep else {
                failures.append("\(name): no blank line after the header")
                continue
            }
            var header: [String: String] = [:]
            var identities: [String] = []
            var unknown = false
            for line in String(decoding: raw[..<sep], as: UTF8.self).split(separator: "\n") {
                guard let colon = line.range(of: ": ") else {
                    unknown = true
                    continue
                }
                let k = String(line[..<colon.lowerBound])
                let v = String(line[colon.upperBound...])
                if !known.contains(k) { unknown = true }
                if k == "identity" { identities.append(v) } else { header[k] = v }
            }
            guard !unknown, header["armored"] != "yes", header["passphrase"] == nil, !identities.isEmpty,
                identities.allSatisfy({ $0.hasPrefix("AGE-SECRET-KEY-1") }), let expect = header["expect"]
            else {
                skipped += 1
                continue
            }
            used += 1
            counts[expect, default: 0] += 1
            var body = Array(raw[(sep + 2)...])
            if header["compressed"] == "zlib" { body = try Zlib.inflate(body) }
            let idPath = work + "/\(name).key"
            try writeBytes(idPath, Array((identities.joined(separator: "\n") + "\n").utf8), mode: 0o600)
            let agePath = work + "/\(name).age"
            try writeBytes(agePath, body)
            let out = work + "/\(name).out"
            let r = try runCommand(dsarBinary, ["decrypt", "-i", idPath, "-o", out, agePath])
            if expect == "success" {
                if r.status != 0 {
                    failures.append("\(name): expected success, exit \(r.status): \(r.stderr)")
                } else {
                    var h = StreamingSHA256()
                    h.update(try readBytes(out))
                    if h.hexDigest() != header["payload"] {
                        failures.append(
                            "\(name): plaintext SHA-256 \(h.hexDigest()) != payload \(header["payload"] ?? "nil")")
                    }
                }
            } else if r.status == 0 {
                failures.append("\(name): expected \(expect), but dsar decrypt exited 0")
            }
        }
        print(
            "CCTV age vectors: \(used) applicable (\(counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))), \(used - failures.count) passed, \(failures.count) failed, \(skipped) skipped (armor/passphrase/other identity types)"
        )
        XCTAssertEqual(failures, [])
        XCTAssertEqual(used, 66, "the README says 66 vectors apply to an X25519-only, non-armored decryptor")
        XCTAssertEqual(counts["success"], 14)
    }

    // MARK: - 6. No personal data in the spool

    /// Whether `hay` contains `needle` (ASCII case-insensitive), optionally as a whole token (not
    /// preceded or followed by a letter, digit or '-', so UUIDs and hex digests don't count).
    static func contains(_ hay: [UInt8], _ needle: [UInt8], token: Bool) -> Bool {
        func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        func word(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == UInt8(ascii: "-")
        }
        let n = needle.map(lower)
        guard !n.isEmpty, hay.count >= n.count else { return false }
        var i = 0
        while i <= hay.count - n.count {
            if lower(hay[i]) == n[0] {
                var j = 1
                while j < n.count && lower(hay[i + j]) == n[j] { j += 1 }
                if j == n.count {
                    if !token
                        || ((i == 0 || !word(hay[i - 1])) && (i + n.count == hay.count || !word(hay[i + n.count])))
                    {
                        return true
                    }
                }
            }
            i += 1
        }
        return false
    }

    func testSubjectIdentifiersAppearInNoSpoolFileAfterExport() throws {
        let e = try export()
        let s = e.spool
        let email = Array(Self.subjectEmail.utf8)
        let uid = Array(Self.subjectUserID.utf8)
        // The search works: the sources (outside the spool) and the decrypted bundle do contain them.
        let csv = try readBytes(e.connectors + "/data/accounts.csv")
        XCTAssertTrue(Self.contains(csv, Array("ALICE@example.COM".utf8), token: false))
        XCTAssertTrue(Self.contains(csv, uid, token: true))
        XCTAssertFalse(Self.contains(Array("x 10420 21042 01a2-1042-7f".utf8), uid, token: true))
        // … and the bundle (once decrypted) holds the subject's data, so its absence below means something.
        let readme = try runCommand(try tool("unzip"), ["-p", try decryptBundle(e), "README.txt"])
        XCTAssertTrue(Self.contains(Array(readme.stdout.utf8), email, token: false), readme.stdout)
        XCTAssertTrue(Self.contains(Array(readme.stdout.utf8), uid, token: true), readme.stdout)

        XCTAssertEqual(s.allFiles("inbox"), [], "the request is gone after a COMPLETED job")
        XCTAssertEqual(s.allFiles("active"), [])
        XCTAssertEqual(s.allFiles("tmp"), [], "no work files left")
        let files = s.allFiles()
        XCTAssertTrue(files.contains("outbox/\(e.record.jobID)/bundle.zip.age"))
        XCTAssertTrue(files.contains("jobs/\(e.record.jobID).json"))
        var leaks: [String] = []
        for f in files {
            let bytes = try readBytes(s.root + "/" + f)
            if Self.contains(bytes, email, token: false) { leaks.append("\(f): the email") }
            if Self.contains(bytes, uid, token: true) { leaks.append("\(f): user id 1042") }
        }
        XCTAssertEqual(leaks, [], "personal data in the spool (searched \(files.count) files: \(files))")
    }

    // MARK: - 7. kill -9 while sealing

    func testKill9WhileSealingPublishesNothingAndTheRerunCompletes() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        try s.drop("req.json", #"{"request_id": "C-1", "action": "export", "email": "alice@example.com"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "seal.writing"], timeout: 60)
        XCTAssertTrue(
            crashed.signaled, "dsar should have been killed: exit \(crashed.status), \(crashed.stderr.suffix(500))")
        XCTAssertEqual(crashed.status, SIGKILL)
        let afterCrash = (try? FileSystem.list(s.root + "/outbox")) ?? []
        XCTAssertEqual(afterCrash.filter { !$0.hasPrefix(".") }, [], "an entry was published by a crashed seal")
        XCTAssertTrue(afterCrash.allSatisfy { $0.hasPrefix(".") && $0.hasSuffix(".partial") }, "\(afterCrash)")
        XCTAssertNotEqual(try s.records().first?.status, .completed)

        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 60)
        XCTAssertEqual(again.status, 0, again.stdout + again.stderr)
        let recs = try s.records()
        XCTAssertEqual(recs.count, 1)
        let rec = try XCTUnwrap(recs.first)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let outbox = try FileSystem.list(s.root + "/outbox")
        XCTAssertEqual(outbox, [rec.jobID], "exactly one entry and no staging left")
        XCTAssertEqual(s.allFiles("tmp"), [])
        XCTAssertEqual(s.allFiles("active"), [])
        XCTAssertEqual(s.allFiles().filter { $0.hasSuffix(".partial") || $0.hasSuffix(".tmp") }, [])
        let entry = s.root + "/outbox/" + rec.jobID
        let v = try s.dsar(["verify", entry, "-i", s.teamKeys + "/age.key"])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stdout.contains("match the manifest"), v.stdout)
        let zip = s.base + "/after-crash.zip"
        XCTAssertEqual(try ageDecrypt(entry + "/bundle.zip.age", identity: s.teamKeys + "/age.key", to: zip).status, 0)
        XCTAssertEqual(try runCommand(try tool("unzip"), ["-t", zip]).status, 0)
    }

    // MARK: - 8. Retention

    func testRetentionRemovesOnlyExpiredOutboxEntries() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize(extraConfig: "outbox_retention_days: 1\n")
        try s.drop("old.json", #"{"request_id": "OLD", "action": "export", "email": "alice@example.com"}"#)
        try s.drop("new.json", #"{"request_id": "NEW", "action": "export", "user_id": "7"}"#)
        let first = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertFalse(first.stdout.contains("removed"), first.stdout)
        let old = try XCTUnwrap(try s.records().first { $0.requestID == "OLD" }).jobID
        let new = try XCTUnwrap(try s.records().first { $0.requestID == "NEW" }).jobID
        XCTAssertEqual(Set(s.list("outbox")), [old, new])
        age(s.root + "/outbox/" + old, secondsAgo: 2 * 86400)
        age(s.root + "/outbox/" + new, secondsAgo: 20 * 3600)  // younger than one day: stays

        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("removed 1 outbox entries older than 1 days: \(old)"), r.stdout)
        XCTAssertFalse(r.stdout.contains(new), r.stdout)
        XCTAssertEqual(
            try FileSystem.list(s.root + "/outbox"), [new], "nothing else left in outbox/ (no .expired staging)")
        XCTAssertEqual(try s.dsar(["verify", s.root + "/outbox/" + new]).status, 0)
        // The job records stay (they hold no personal data); a further run removes nothing.
        XCTAssertEqual(try s.records().count, 2)
        let third = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertFalse(third.stdout.contains("removed"), third.stdout)
        XCTAssertEqual(s.list("outbox"), [new])
    }

    // MARK: - 9. Modes

    func assertPublishedModes(
        _ s: TempSpool, _ entry: String, _ context: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let st = try XCTUnwrap(try FileSystem.lstatus(entry), file: file, line: line)
        XCTAssertEqual(st.kind, .directory, file: file, line: line)
        XCTAssertEqual(
            st.mode & 0o007, 0,
            "\(context): the entry is accessible to others (mode \(String(st.mode & 0o7777, radix: 8)))", file: file,
            line: line)
        let outbox = try XCTUnwrap(try FileSystem.lstatus(s.root + "/outbox"), file: file, line: line)
        XCTAssertEqual(outbox.mode & 0o007, 0, "\(context): outbox/ is accessible to others", file: file, line: line)
        for name in ["bundle.zip.age", "manifest.json", "manifest.json.sig"] {
            let f = try XCTUnwrap(try FileSystem.lstatus(entry + "/" + name), file: file, line: line)
            XCTAssertEqual(f.kind, .regular, file: file, line: line)
            XCTAssertEqual(
                String(f.mode & 0o7777, radix: 8), "640", "\(context): \(name) should be 0640", file: file, line: line)
        }
    }

    func testPublishedFilesAre0640AndTheEntryIsNotWorldReadable() throws {
        let e = try export()
        try assertPublishedModes(e.spool, e.entry, "default umask")
    }

    /// The modes must not depend on the umask dsar runs under: 000 (too open) or 077 (a typical
    /// service-account umask, which must not hide the bundle from the privacy team's group).
    func testPublishedModesDoNotDependOnTheUmask() throws {
        for mask in ["000", "077"] {
            let s = try TempSpool()
            let dir = try makeConnectors(s)
            try s.initialize()
            try s.drop("req.json", #"{"request_id": "U", "action": "export", "email": "alice@example.com"}"#)
            let r = try runCommand(
                "/bin/sh",
                [
                    "-c", "umask \(mask); exec \"$0\" run --settle 0 --connectors \"$1\" --spool \"$2\"", dsarBinary,
                    dir, s.root,
                ])
            XCTAssertEqual(r.status, 0, r.stderr)
            let rec = try XCTUnwrap(try s.records().first)
            XCTAssertEqual(rec.status, .completed)
            try assertPublishedModes(s, s.root + "/outbox/" + rec.jobID, "umask \(mask)")
        }
    }
}
