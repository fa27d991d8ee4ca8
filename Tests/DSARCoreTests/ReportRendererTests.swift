import DSARTestSupport
import Foundation
import Mustache
import XCTest

@testable import DSARCore

/// ``ReportRenderer`` renders byte for byte what swift-mustache renders: over the built-in templates
/// with report models, and over generated templates of its subset with generated context trees.
final class ReportRendererTests: XCTestCase {
    typealias M = ReportModel

    static let nasty = "<b>Ä&Ö</b> \"quoted\" 'single' — 名前 😀"

    func recipient(_ k: Int, third: Bool, safeguard: String?, more: Bool) -> M.Recipient {
        M.Recipient(
            recipientName: k == 0 ? nil : "Rec\(k) <\(k)>", recipientCategory: k == 1 ? nil : "Cat & \(k)",
            country: third ? "US" : "DE", thirdCountry: third, safeguard: safeguard, more: more)
    }

    func rows(_ n: Int, columns: [String], compact: Bool) -> [M.Row] {
        (0..<n).map { r in
            if compact {
                let fields = (0..<(r % 4)).map { M.Field(column: "k\($0)", value: $0 == 1 ? Self.nasty : "v\(r)\n  x") }
                return M.Row(
                    location: "dump.sql:\(r + 1)",
                    cells: [fields.map { "\($0.column): \($0.value)" }.joined(separator: "\n")],
                    fields: fields, compact: true)
            }
            let cells = columns.enumerated().map { c, _ in (r + c) % 3 == 0 ? "" : c == 1 ? Self.nasty : "\(r)-\(c)" }
            return M.Row(
                location: "f.jsonl:\(r)", cells: cells,
                fields: zip(columns, cells).filter { !$0.1.isEmpty }.map { M.Field(column: $0.0, value: $0.1) },
                compact: false)
        }
    }

    func table(_ source: String, _ name: String, rows n: Int, compact: Bool) -> M.Table {
        let columns = compact ? [] : ["id", "name & <x>", "e-mail"]
        let shown = min(n, M.indexRows)
        let pages =
            n > M.indexRows
            ? (0..<((n + M.pageRows - 1) / M.pageRows)).map { k in
                M.PageLink(
                    href: "report/\(source)/\(name)-\(k + 1).html", number: k + 1, from: k * M.pageRows + 1,
                    to: min((k + 1) * M.pageRows, n))
            } : []
        return M.Table(
            source: source, name: name, columns: columns, compact: compact,
            rows: rows(shown, columns: columns, compact: compact), total: n, shown: shown, paged: !pages.isEmpty,
            pages: pages)
    }

    func source(_ k: Int, facts: Bool, tables: [M.Table], recipients: [M.Recipient]?) -> M.Source {
        let records = tables.reduce(0) { $0 + $1.total }
        return M.Source(
            name: "src-\(k) \(Self.nasty)", anchor: "src-\(k)", description: facts ? "Shop & <db>" : nil,
            category: facts ? "contact data" : nil, purpose: facts ? "Bestellungen ausführen" : nil,
            legalBasis: facts ? "Art. 6(1)(b)" : nil, retention: facts ? "10 years" : nil,
            origin: facts ? "you" : nil, automatedDecisions: k % 3 == 1 ? "scoring \"x\"" : nil,
            noAutomatedDecisions: k % 3 == 2, recipients: recipients ?? [], noRecipients: recipients?.isEmpty == true,
            recipientsUnknown: recipients == nil, records: records, incomplete: k % 2 == 1,
            status: k % 2 == 1 ? "partial" : "ok", error: k % 2 == 1 ? "timeout <5s>" : nil,
            files: tables.isEmpty ? [] : ["data/src-\(k)/records.json", "data/src-\(k)/records.csv"],
            mentions: k, masked: k * 2, hasOthers: k > 0, hasMentions: k > 0, tables: tables)
    }

