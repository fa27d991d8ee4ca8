import DSARTestSupport
import Foundation
import Mustache
import XCTest

@testable import DSARCore

/// The subject report (ReportModel + the built-in Mustache templates) rendered from the real
/// sample config (`dsar init`'s config.yaml) and the repository's sample connectors (connectors/*.yaml).
final class ReportModelTests: XCTestCase {
    /// The repository's `connectors/` directory.
    static let sampleConnectors = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("connectors").path

    /// A spool whose config.yaml is `text` (default: the one `dsar init` writes).
    func config(_ text: String = SpoolConfig.template, files: [String: String] = [:]) throws -> (SpoolConfig, TempSpool)
    {
        let s = try TempSpool()
        try FileManager.default.createDirectory(atPath: s.root, withIntermediateDirectories: true)
        for (name, content) in files {
            let path = s.root + "/" + name
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileSystem.writeAtomically(path, Array(content.utf8), mode: 0o644)
        }
        try FileSystem.writeAtomically(s.layout.config, Array(text.utf8), mode: 0o640)
        return (try SpoolConfig.load(s.layout), s)
    }

    func record(language: String?, status: JobStatus = .completed) -> JobRecord {
        var r = JobRecord(
            jobID: "01job", requestID: "T-1", action: .export, regulation: .gdpr, dryRun: false, status: status,
            receivedAt: "2026-11-30T10:00:00Z", claimedAt: "2026-11-30T10:00:00Z",
            initialDeadline: "2026-12-30T10:00:00Z", deadline: "2026-12-30T10:00:00Z", subject: "s",
            identifiers: [])
        r.language = language
        return r
    }

    /// A job over the sample connectors: shop-db finds `rows` customers (one with markup), every other source none.
    func job(language: String?, rows: Int = 2, status: JobStatus = .completed) throws -> FinishingJob {
        let configs = try ConnectorCatalog.load(dir: Self.sampleConnectors)
        let ids = [Identifier(type: "email", value: "alice@example.com")]
        let outcomes = configs.map { c -> ConnectorOutcome in
            var found: [FoundRecord] = []
            if c.name == "shop-db" {
                for k in 0..<rows {
                    found.append(
                        FoundRecord(
                            table: "customers", source: "/srv/dumps/secret-path/shop-2026-11-28.sql", line: 30 + k,
                            fields: [
                                JSONMember(key: "id", value: .number("\(1042 + k)")),
                                JSONMember(key: "email", value: .string("alice@example.com")),
                                JSONMember(key: "name", value: .string(k == 0 ? "<b>Alice</b> & \"Co\"" : "Alice")),
                            ], matchedOn: ["email"]))
                }
            }
            return ConnectorOutcome(
                name: c.name, metadata: c.metadata, status: .ok, findings: ConnectorFindings(found: found))
        }
        let request = DSARRequest(
            requestID: "T-1", action: .export, regulation: .gdpr, identifiers: ids, receivedAt: nil,
            language: language)
        return FinishingJob(
            record: record(language: language, status: status), request: request, identifiers: ids,
            outcomes: outcomes)
    }

    func render(_ job: FinishingJob, _ settings: ReportSettings) -> (readme: String, index: String) {
        let files = FindingsWriter.plan(job.outcomes, subject: job.identifiers).map(\.name)
        let r = SubjectReport.render(
            job, files: files, now: Date(timeIntervalSince1970: 1_796_000_000),
            settings: settings)
        return (r.readme, r.index)
    }

