import DSARTestSupport
import Foundation
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
        for tag in ["{{{name}}}", "{{& name}}", "{{=<% %>=}}<%&name%>"] {
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
}