    /// Models from empty to full: no sources, nil optionals, paged and compact tables, recipients with
    /// and without safeguards, markup and non-ASCII everywhere.
    func models(_ language: String) -> [M] {
        let party = M.Party(name: "ACME <GmbH> & Co", address: "Straße 1, München", contact: "dpo@acme.example")
        let empty = M(
            language: language, requestRef: "", jobID: "01J", preparedOn: "2026-12-01", gdpr: false, ccpa: true,
            dryRun: false, controller: nil, dpo: nil, authority: nil, rights: nil, identifiers: [], sources: [],
            files: [], incomplete: false, nothingFound: true)
        var full = M(
            language: language, requestRef: "REQ-\"1\" <x>", jobID: "01JOB", preparedOn: "2026-12-01", gdpr: true,
            ccpa: false, dryRun: true, controller: party, dpo: M.Party(name: nil, address: nil, contact: "d@x"),
            authority: M.Authority(name: "BfDI & Co", url: "https://bfdi.example/?a=1&b='2'"),
            rights: "Sie haben Rechte: <Auskunft> & 'Löschung'",
            identifiers: [M.SearchedIdentifier(type: "email", value: "a&b@<x>.example")],
            sources: [
                source(0, facts: true, tables: [table("s0", "customers", rows: 3, compact: false)], recipients: []),
                source(
                    1, facts: false, tables: [table("s1", "log", rows: 7, compact: true)],
                    recipients: [
                        recipient(0, third: false, safeguard: nil, more: true),
                        recipient(1, third: true, safeguard: "SCC <2021>", more: true),
                        recipient(2, third: true, safeguard: nil, more: false),
                    ]),
                source(
                    2, facts: true,
                    tables: [
                        table("s2", "orders", rows: 1201, compact: false),
                        table("s2", "events", rows: 60, compact: true),
                    ], recipients: nil),
                source(
                    3, facts: false, tables: [], recipients: [recipient(3, third: false, safeguard: nil, more: false)]),
            ], files: ["data/s0/records.json", "data/ä & <b>.csv"], incomplete: true, nothingFound: false)
        var partial = full
        partial.controller = M.Party(name: "Only name", address: nil, contact: nil)
        partial.dpo = M.Party(name: "", address: "", contact: "")
        partial.rights = ""
        partial.requestRef = "0"
        partial.sources = [source(4, facts: false, tables: [], recipients: [])]
        partial.identifiers = [
            M.SearchedIdentifier(type: "email", value: ""), M.SearchedIdentifier(type: "phone", value: "+49 ' 1"),
        ]
        partial.dryRun = false
        full.sources[0].tables[0].rows[0].cells = []
        return [empty, full, partial]
    }

    func pages(_ language: String) -> [ReportPage] {
        let t = table("s", "orders", rows: 10, compact: false)
        let c = table("s", "log", rows: 10, compact: true)
        return [
            ReportPage(
                language: language, requestRef: "R<1>", source: "s & t", table: "orders", number: 1, count: 3, from: 1,
                to: 500, total: 1201, columns: t.columns, compact: false, rows: t.rows, previous: nil,
                next: "orders-2.html", path: "report/s/orders-1.html"),
            ReportPage(
                language: language, requestRef: "R", source: "s", table: "log 'x'", number: 3, count: 3, from: 1001,
                to: 1201, total: 1201, columns: [], compact: true, rows: c.rows, previous: "log-2.html?a=1&b=2",
                next: nil, path: "report/s/log-3.html"),
            ReportPage(
                language: language, requestRef: "", source: "", table: "", number: 0, count: 0, from: 0, to: 0,
                total: 0, columns: [], compact: false, rows: [], previous: "", next: "", path: ""),
        ]
    }

    func testTheBuiltInTemplatesTakeTheFastPathAndRenderExactlyAsSwiftMustache() throws {
        let t = ReportTemplates.builtIn
        var compared = 0
        for lang in ReportTemplates.builtInLanguages {
            let cases: [(String, Any)] =
                models(lang).flatMap { [("index.html", $0 as Any), ("README.txt", $0 as Any)] }
                + pages(lang).map { ("page.html", $0 as Any) }
            for (k, (name, model)) in cases.enumerated() {
                let reference = t.renderMustache(name, language: lang, model)
                let fast = try XCTUnwrap(
                    t.renderFast(name, language: lang, model), "\(lang)/\(name) #\(k): not the fast path")
                XCTAssertEqual(String(decoding: fast, as: UTF8.self), reference, "\(lang)/\(name) #\(k)")
                XCTAssertEqual(fast, Array(reference.utf8), "\(lang)/\(name) #\(k)")
                // And what callers get is the fast one (no DSAR_REPORT_RENDERER in the test environment).
                XCTAssertEqual(t.render(name, language: lang, model), reference)
                compared += 1
            }
        }
        XCTAssertEqual(compared, 2 * (3 * 2 + 3))
        // A page of 500 rows, both ways: the time is printed (not asserted: CI machines vary).
        var big = pages("en")[0]
        big.rows = rows(ReportModel.pageRows, columns: ["id", "name & <x>", "e-mail"], compact: false)
        let clock = ContinuousClock()
        var fastPage: [UInt8] = []
        var mustachePage = ""
        let fastTime = clock.measure {
            for _ in 0..<10 { fastPage = t.renderFast("page.html", language: "en", big) ?? [] }
        }
        let mustacheTime = clock.measure {
            for _ in 0..<10 { mustachePage = t.renderMustache("page.html", language: "en", big) }
        }
        XCTAssertEqual(fastPage, Array(mustachePage.utf8))
        print("ReportRendererTests: page.html of 500 rows ×10: fast \(fastTime), swift-mustache \(mustacheTime)")
        // The models really reach the data: markup escaped in HTML, as it is in README.txt.
        let full = models("en")[1]
        XCTAssertTrue(
            t.renderFast("index.html", language: "en", full).map { String(decoding: $0, as: UTF8.self) }?
                .contains("&lt;b&gt;Ä&amp;Ö&lt;/b&gt; &quot;quoted&quot; &#39;single&#39; — 名前 😀") ?? false)
        XCTAssertTrue(
            t.renderFast("README.txt", language: "de", full).map { String(decoding: $0, as: UTF8.self) }?
                .contains(Self.nasty) ?? false)
    }