    func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    /// Every Art. 15(1)(a)–(h) and 15(2) item of the sample config and connectors, in the language
    /// asked for: the actual configured facts appear in index.html (escaped) and README.txt.
    func testEveryArticle15ItemOfTheSampleFactsAppearsInBothLanguages() throws {
        let (config, _) = try config()
        XCTAssertEqual(config.languages, ["en", "de"])
        let configs = try ConnectorCatalog.load(dir: Self.sampleConnectors)
        XCTAssertEqual(configs.count, 6)
        for c in configs { XCTAssertEqual(c.metadata.missingReportKeys, [], "\(c.name) lacks report facts") }
        let expected: [String: [String]] = [
            "en": [
                "Example Shop GmbH", "Musterstraße 1, 10115 Berlin, Germany", "privacy@shop.example",
                "Dr. Erika Beispiel", "dpo@shop.example",
                "Berlin Commissioner for Data Protection and Freedom of Information", "order fulfilment",
                "contract (Art. 6(1)(b) GDPR)", "invoices kept 10 years (tax law)", "customer account and orders",
                "collected from you when you ordered", "Stripe", "payment processor", "EU SCCs 2021/914",
                "outside the EU/EEA", "DHL Paket", "fraud screening of orders paid on invoice", "nobody outside",
                "Rectification", "Erasure", "Restriction", "Objection", "Portability",
            ],
            "de": [
                "Example Shop GmbH", "Musterstraße 1, 10115 Berlin, Germany", "privacy@shop.example",
                "Dr. Erika Beispiel", "dpo@shop.example",
                "Berliner Beauftragte für Datenschutz und Informationsfreiheit",
                "Abwicklung Ihrer Bestellungen", "Vertrag (Art. 6 Abs. 1 lit. b DSGVO)",
                "Rechnungen 10 Jahre (Steuerrecht)", "Kundenkonto und Bestellungen",
                "bei Ihrer Bestellung bei Ihnen erhoben", "Stripe", "Zahlungsdienstleister",
                "EU-Standardvertragsklauseln 2021/914", "außerhalb der EU/des EWR", "DHL Paket",
                "Betrugsprüfung bei Kauf auf Rechnung", "niemand außerhalb", "Berichtigung", "Löschung",
                "Einschränkung", "Widerspruch", "Datenübertragbarkeit",
            ],
        ]
        for (lang, facts) in expected {
            let (readme, index) = render(try job(language: lang), config.report)
            for f in facts {
                XCTAssertTrue(index.contains(esc(f)), "\(lang) index.html lacks \"\(f)\"")
                XCTAssertTrue(readme.contains(f), "\(lang) README.txt lacks \"\(f)\"")
            }
            // Every connector's facts, in this language (from the config, not the test's copy).
            for c in configs {
                for key in ["purpose", "legal_basis", "retention", "category", "source"] {
                    let t = try XCTUnwrap(c.metadata.text(key, lang), "\(c.name).\(key)")
                    XCTAssertTrue(index.contains(esc(t)), "\(lang) index.html lacks \(c.name).\(key) \"\(t)\"")
                    XCTAssertTrue(readme.contains(t), "\(lang) README.txt lacks \(c.name).\(key) \"\(t)\"")
                }
            }
            // The complaint link is the configured URL; the other language's texts are absent.
            XCTAssertTrue(index.contains("<a href=\"https://www.datenschutz-berlin.de/\">"), lang)
            XCTAssertTrue(index.contains("<html lang=\"\(lang)\">"), lang)
            let other = expected[lang == "en" ? "de" : "en"]!
            XCTAssertFalse(index.contains(esc(other[6])), "\(lang) report holds the other language's \(other[6])")
            // The data: a table per source table, only the file's base name, markup escaped.
            XCTAssertTrue(index.contains("<td>shop-2026-11-28.sql:30</td>"), index)
            XCTAssertFalse(index.contains("/srv/dumps") || readme.contains("/srv/dumps"), "server path shown")
            XCTAssertTrue(index.contains("<td>&lt;b&gt;Alice&lt;/b&gt; &amp; &quot;Co&quot;</td>"), index)
            XCTAssertFalse(index.contains("<b>Alice</b>"))
            XCTAssertTrue(readme.contains("name: <b>Alice</b> & \"Co\""), "README.txt is text, not escaped")
            XCTAssertTrue(index.contains("<a href=\"data/shop-db/customers.json\">"), "Art. 20 link")
        }
    }

    func testTheJobLanguageOrTheSpoolDefaultPicksTheTemplates() throws {
        let (config, _) = try config()
        XCTAssertEqual(SubjectReport.language(try job(language: nil), settings: config.report), "en")
        XCTAssertEqual(SubjectReport.language(try job(language: "de"), settings: config.report), "de")
        let (deFirst, _) = try self.config("languages: [ de, en ]\n")
        let (_, index) = render(try job(language: nil), deFirst.report)
        XCTAssertTrue(index.contains("Kopie Ihrer personenbezogenen Daten"), "the first language is the default")
        // Without controller facts the report says so instead of inventing them.
        XCTAssertTrue(index.contains("nicht angegeben"))
        XCTAssertFalse(index.contains("Example Shop GmbH"))
    }

