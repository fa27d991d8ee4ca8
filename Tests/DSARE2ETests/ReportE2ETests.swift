import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The report the data subject reads (index.html, README.txt, report/…html), through the real
/// `dsar` binary; bundles opened with the real `age`, extracted with `bsdtar`, and the HTML loaded
/// in a real browser (Debian `chromium`, headless) while a loopback listener counts connections.
final class ReportE2ETests: XCTestCase {
    func tool(_ name: String, package: String? = nil) throws -> String {
        guard let p = which(name) else {
            throw XCTSkip("this test uses the real `\(name)`; install the Debian package `\(package ?? name)`")
        }
        return p
    }

    static let facts = """
        controller:
          name: Beispiel Versand GmbH
          address: { en: "Hauptstraße 5, Hamburg, Germany", de: "Hauptstraße 5, Hamburg" }
          contact: privacy@versand.example
        dpo: { contact: dpo@versand.example }
        supervisory_authority:
          name: { en: Hamburg Commissioner for Data Protection, de: Hamburgische Beauftragte für Datenschutz }
          url: https://datenschutz-hamburg.de/
        languages: [ en, de ]

        """

    /// A CSV source with every Art. 15 fact (en/de) whose rows are `rows` (header email,name,comment).
    func makeSpool(rows: [String]) throws -> (TempSpool, String) {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            dir + "/data/customers.csv", Array((["email,name,comment"] + rows).joined(separator: "\n").utf8 + [0x0A]),
            mode: 0o644)
        try FileSystem.writeAtomically(
            dir + "/customers.yaml",
            Array(
                """
                name: customers
                type: csv
                paths: [ data/customers.csv ]
                columns: { email: email }
                description: { en: Customer list, de: Kundenliste }
                category: { en: contact data, de: Kontaktdaten }
                purpose: { en: shipping your parcels, de: Versand Ihrer Pakete }
                legal_basis: { en: "contract (Art. 6(1)(b) GDPR)", de: "Vertrag (Art. 6 Abs. 1 lit. b DSGVO)" }
                retention: { en: 2 years after the last order, de: 2 Jahre nach der letzten Bestellung }
                source: { en: given by you when ordering, de: von Ihnen bei der Bestellung angegeben }
                disclosed_to:
                  - { category: { en: carrier, de: Paketdienst }, name: ParcelCo, country: CH, safeguard: { en: adequacy decision, de: Angemessenheitsbeschluss } }
                automated_decisions: none

                """.utf8), mode: 0o644)
        try s.initialize(extraConfig: Self.facts)
        return (s, dir)
    }

    /// The extracted bundle of the job of `requestID` (age -d, then bsdtar -x).
    func extract(_ s: TempSpool, requestID: String) throws -> (JobRecord, String) {
        let rec = try XCTUnwrap(try s.records().first { $0.requestID == requestID }, requestID)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let zip = s.base + "/\(requestID).zip"
        let d = try runCommand(
            try tool("age"),
            ["-d", "-i", s.teamKeys + "/age.key", "-o", zip, s.root + "/outbox/\(rec.jobID)/bundle.zip.age"])
        XCTAssertEqual(d.status, 0, d.stderr)
        let out = s.base + "/x-\(requestID)"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let x = try runCommand(try tool("bsdtar", package: "libarchive-tools"), ["-xf", zip, "-C", out])
        XCTAssertEqual(x.status, 0, x.stderr)
        return (rec, out)
    }

    func read(_ path: String) throws -> String { String(decoding: try FileSystem.readFile(path), as: UTF8.self) }

    func testAGermanAndAnEnglishRequestEachGetTheReportInTheirLanguage() throws {
        let (s, dir) = try makeSpool(rows: ["alice@example.com,Alice,likes parcels", "bob@example.org,Bob,-"])
        try s.drop(
            "de.json", #"{"request_id": "R-DE", "action": "export", "email": "alice@example.com", "language": "de"}"#)
        try s.drop("en.json", #"{"request_id": "R-EN", "action": "export", "email": "alice@example.com"}"#)
        try s.drop(
            "fr.json", #"{"request_id": "R-FR", "action": "export", "email": "alice@example.com", "language": "fr"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 2, "exit 2: a request was rejected: " + r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("2 completed"), r.stdout)
        XCTAssertTrue(s.reason("fr.json").contains("\"language\""), s.reason("fr.json"))
        XCTAssertTrue(s.reason("fr.json").contains("this spool answers in: en, de"), s.reason("fr.json"))

        let (de, deDir) = try extract(s, requestID: "R-DE")
        let (en, enDir) = try extract(s, requestID: "R-EN")
        XCTAssertEqual(de.language, "de", "the job record keeps the request's language")
        XCTAssertEqual(en.language, "en", "else the spool default at claim time")
        let expected: [(String, String, [String])] = [
            (
                deDir, "de",
                [
                    "Kopie Ihrer personenbezogenen Daten", "Beispiel Versand GmbH", "Hauptstraße 5, Hamburg",
                    "privacy@versand.example", "dpo@versand.example", "Hamburgische Beauftragte für Datenschutz",
                    "Versand Ihrer Pakete", "Vertrag (Art. 6 Abs. 1 lit. b DSGVO)", "Kontaktdaten",
                    "2 Jahre nach der letzten Bestellung", "von Ihnen bei der Bestellung angegeben", "Paketdienst",
                    "ParcelCo", "Angemessenheitsbeschluss", "Berichtigung", "Löschung", "Einschränkung", "Widerspruch",
                    "Datenübertragbarkeit", "likes parcels",
                ]
            ),
            (
                enDir, "en",
                [
                    "Copy of your personal data", "Beispiel Versand GmbH", "Hauptstraße 5, Hamburg, Germany",
                    "privacy@versand.example", "dpo@versand.example", "Hamburg Commissioner for Data Protection",
                    "shipping your parcels", "contract (Art. 6(1)(b) GDPR)", "contact data",
                    "2 years after the last order", "given by you when ordering", "carrier", "ParcelCo",
                    "adequacy decision", "Rectification", "Erasure", "Restriction", "Objection", "Portability",
                    "likes parcels",
                ]
            ),
        ]
        for (out, lang, facts) in expected {
            let html = try read(out + "/index.html")
            let text = try read(out + "/README.txt")
            XCTAssertTrue(html.contains("<html lang=\"\(lang)\">"), lang)
            for f in facts {
                XCTAssertTrue(
                    html.contains(f.replacingOccurrences(of: "\"", with: "&quot;")), "\(lang) index.html: \(f)")
                XCTAssertTrue(text.lowercased().contains(f.lowercased()), "\(lang) README.txt: \(f)")
            }
            XCTAssertTrue(html.contains("<a href=\"https://datenschutz-hamburg.de/\">"), lang)
            XCTAssertTrue(html.contains("<a href=\"data/customers/customers.json\">"), lang)
            XCTAssertTrue(FileSystem.exists(out + "/data/customers/customers.json"))
            // Only the subject's row, and no server path (only the file's base name).
            XCTAssertFalse(html.contains("bob@example.org") || text.contains("bob@example.org"))
            XCTAssertTrue(html.contains("<td>customers.csv:2</td>"), html)
            XCTAssertFalse(html.contains(s.base) || text.contains(s.base), "a server path in the \(lang) report")
        }
    }

    func testConnectorsCheckWarnsAboutEveryMissingReportFactNamingTheKeysAndTheFile() throws {
        let (s, dir) = try makeSpool(rows: ["alice@example.com,Alice,-"])
        try FileSystem.writeAtomically(
            dir + "/bare.yaml",
            Array("name: bare\ntype: csv\npaths: [ data/customers.csv ]\ncolumns: { email: email }\npurpose: x\n".utf8),
            mode: 0o644)
        let r = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(r.status, 0, "warnings do not change the exit status: " + r.stdout + r.stderr)
        XCTAssertTrue(
            r.stdout.contains(
                "WARNING: connector \"bare\" lacks category, retention, legal_basis, source, disclosed_to, automated_decisions"
            ), r.stdout)
        XCTAssertTrue(r.stdout.contains("add them to \(dir)/bare.yaml"), r.stdout)
        XCTAssertEqual(
            r.stdout.components(separatedBy: "WARNING").count - 1, 1, "customers has every fact: \(r.stdout)")
        // The spool's own facts: still dsar init's example controller, no authority.
        let recipients = try read(s.layout.config).split(separator: "\n")[0]
        try FileSystem.writeAtomically(
            s.layout.config, Array("\(recipients)\ncontroller: { name: Example Shop GmbH }\n".utf8), mode: 0o640)
        let w = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(w.status, 0, w.stdout + w.stderr)
        XCTAssertTrue(
            w.stdout.contains("WARNING: \(s.layout.config): controller: is still dsar init's example"), w.stdout)
        XCTAssertTrue(w.stdout.contains("WARNING: \(s.layout.config): supervisory_authority: not set"), w.stdout)
        // dsar run says so too (a report would name the example controller).
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertTrue(run.stderr.contains("controller: is still dsar init's example"), run.stderr)
    }

    /// F11, F14, F10 through the real binary: a schemaless JSON-lines log (1,000 lines of the
    /// subject, 100 keys of their own each) makes a compact report within a small multiple of the
    /// log (not rows × keys); its blank facts are warned about and read "not stated"; its data file
    /// names the log by its base name.
    func testASchemalessLogMakesACompactReportAndBlankFactsReadNotStated() throws {
        let (s, dir) = try makeSpool(rows: ["alice@example.com,Alice,-"])
        var log: [UInt8] = []
        for i in 0..<1000 {
            var line = #"{"user":"alice@example.com""#
            for k in 0..<100 { line += ",\"k\(i)_\(k)\":1" }
            log += Array((line + "}\n").utf8)
        }
        try FileSystem.writeAtomically(dir + "/data/w.jsonl", log, mode: 0o644)
        try FileSystem.writeAtomically(
            dir + "/w.yaml",
            Array(
                ("name: w\ntype: log\npaths: [ data/w.jsonl ]\nformat: jsonl\nfields: { user: email }\n"
                    + "description: w\nerase: drop_line\nretention: \"\"\ncategory: \"   \"\n").utf8), mode: 0o644)
        let check = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertTrue(
            check.stdout.contains("WARNING: connector \"w\" lacks purpose, category, retention, legal_basis"),
            check.stdout)
        try s.drop("w.json", #"{"request_id": "R-W", "action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let (_, out) = try extract(s, requestID: "R-W")
        let files = try FileManager.default.subpathsOfDirectory(atPath: out).sorted()
        let pages = files.filter { $0.hasPrefix("report/w/") && $0.hasSuffix(".html") }
        XCTAssertEqual(pages.count, 2, "\(files)")
        var report = 0
        for f in files where f.hasSuffix(".html") || f == "README.txt" {
            report += Int(try XCTUnwrap(try FileSystem.status(out + "/" + f)).size)
        }
        XCTAssertLessThan(report, 3 * log.count, "report of \(report) bytes for a log of \(log.count)")
        let first = try read(out + "/" + pages[0])
        XCTAssertTrue(first.contains("<td>w.jsonl:1</td><td>user: alice@example.com<br>k0_0: 1<br>"), first)
        XCTAssertFalse(first.contains("<th>k0_0</th>"))
        let readme = try read(out + "/README.txt")
        XCTAssertTrue(readme.contains("Category of data:  not stated\n"), readme)
        XCTAssertTrue(readme.contains("Retention:         not stated\n"), readme)
        let data = try XCTUnwrap(files.first { $0.hasPrefix("data/w/") && $0.hasSuffix(".json") }, "\(files)")
        let items = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(try FileSystem.readFile(out + "/" + data))) as? [[String: Any]])
        XCTAssertEqual(items.count, 1000)
        XCTAssertEqual(Set(items.map { $0["source"] as? String ?? "-" }), ["w.jsonl"], "no server path")
    }

    // MARK: - Markup in records, in a real browser

    /// A loopback HTTP listener that counts the connections it gets (answering each with a 404).
    final class Listener: @unchecked Sendable {
        let fd: Int32
        let port: Int
        private let lock = NSLock()
        private var hits: [String] = []
        private var stopped = false

        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let b = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            guard b == 0, listen(fd, 16) == 0 else { throw TestFailure("cannot listen on 127.0.0.1") }
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
            }
            port = Int(UInt16(bigEndian: addr.sin_port))
            let t = Thread { [self] in self.loop() }
            t.start()
        }

        private func loop() {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 {
                    if lock.withLock({ stopped }) { return }
                    continue
                }
                var buf = [UInt8](repeating: 0, count: 4096)
                let n = recv(c, &buf, buf.count, 0)
                let line = n > 0 ? String(decoding: buf[0..<n], as: UTF8.self).split(separator: "\r\n").first : nil
                lock.withLock { hits.append(line.map(String.init) ?? "(connection)") }
                let answer = Array("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = send(c, answer, answer.count, Int32(MSG_NOSIGNAL))
                close(c)
            }
        }

        var connections: [String] { lock.withLock { hits } }

        func stop() {
            lock.withLock { stopped = true }
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    /// `chromium --headless --dump-dom file://PATH`: the DOM after loading (and running whatever would run).
    func dumpDOM(_ chromium: String, _ path: String, profile: String) throws -> String {
        let r = try runCommand(
            chromium,
            [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile)",
                "--virtual-time-budget=3000", "--dump-dom", "file://" + path,
            ], env: ["HOME": profile], timeout: 90)
        XCTAssertEqual(r.status, 0, "chromium: \(r.stderr)")
        return r.stdout
    }

    func testMarkupInRecordsIsShownAsTextAndLoadsNothingInChromium() throws {
        let chromium = try tool("chromium")
        let listener = try Listener()
        defer { listener.stop() }
        let base = "http://127.0.0.1:\(listener.port)"
        let payloads = [
            "<script>fetch('\(base)/script')</script>",
            "<script src=\(base)/script-src.js></script>",
            "\"><img src=x onerror=\"fetch('\(base)/onerror')\">",
            "<img src=\(base)/img.png>",
            "javascript:fetch('\(base)/js')",
            "<a href=\"javascript:fetch('\(base)/href')\">click</a>",
        ]
        func csv(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        // Enough of the subject's rows (60) that index.html shows 50 and the rest is on a page.
        var rows: [String] = []
        for k in 0..<60 {
            rows.append(
                "alice@example.com,\(csv(payloads[k % payloads.count])),\(csv(payloads[(k + 1) % payloads.count]))")
        }
        let (s, dir) = try makeSpool(rows: rows)
        try s.drop("x.json", #"{"request_id": "R-XSS", "action": "export", "email": "alice@example.com"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let (rec, out) = try extract(s, requestID: "R-XSS")
        // The pages are in the manifest with exact sizes and hashes (dsar verify checks every entry).
        let v = try s.dsar(["verify", "-i", s.teamKeys + "/age.key", s.root + "/outbox/" + rec.jobID])
        XCTAssertEqual(v.status, 0, v.stdout + v.stderr)
        let manifest = try read(s.root + "/outbox/\(rec.jobID)/manifest.json")
        XCTAssertTrue(manifest.contains("\"report/customers/customers-1.html\""), manifest)
        let page = out + "/report/customers/customers-1.html"
        XCTAssertTrue(FileSystem.exists(page), "60 rows make a page: \(s.allFiles())")
        let profile = s.base + "/chromium-profile"

        for file in [out + "/index.html", page] {
            let dom = try dumpDOM(chromium, file, profile: profile)
            XCTAssertTrue(dom.contains("alice@example.com"), "the page rendered: \(dom.prefix(500))")
            XCTAssertFalse(dom.lowercased().contains("<script"), "\(file): a script element in the DOM")
            XCTAssertFalse(dom.lowercased().contains("<img"), "\(file): an img element in the DOM")
            // Every link element points into the bundle or at the configured authority.
            for part in dom.components(separatedBy: "<a href=\"").dropFirst() {
                let href = String(part.prefix { $0 != "\"" })
                XCTAssertTrue(
                    ["#", "data/", "report/", "customers-", "../../index.html", "https://datenschutz-hamburg.de/"]
                        .contains { href.hasPrefix($0) }, "\(file): a link to \(href)")
            }
            XCTAssertTrue(dom.contains("href=\"javascript:fetch"), "the javascript: link is there as text")
            // The payloads are there, as text (the DOM serialiser escapes text nodes).
            XCTAssertTrue(dom.contains("&lt;script&gt;fetch('\(base)/script')&lt;/script&gt;"), file)
            XCTAssertTrue(dom.contains("&lt;img src=\(base)/img.png&gt;"), file)
            XCTAssertTrue(dom.contains("javascript:fetch('\(base)/js')"), file)
        }
        XCTAssertEqual(listener.connections, [], "the report made the browser connect")

        // Positive control: the same payloads unescaped in a page without CSP do reach the listener.
        let control = s.base + "/control.html"
        try FileSystem.writeAtomically(
            control, Array(("<!DOCTYPE html><html><body>" + payloads.joined(separator: "\n") + "</body></html>").utf8),
            mode: 0o644)
        let dom = try dumpDOM(chromium, control, profile: profile)
        XCTAssertTrue(dom.lowercased().contains("<img"), dom)
        XCTAssertTrue(
            waitUntil(timeout: 10) { !listener.connections.isEmpty }, "the control page made no connection: \(dom)")
    }

    /// The fast report renderer and swift-mustache (`DSAR_REPORT_RENDERER=mustache`) write the same
    /// bytes for every file of real bundles: English and German, a table paged over several pages,
    /// markup and quotes in the values. Two spools, the same requests and the same frozen clock;
    /// only the job ids differ, and they are replaced before the comparison.
    func testTheFastRendererWritesTheSameReportAsSwiftMustache() throws {
        var rows: [String] = []
        for k in 0..<1203 {
            rows.append("alice@example.com,\"Al<i>ce & 'co' \"\"#\(k)\"\"\",note \(k) <script>x</script> é")
        }
        rows.append("bob@example.org,Bob,-")
        var trees: [[String: String]] = []
        for renderer in ["fast", "mustache"] {
            let (s, dir) = try makeSpool(rows: rows)
            try s.drop(
                "de.json",
                #"{"request_id": "R-DE", "action": "export", "email": "alice@example.com", "language": "de"}"#)
            try s.drop("en.json", #"{"request_id": "R-EN", "action": "export", "email": "alice@example.com"}"#)
            var env = ["DSAR_NOW": "2026-12-01T10:00:00Z"]
            if renderer == "mustache" { env["DSAR_REPORT_RENDERER"] = "mustache" }
            let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], env: env)
            XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
            var tree: [String: String] = [:]
            for id in ["R-DE", "R-EN"] {
                let (rec, out) = try extract(s, requestID: id)
                let files = try XCTUnwrap(FileManager.default.subpathsOfDirectory(atPath: out))
                for f in files.sorted() where f.hasSuffix(".html") || f.hasSuffix(".txt") {
                    tree[id + "/" + f] = try read(out + "/" + f).replacingOccurrences(of: rec.jobID, with: "JOB")
                }
            }
            trees.append(tree)
        }
        XCTAssertEqual(trees[0].keys.sorted(), trees[1].keys.sorted())
        XCTAssertGreaterThan(
            trees[0].keys.filter { $0.contains("report/") }.count, 4, "the table is paged: \(trees[0].keys.sorted())")
        for (name, fast) in trees[0].sorted(by: { $0.key < $1.key }) {
            let a = Array(fast.utf8)
            let b = Array((trees[1][name] ?? "").utf8)
            guard a != b else { continue }
            let at = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            func near(_ x: [UInt8]) -> String {
                String(decoding: x[max(0, at - 60)..<min(x.count, at + 60)], as: UTF8.self)
            }
            XCTFail("\(name) differs at byte \(at): fast …\(near(a))… mustache …\(near(b))…")
        }
        XCTAssertTrue(trees[0]["R-EN/index.html"]?.contains("Al&lt;i&gt;ce &amp; &#39;co&#39;") ?? false)
    }
}