    /// The renderer takes strings, integers, booleans and arrays to have no children (swift-mustache
    /// looks them up through Mirror): so does Mirror.
    func testMirrorFindsNoNamedChildrenInStringsIntegersBooleansAndArrays() {
        let values: [Any] = ["abc", "", 0, 42, true, false, ["a"], [M.Field(column: "c", value: "v")], [Int]()]
        for v in values {
            XCTAssertTrue(Mirror(reflecting: v).children.allSatisfy { $0.label == nil }, "\(v)")
        }
    }

    func testTemplatesOutsideTheSubsetCompileToNilAndRenderThroughSwiftMustache() throws {
        for text in [
            "<p>{{>partial}}</p>", "<p>{{uppercased(requestRef)}}</p>", "{{#sources}}{{first()}}{{/sources}}",
            "{{$block}}x{{/block}}", "{{<parent}}{{/parent}}", "{{.requestRef}}", "{{{requestRef}}}",
        ] {
            let m = try ReportTemplates.compile(text, name: "index.html")
            XCTAssertNil(ReportRenderer(m, escaping: .html), text)
            XCTAssertNil(ReportTemplates.Compiled(m, name: "index.html").fast, text)
        }
        // Through a real report_templates override: the partial renders as nothing, the transform runs.
        let s = try TempSpool()
        try FileManager.default.createDirectory(atPath: s.root + "/tpl/en", withIntermediateDirectories: true)
        try FileSystem.writeAtomically(
            s.root + "/tpl/en/index.html.mustache", Array("<p>{{uppercased(requestRef)}}{{>footer}}</p>\n".utf8),
            mode: 0o644)
        try FileSystem.writeAtomically(
            s.root + "/tpl/en/README.txt.mustache", Array("Ref {{requestRef}}\n{{#gdpr}}\nGDPR\n{{/gdpr}}\n".utf8),
            mode: 0o644)
        try FileSystem.writeAtomically(s.layout.config, Array("report_templates: tpl\n".utf8), mode: 0o640)
        let t = try SpoolConfig.load(s.layout).report.templates
        var model = models("en")[1]
        model.requestRef = "req-ä<1>"
        XCTAssertNil(t.renderFast("index.html", language: "en", model))
        XCTAssertEqual(t.render("index.html", language: "en", model), "<p>REQ-Ä&lt;1&gt;</p>\n")
        XCTAssertEqual(
            t.render("index.html", language: "en", model), t.renderMustache("index.html", language: "en", model))
        // An override inside the subset takes the fast path.
        XCTAssertEqual(t.renderFast("README.txt", language: "en", model), Array("Ref req-ä<1>\nGDPR\n".utf8))
        XCTAssertEqual(t.render("README.txt", language: "en", model), "Ref req-ä<1>\nGDPR\n")
        // A model value swift-mustache gives its own meaning (a lambda) is rendered by swift-mustache.
        let lambda = MustacheLambda { "<\($0)>" }
        let plain = try ReportTemplates.compile("a{{x}}b{{#x}}c{{/x}}", name: "index.html")
        let fast = try XCTUnwrap(ReportRenderer(plain, escaping: .html))
        XCTAssertNil(fast.render(["x": lambda]))
        XCTAssertNil(fast.render(["x": Optional<String>.none as Any]))
        XCTAssertEqual(fast.render(["x": "<"]), Array(plain.render(["x": "<"]).utf8))
    }

    // MARK: Generated templates and contexts

    /// A context node of the generated trees: answers `child(named:)` like the report's model types.
    struct Node: MustacheParent {
        var children: [String: Any]
        func child(named name: String) -> Any? { children[name] }
    }

    /// A value that is not a MustacheParent: looked up through Mirror (an optional field as its value).
    struct Plain {
        var a: String
        var b: Int?
        var c: Bool
    }