    func testACCPARequestIsToldItsCCPARights() throws {
        let (config, _) = try config()
        for lang in ["en", "de"] {
            var j = try job(language: lang)
            j.record.regulation = .ccpa
            let (readme, index) = render(j, config.report)
            let optOut = lang == "en" ? "Opt out" : "Widerspruch</strong> gegen Verkauf"
            XCTAssertTrue(index.contains(optOut), "\(lang): \(index)")
            XCTAssertTrue(readme.contains(lang == "en" ? "Opt out of the sale" : "Widerspruch gegen Verkauf"), readme)
            XCTAssertFalse(index.contains("Art. 16") || readme.contains("Art. 16"), "\(lang): GDPR articles for CCPA")
            XCTAssertTrue(index.contains("California Consumer Privacy Act"), lang)
        }
    }

    func testBuiltInTemplatesHaveAStrictCSPNoScriptsNoExternalResourcesAndNeverUnescapedData() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/DSARCore/Bundle/Templates").path
        var seen = 0
        for lang in ReportTemplates.builtInLanguages {
            for name in ReportTemplates.names {
                let text = String(
                    decoding: try FileSystem.readFile("\(dir)/\(lang)/\(lang)-\(name).mustache"), as: UTF8.self)
                seen += 1
                XCTAssertFalse(text.contains("{{{") || text.contains("{{&"), "\(lang)/\(name) renders unescaped")
                guard name.hasSuffix(".html") else { continue }
                XCTAssertTrue(
                    text.contains(
                        #"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">"#
                    ), "\(lang)/\(name): CSP")
                XCTAssertFalse(text.lowercased().contains("<script"), "\(lang)/\(name)")
                XCTAssertFalse(text.contains("src="), "\(lang)/\(name): no external resources")
                XCTAssertTrue(text.contains("@media print"), "\(lang)/\(name): print stylesheet")
            }
        }
        XCTAssertEqual(seen, 6)
    }

    func testLargeTablesShowTheFirstRowsAndArePagedFiveHundredRowsAPage() throws {
        let (config, _) = try config()
        let j = try job(language: "en", rows: 1203)
        let files = FindingsWriter.plan(j.outcomes, subject: j.identifiers).map(\.name)
        let r = SubjectReport.render(j, files: files, now: Date(), settings: config.report)
        let pages = r.layout.pages.map(\.path)
        XCTAssertEqual(
            pages,
            ["report/shop-db/customers-1.html", "report/shop-db/customers-2.html", "report/shop-db/customers-3.html"])
        XCTAssertEqual(r.index.components(separatedBy: "<td>shop-2026-11-28.sql:").count - 1, ReportModel.indexRows)
        for p in pages { XCTAssertTrue(r.index.contains("<a href=\"\(p)\">"), p) }
        var total = 0
        for (k, p) in r.layout.pages.enumerated() {
            let page = SubjectReport.page(j, layout: r.layout, table: p.table, page: p.page, settings: config.report)
            XCTAssertEqual(page.path, pages[k])
            let rows = page.html.components(separatedBy: "<td>shop-2026-11-28.sql:").count - 1
            XCTAssertEqual(rows, k < 2 ? 500 : 203, page.path)
            total += rows
            XCTAssertTrue(page.html.contains("href=\"../../index.html\""))
            XCTAssertTrue(page.html.contains("Content-Security-Policy"))
        }
        XCTAssertEqual(total, 1203)
        // The last page holds the last record (line 30 + 1202).
        let last = SubjectReport.page(j, layout: r.layout, table: 0, page: 2, settings: config.report)
        XCTAssertTrue(last.html.contains("<td>shop-2026-11-28.sql:1232</td>"))
        XCTAssertTrue(last.html.contains("href=\"customers-2.html\""), "previous page link")
    }

    func testConfigProblemsNameTheFileAndLine() throws {
        // A template that does not parse: its file and line.
        let bad = "<html>\n<p>{{#sources}}\n{{name}}\n</html>\n"
        let s = try TempSpool()
        try FileManager.default.createDirectory(atPath: s.root + "/tpl/en", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(s.root + "/tpl/en/index.html.mustache", Array(bad.utf8), mode: 0o644)
        try FileSystem.writeAtomically(s.layout.config, Array("report_templates: tpl\n".utf8), mode: 0o640)
        XCTAssertThrowsError(try SpoolConfig.load(s.layout)) { e in
            let p = (e as? ConfigProblems)?.problems ?? []
            XCTAssertEqual(p.map(\.file), [s.root + "/tpl/en/index.html.mustache"], "\(e)")
            XCTAssertGreaterThan(p.first?.line ?? 0, 1, "\(e)")
            XCTAssertTrue(p.first?.message.contains("does not parse") ?? false, "\(e)")
        }
        // An override that would output a value unescaped (or change the delimiters) is refused.
        for tag in [
            "{{{name}}}", "{{& name}}", "{{=<% %>=}}<%&name%>", "{{% CONTENT_TYPE: TEXT}}{{name}}", "{{  &name}}",
            "{{\t{name}}}",
        ] {
            try FileSystem.writeAtomically(
                s.root + "/tpl/en/index.html.mustache", Array("<p>\n{{#sources}}\(tag){{/sources}}</p>\n".utf8),
                mode: 0o644)
            XCTAssertThrowsError(try SpoolConfig.load(s.layout), tag) { e in
                let p = (e as? ConfigProblems)?.problems ?? []
                XCTAssertEqual(p.map(\.line), [2], "\(e)")
                XCTAssertTrue(p.first?.message.contains("without escaping") ?? false, "\(e)")
            }
        }
        // A good override replaces the built-in index.html; the others stay built in.
        try FileSystem.writeAtomically(
            s.root + "/tpl/en/index.html.mustache",
            Array("<p>OURS {{requestRef}} {{#controller}}{{name}}{{/controller}}</p>\n".utf8), mode: 0o644)
        try FileSystem.writeAtomically(
            s.layout.config, Array("report_templates: tpl\ncontroller: { name: \"A<B\" }\n".utf8), mode: 0o640)
        let c = try SpoolConfig.load(s.layout)
        let (readme, index) = render(try job(language: nil), c.report)
        XCTAssertEqual(index, "<p>OURS T-1 A&lt;B</p>\n")
        XCTAssertTrue(readme.hasPrefix("COPY OF YOUR PERSONAL DATA"))

        for (yaml, line, key, what) in [
            ("languages: [ en, fr ]\n", 1, "languages", "no report templates for \"fr\""),
            (
                "supervisory_authority:\n  name: X\n  url: javascript:alert(1)\n", 3, "supervisory_authority.url",
                "https://"
            ),
            ("controller:\n  address: Somewhere\n", 2, "controller", "controller.name is missing"),
            ("dpo: { name: D }\n", 1, "dpo", "dpo.contact is missing"),
        ] {
            try FileSystem.writeAtomically(s.layout.config, Array(yaml.utf8), mode: 0o640)
            XCTAssertThrowsError(try SpoolConfig.load(s.layout), yaml) { e in
                let p = (e as? ConfigProblems)?.problems ?? []
                XCTAssertTrue(
                    p.contains { $0.line == line && $0.key.hasPrefix(key) && $0.message.contains(what) },
                    "\(yaml): \(p.map(\.description))")
            }
        }
    }

    func testConnectorFactsAreParsedAndATransferOutsideTheEEANeedsASafeguard() throws {
        let s = try TempSpool()
        let dir = s.base + "/c"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let common = "type: csv\npaths: [ x.csv ]\ncolumns: { email: email }\n"
        try FileSystem.writeAtomically(
            dir + "/a.yaml",
            Array(
                (common
                    + "purpose: { en: billing, de: Abrechnung }\nlegal_basis: contract\nsource: you\nautomated_decisions: none\ndisclosed_to: []\n")
                    .utf8), mode: 0o644)
        try FileSystem.writeAtomically(
            dir + "/b.yaml",
            Array(
                (common + "disclosed_to:\n  - { name: Acme, country: US }\n  - { category: hosting, country: de }\n")
                    .utf8), mode: 0o644)
        let (configs, problems) = try ConnectorCatalog.loadAll(dir: dir, checks: .init())
        let a = try XCTUnwrap(configs.first { $0.name == "a" })
        XCTAssertEqual(a.metadata.text("purpose", "de"), "Abrechnung")
        XCTAssertEqual(a.metadata.text("purpose", "en"), "billing")
        XCTAssertEqual(a.metadata.disclosedTo, [], "[] means nobody")
        XCTAssertEqual(a.metadata.missingReportKeys, ["category", "retention"])
        XCTAssertEqual(
            problems.map { "\(($0.file as NSString).lastPathComponent):\($0.line): \($0.key)" },
            ["b.yaml:5: disclosed_to[0].safeguard"], problems.map(\.description).joined(separator: "\n"))
        XCTAssertTrue(problems[0].message.contains("US is outside the EU/EEA"), problems[0].message)
    }

    func testARequestMayAskForOneOfTheSpoolLanguagesOnly() throws {
        let p = RequestParser(defaultRegulation: .gdpr, languages: ["en", "de"])
        XCTAssertEqual(
            try p.parse(Array(#"{"email": "a@b.example", "action": "export", "language": "de"}"#.utf8)).language, "de")
        XCTAssertNil(try p.parse(Array(#"{"email": "a@b.example", "action": "export"}"#.utf8)).language)
        for (body, why) in [
            (#"{"email": "a@b.example", "action": "export", "language": "fr"}"#, "this spool answers in: en, de"),
            (#"{"email": "a@b.example", "action": "export", "language": 7}"#, "must be a string"),
        ] {
            XCTAssertThrowsError(try p.parse(Array(body.utf8))) { e in
                XCTAssertTrue("\(e)".contains("\"language\"") && "\(e)".contains(why), "\(e)")
            }
        }
        XCTAssertThrowsError(
            try RequestParser().parse(Array(#"{"email": "a@b.example", "action": "export", "language": "de"}"#.utf8)))
    }

    /// `job`'s whole readable report: README.txt, index.html and every page, in bytes.
    func reportBytes(
        _ j: FinishingJob, _ settings: ReportSettings
    ) -> (total: Int, readme: String, index: String, pages: [String]) {
        let files = FindingsWriter.plan(j.outcomes, subject: j.identifiers).map(\.name)
        let r = SubjectReport.render(j, files: files, now: Date(), settings: settings)
        let pages = r.layout.pages.map {
            SubjectReport.page(j, layout: r.layout, table: $0.table, page: $0.page, settings: settings).html
        }
        return (
            r.readme.utf8.count + r.index.utf8.count + pages.reduce(0) { $0 + $1.utf8.count }, r.readme, r.index, pages
        )
    }

    /// F11: a schemaless log (1,000 records, 100 keys of their own each) is not rendered as a table
    /// of the 100,000 keys' union: each row lists its own fields, and the report stays within a small
    /// multiple of the records' size.
    func testASchemalessTableIsCompactAndTheReportGrowsWithTheDataNotRowsTimesKeys() throws {
        let (config, _) = try config()
        var j = try job(language: "en", rows: 0)
        let oi = try XCTUnwrap(j.outcomes.firstIndex { $0.name == "shop-db" })
        var found: [FoundRecord] = []
        var json = 0
        for i in 0..<1000 {
            let fields =
                [JSONMember(key: "user", value: .string("alice@example.com"))]
                + (0..<100).map { JSONMember(key: "k\(i)_\($0)", value: .number("1")) }
            json += JSONWriter().encode(.object(fields)).count
            found.append(
                FoundRecord(table: "w", source: "/srv/logs/w.jsonl", line: i + 1, fields: fields, matchedOn: ["email"]))
        }
        j.outcomes[oi].findings = ConnectorFindings(found: found)
        let layout = ReportLayout(j)
        let plan = try XCTUnwrap(layout.tables.first { $0.table == "w" })
        XCTAssertTrue(plan.compact)
        XCTAssertEqual(plan.columns, [])
        let r = reportBytes(j, config.report)
        XCTAssertEqual(r.pages.count, 2)
        XCTAssertLessThan(r.total, 3 * json, "report of \(r.total) bytes for \(json) bytes of records")
        // Each row holds its own fields, and only those.
        XCTAssertTrue(
            r.index.contains("<td>w.jsonl:1</td><td>user: alice@example.com<br>k0_0: 1<br>"),
            r.index.prefix(6000).description)
        XCTAssertFalse(r.index.contains("<th>k0_0</th>"))
        XCTAssertTrue(r.pages[1].contains("<td>w.jsonl:1000</td><td>user: alice@example.com<br>k999_0: 1<br>"))
        XCTAssertFalse(r.pages[1].contains("k0_0"), "page 2 holds no other record's keys")
        XCTAssertEqual(r.pages[1].components(separatedBy: "<td>w.jsonl:").count - 1, 500)
        XCTAssertTrue(r.readme.contains("  * found in w.jsonl:1\n      user: alice@example.com\n      k0_0: 1\n"))
        // de too.
        j.record.language = "de"
        let de = reportBytes(j, config.report)
        XCTAssertLessThan(de.total, 3 * json)
        XCTAssertTrue(de.index.contains("<th>Fundstelle</th><th>Daten</th>"), "de header")
        // A table within the cap keeps its columns.
        let narrow = try job(language: "en", rows: 3)
        let n = try XCTUnwrap(ReportLayout(narrow).tables.first { $0.table == "customers" })
        XCTAssertFalse(n.compact)
        XCTAssertEqual(n.columns, ["id", "email", "name"])
    }

    /// F14: a blank fact (`retention: ""`, `category: "   "`) is not a statement: `connectors check`
    /// names it as missing and the report says "not stated".
    func testBlankFactsCountAsMissingAndReadNotStated() throws {
        let s = try TempSpool()
        let dir = s.base + "/c"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            dir + "/a.yaml",
            Array(
                ("type: csv\npaths: [ x.csv ]\ncolumns: { email: email }\npurpose: billing\nlegal_basis: contract\n"
                    + "source: you\nautomated_decisions: none\ndisclosed_to: []\nretention: \"\"\ncategory: \"   \"\n"
                    + "description: { en: \" \", de: \"\" }\n").utf8), mode: 0o644)
        let (configs, problems) = try ConnectorCatalog.loadAll(dir: dir, checks: .init())
        XCTAssertEqual(problems.map(\.description), [])
        let a = try XCTUnwrap(configs.first)
        XCTAssertEqual(a.metadata.missingReportKeys, ["category", "retention"])
        XCTAssertNil(a.metadata.description)
        let w = ReportSettings.warnings(configs, config: nil, configFile: "config.yaml")
        XCTAssertEqual(w.count, 1)
        XCTAssertTrue(w.first?.message.contains("lacks category, retention") ?? false, "\(w)")
        let (config, _) = try config()
        var j = try job(language: "en")
        j.outcomes.append(
            ConnectorOutcome(name: "a", metadata: a.metadata, status: .ok, findings: ConnectorFindings(found: [])))
        let (readme, index) = render(j, config.report)
        XCTAssertTrue(readme.contains("\na\n  Records about you: 0\n  Category of data:  not stated\n"), readme)
        XCTAssertTrue(readme.contains("  Retention:         not stated\n  Came from:         you\n"), readme)
        XCTAssertTrue(index.contains("<li><strong>a</strong>: not stated</li>"), "category/retention")
        // Even a blank fact that reached the model some other way (an older job record) reads "not stated".
        j.outcomes[j.outcomes.count - 1].metadata.retention = "  "
        XCTAssertTrue(
            render(j, config.report).readme.contains("  Retention:         not stated\n  Came from:         you\n"))
        // A required text may not be blank.
        XCTAssertThrowsError(try self.config("controller: { name: \"  \" }\n")) { e in
            XCTAssertTrue("\(e)".contains("blank"), "\(e)")
        }
    }

    /// F13: "Records about you" says how many of them are other people's records that mention the subject.
    func testTheRecordCountSaysHowManyAreOtherPeoplesRecordsThatMentionTheSubject() throws {
        let (config, _) = try config()
        for (lang, readmeLine, indexText) in [
            (
                "en", "Records about you: 3 (1 of them are other people's records that mention you)",
                "3 records found (1 of them are other people's records that mention you)"
            ),
            (
                "de", "Datensätze über Sie: 3 (davon 1 Datensätze anderer Personen, die Sie erwähnen)",
                "3 Datensätze gefunden (davon 1 Datensätze anderer Personen, die Sie erwähnen)"
            ),
        ] {
            var j = try job(language: lang)
            let oi = try XCTUnwrap(j.outcomes.firstIndex { $0.name == "shop-db" })
            var f = j.outcomes[oi].findings
            f.found.append(
                FoundRecord(
                    table: "tickets", source: "/srv/t.sql", line: 9,
                    fields: [
                        JSONMember(key: "author", value: .string("bob@example.org")),
                        JSONMember(key: "body", value: .string("alice@example.com called")),
                    ], matchedOn: ["email"], mention: true, textFields: ["body"]))
            f.records = f.found.count
            j.outcomes[oi].findings = f
            let (readme, index) = render(j, config.report)
            XCTAssertTrue(readme.contains(readmeLine), readme)
            XCTAssertTrue(index.contains(indexText), index)
            // Sources without mentions keep the plain count.
            XCTAssertTrue(readme.contains(lang == "en" ? "Records about you: 0\n" : "Datensätze über Sie: 0\n"))
        }
    }

    /// The HTML templates escape on bytes (``ReportTemplates/ByteHTMLEscaping``): the output is byte for byte
    /// what Mustache's own HTML escaping gives, for markup, quotes, every ASCII byte, non-ASCII text and emoji,
    /// and a template keeps its lines (the pragma is prepended on line 1).
    func testByteHTMLEscapingRendersExactlyAsMustachesOwnHTMLEscaping() throws {
        let values = [
            "", "plain text", "<script>alert('x')</script>", "a & b \"quoted\" 'single' <tag attr=\"v\">",
            "&amp; already escaped &lt;", "Müller, Straße 5 — 東京 😀 e\u{301}", "line 1\nline 2\r\n\ttab",
            String(decoding: (1...127).map { UInt8($0) }, as: UTF8.self),
        ]
        let text = "<p>{{v}}</p>\n{{#list}}<li title=\"{{.}}\">{{.}}</li>\n{{/list}}"
        let mine = try ReportTemplates.compile(text, name: "index.html")
        let theirs = try MustacheTemplate(string: text)
        for v in values {
            let model: [String: Any] = ["v": v, "list": [v, v + "<&>"]]
            let got = mine.render(model)
            XCTAssertEqual(Array(got.utf8), Array(theirs.render(model).utf8), v)
            XCTAssertFalse(got.contains("<script>"), v)
        }
        XCTAssertEqual(
            ReportTemplates.ByteHTMLEscaping().escapeText("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
        // The pragma moves no line: a parse error still names the template's own line.
        let broken = "ok\n{{#open}}\n{{/other}}\n"
        var plainLine: Int?
        XCTAssertThrowsError(try MustacheTemplate(string: broken)) { e in
            plainLine = (e as? MustacheTemplate.ParserError)?.context.lineNumber
        }
        XCTAssertThrowsError(try ReportTemplates.compile(broken, name: "page.html")) { e in
            XCTAssertNotNil(plainLine)
            XCTAssertEqual((e as? MustacheTemplate.ParserError)?.context.lineNumber, plainLine)
        }
    }

    /// Every report model type answers Mustache's lookups itself (``MustacheParent``) instead of through
    /// Mirror: for each of them, reached from a real model with facts, sources, recipients, tables and
    /// pages, `child(named:)` gives exactly what Mirror gives (an optional unwrapped, nil when nil) for
    /// every stored property, and nil for a name it does not have.
    func testEveryReportModelTypeAnswersEachOfItsStoredPropertiesLikeMirror() throws {
        let (config, _) = try config()
        let j = try job(language: "en", rows: 1203)
        let layout = ReportLayout(j)
        let model = ReportModel(
            j, layout: layout, settings: config.report, language: "en", files: ["data/shop-db/customers.json"],
            now: Date(timeIntervalSince1970: 1_796_000_000))
        let page = ReportPage(j, layout: layout, table: 0, page: 1, language: "en")
        var checked: [String: Int] = [:]
        func unwrap(_ v: Any) -> Any? {
            let m = Mirror(reflecting: v)
            guard m.displayStyle == .optional else { return v }
            return m.children.first.map(\.value).flatMap(unwrap)
        }
        func walk(_ v: Any) {
            guard let v = unwrap(v) else { return }
            let m = Mirror(reflecting: v)
            if m.displayStyle == .collection {
                for c in m.children.prefix(60) { walk(c.value) }
                return
            }
            guard m.displayStyle == .struct, let parent = v as? MustacheParent else { return }
            let type = String(describing: type(of: v))
            checked[type, default: 0] += 1
            for c in m.children {
                guard let label = c.label else { continue }
                let want = unwrap(c.value)
                let got = parent.child(named: label)
                XCTAssertEqual(got == nil, want == nil, "\(type).\(label)")
                if let got, let want {
                    XCTAssertEqual(String(describing: got), String(describing: want), "\(type).\(label)")
                }
                walk(c.value)
            }
            XCTAssertNil(parent.child(named: "noSuchProperty"), type)
        }
        walk(model)
        walk(page)
        for t in ["ReportModel", "Source", "Table", "Row", "Field", "PageLink", "SearchedIdentifier", "ReportPage"] {
            XCTAssertNotNil(checked[t], "no \(t) in the model: the test does not reach it (checked: \(checked))")
        }
    }
}