    static let names = ["a", "b", "c", "d", "ok"]

    func randomValue(_ g: inout SplitMix64, depth: Int) -> Any? {
        switch g.int(depth > 2 ? 6 : 10) {
        case 0: return nil
        case 1: return g.chance(0.5)
        case 2: return g.pick(["", "x", "<&>\"'", "ü ß 😀", "{{a}}", "0", "false", "line\nbreak"])
        case 3: return g.pick([0, 1, -7, 123_456])
        case 4: return Plain(a: g.pick(["p", "<p>"]), b: g.chance(0.5) ? nil : 3, c: g.chance(0.5))
        case 5: return g.pick(["", "s1", "s&2"]).isEmpty ? [String]() : ["s1", "s&2", ""]
        case 6, 7: return randomNode(&g, depth: depth + 1)
        case 8: return (0..<g.int(4)).map { _ in randomNode(&g, depth: depth + 1) }
        default: return [Bool]() as Any
        }
    }

    func randomNode(_ g: inout SplitMix64, depth: Int) -> Node {
        var c: [String: Any] = [:]
        for n in Self.names where g.chance(0.6) {
            if let v = randomValue(&g, depth: depth) { c[n] = v }
        }
        return Node(children: c)
    }

    /// A random template of the subset: nested sections and inverted sections, standalone and inline
    /// tags, indentation, blank lines, `\r\n`, comments, text with `{` and `}`.
    func randomTemplate(_ g: inout SplitMix64, depth: Int) -> String {
        var out = ""
        for _ in 0..<g.int(6) {
            switch g.int(depth > 2 ? 5 : 8) {
            case 0: out += g.pick(["x", "text ", " { ", "a}b", "}", "{ {x", "ü", "<p>", "&amp;", "x{y"])
            case 1: out += g.pick(["\n", "\r\n", "\n\n", "  ", "\t", " \n", "\r\n  "])
            case 2:
                let n = g.pick(Self.names + [".", "a.b", "b.c", "a.b.c", "d.ok", "a.a"])
                out += g.pick(["{{\(n)}}", "{{ \(n) }}"])
            case 3:
                out += g.pick(["{{! c }}", "{{!multi\nline}}", "\n{{! standalone }}\n", "  {{!x}}\r\n"])
            case 4: out += g.pick(["", "\n", "  "]) + "{{.}}"
            default:
                let n = g.pick(Self.names + [".", "a.b", "c.ok"])
                let open = g.chance(0.5) ? "#" : "^"
                let pre = g.pick(["", "\n", "  ", "\n  ", "\r\n", "\t"])
                let afterOpen = g.pick(["", "\n", "\r\n", " \n", "x"])
                let preClose = g.pick(["", "\n", "  ", "\r\n "])
                let afterClose = g.pick(["", "\n", "\r\n", "y"])
                out +=
                    pre + "{{\(open)\(n)}}" + afterOpen + randomTemplate(&g, depth: depth + 1) + preClose + "{{/\(n)}}"
                    + afterClose
            }
        }
        return out
    }

    func testGeneratedTemplatesAndContextsRenderExactlyAsSwiftMustache() throws {
        var ran = 0
        var unparsed = 0
        for seed in UInt64(1)...3000 {
            var g = SplitMix64(state: seed)
            let text = randomTemplate(&g, depth: 0)
            let model = randomNode(&g, depth: 0)
            for name in ["index.html", "README.txt"] {
                let m: MustacheTemplate
                do { m = try ReportTemplates.compile(text, name: name) } catch {
                    if unparsed < 3 { print("seed \(seed): does not parse: \(text.debugDescription): \(error)") }
                    unparsed += 1
                    continue
                }
                guard let fast = ReportRenderer(m, escaping: name.hasSuffix(".txt") ? .text : .html) else {
                    XCTFail("seed \(seed) \(name): not compiled: \(text.debugDescription)")
                    continue
                }
                let reference = Array(m.render(model).utf8)
                guard let got = fast.render(model) else {
                    XCTFail("seed \(seed) \(name): render gave up on \(model)")
                    continue
                }
                if got != reference {
                    XCTFail(
                        "seed \(seed) \(name): template \(text.debugDescription) with \(model)\nmustache: \(String(decoding: reference, as: UTF8.self).debugDescription)\nfast:     \(String(decoding: got, as: UTF8.self).debugDescription)"
                    )
                }
                ran += 1
            }
        }
        print("ReportRendererTests: \(ran) generated cases compared, \(unparsed) templates did not parse")
        XCTAssertGreaterThan(ran, 5000)
        XCTAssertLessThan(unparsed, 100)
    }
}
