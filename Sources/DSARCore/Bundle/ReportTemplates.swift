import Foundation
import Mustache

/// The Mustache templates of the subject report, per language: `index.html`, `page.html` (one page
/// of a large table) and `README.txt`. Built in (embedded in the binary) for English and German;
/// `report_templates: DIR` in config.yaml overrides any of them with `DIR/<lang>/<name>.mustache`.
/// `{{x}}` escapes HTML; `README.txt` is rendered as text (no escaping).
package struct ReportTemplates: Sendable {
    /// The template names (file `<name>.mustache`).
    package static let names = ["index.html", "page.html", "README.txt"]
    /// Languages with built-in templates.
    package static let builtInLanguages = ["en", "de"]

    /// One template: as swift-mustache parsed it, and its ``ReportRenderer`` when it uses only
    /// what that renders (nil: rendered by swift-mustache).
    struct Compiled: Sendable {
        var mustache: MustacheTemplate
        var fast: ReportRenderer?

        init(_ mustache: MustacheTemplate, name: String) {
            self.mustache = mustache
            fast = ReportRenderer(mustache, escaping: name.hasSuffix(".txt") ? .text : .html)
        }
    }

    /// language → name → template.
    private var templates: [String: [String: Compiled]]

    /// `DSAR_REPORT_RENDERER=mustache`: render every template with swift-mustache (read once).
    static let forceMustache = ProcessInfo.processInfo.environment["DSAR_REPORT_RENDERER"] == "mustache"

    /// The built-in templates.
    package static let builtIn: ReportTemplates = {
        var t: [String: [String: Compiled]] = [:]
        let sources: [(String, String, [UInt8])] = [
            ("en", "index.html", PackageResources.en_index_html_mustache),
            ("en", "page.html", PackageResources.en_page_html_mustache),
            ("en", "README.txt", PackageResources.en_README_txt_mustache),
            ("de", "index.html", PackageResources.de_index_html_mustache),
            ("de", "page.html", PackageResources.de_page_html_mustache),
            ("de", "README.txt", PackageResources.de_README_txt_mustache),
        ]
        for (lang, name, bytes) in sources {
            do {
                t[lang, default: [:]][name] = Compiled(
                    try compile(String(decoding: bytes, as: UTF8.self), name: name), name: name)
            } catch {
                preconditionFailure("built-in report template \(lang)/\(name).mustache does not parse: \(error)")
            }
        }
        return ReportTemplates(templates: t)
    }()

    /// Parses a template; `README.txt` is set to text mode (no HTML escaping) and the HTML templates
    /// to ``ByteHTMLEscaping`` (the same escaping as Mustache's own, on bytes), without moving their lines.
    static func compile(_ text: String, name: String) throws -> MustacheTemplate {
        _ = registered
        let type = name.hasSuffix(".txt") ? "TEXT" : ByteHTMLEscaping.name
        let pragma = "{{% CONTENT_TYPE: \(type)}}"
        return try MustacheTemplate(string: pragma + text)
    }

    /// Registers ``ByteHTMLEscaping`` with Mustache, once.
    private static let registered: Void = MustacheContentTypes.register(
        ByteHTMLEscaping(), named: ByteHTMLEscaping.name)

    /// HTML escaping of `{{x}}` as Mustache's built-in `HTML` content type does it (`<` `>` `&` `"` `'`
    /// become `&lt;` `&gt;` `&amp;` `&quot;` `&#39;`), but over UTF-8 bytes, and a value without any of
    /// them is returned as it is: Mustache's own looks up every Character in a dictionary, which was
    /// a tenth of the time of sealing a large export. (Unlike it, a `<` followed by a combining mark
    /// is escaped too: every one of those bytes is.)
    struct ByteHTMLEscaping: MustacheContentType {
        static let name = "DSAR_HTML"

        func escapeText(_ text: String) -> String {
            guard text.utf8.contains(where: ByteHTMLEscaping.special) else { return text }
            var out: [UInt8] = []
            out.reserveCapacity(text.utf8.count + 32)
            for b in text.utf8 {
                switch b {
                case 0x3C: out += "&lt;".utf8
                case 0x3E: out += "&gt;".utf8
                case 0x26: out += "&amp;".utf8
                case 0x22: out += "&quot;".utf8
                case 0x27: out += "&#39;".utf8
                default: out.append(b)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }

        static func special(_ b: UInt8) -> Bool { b == 0x3C || b == 0x3E || b == 0x26 || b == 0x22 || b == 0x27 }
    }

    /// Whether `dir/<lang>/` holds every template (a language without built-in templates needs all).
    package static func overrideHasAll(_ dir: String?, _ lang: String) -> Bool {
        guard let dir else { return false }
        return names.allSatisfy { FileSystem.exists("\(dir)/\(lang)/\($0).mustache") }
    }

    /// The first tag of `text` that would output a value unescaped (`{{{x}}}`, `{{& x}}`), change
    /// the delimiters (`{{=<% %>=}}`, which could hide one) or switch the escaping off with a pragma
    /// (`{{% CONTENT_TYPE: TEXT}}`), with its 1-based line; spaces after `{{` do not hide one.
    static func unescapedTag(_ text: String) -> (Int, String)? {
        let b = Array(text.utf8)
        var line = 1
        var i = 0
        while i + 1 < b.count {
            if b[i] == 0x0A { line += 1 }
            guard b[i] == 0x7B, b[i + 1] == 0x7B else {
                i += 1
                continue
            }
            var j = i + 2
            while j < b.count, b[j] == 0x20 || b[j] == 0x09 { j += 1 }
            if j < b.count, [0x7B, 0x26, 0x3D, 0x25].contains(b[j]) {  // { & = %
                return (line, "`{{\(Character(UnicodeScalar(b[j])))`")
            }
            i += 2
        }
        return nil
    }

    /// The built-in templates with those in `dir/<lang>/<name>.mustache` in their place; a file that
    /// does not parse is a problem naming the file and line (recorded on `key`'s file).
    static func loading(overrides dir: String, languages: [String], key y: YAMLMap) -> ReportTemplates {
        var t = builtIn
        for lang in languages {
            for name in names {
                let path = "\(dir)/\(lang)/\(name).mustache"
                guard FileSystem.exists(path) else { continue }
                do {
                    let text = String(decoding: try FileSystem.readFile(path, limit: 4 << 20), as: UTF8.self)
                    if let (line, tag) = unescapedTag(text) {
                        y.sink.problems.append(
                            ConfigProblem(
                                file: path, line: line, key: "report_templates",
                                message:
                                    "\(tag) outputs values without escaping (or switches escaping off); a data source's values must never reach the report unescaped (use {{name}})"
                            ))
                        continue
                    }
                    t.templates[lang, default: [:]][name] = Compiled(try compile(text, name: name), name: name)
                } catch let e as MustacheTemplate.ParserError {
                    y.sink.problems.append(
                        ConfigProblem(
                            file: path, line: e.context.lineNumber, key: "report_templates",
                            message:
                                "template does not parse: \(e.error) at column \(e.context.columnNumber) (\(e.context.line.trimmingCharacters(in: .whitespaces)))"
                        ))
                } catch {
                    y.sink.problems.append(
                        ConfigProblem(
                            file: path, line: 0, key: "report_templates", message: "cannot read the template: \(error)")
                    )
                }
            }
        }
        return t
    }

    /// Renders template `name` of `language` (falling back to English) with `model`: through
    /// ``ReportRenderer`` when the template compiled to one (unless `DSAR_REPORT_RENDERER=mustache`),
    /// else through swift-mustache.
    package func render(_ name: String, language: String, _ model: Any) -> String {
        let template = compiled(name, language: language)
        if !Self.forceMustache, let fast = template.fast, let bytes = fast.render(model) {
            return String(decoding: bytes, as: UTF8.self)
        }
        return template.mustache.render(model)
    }

    /// Renders with swift-mustache only (the reference the fast renderer is tested against).
    func renderMustache(_ name: String, language: String, _ model: Any) -> String {
        compiled(name, language: language).mustache.render(model)
    }

    /// Renders with ``ReportRenderer`` only: nil when the template or the model is outside its subset.
    func renderFast(_ name: String, language: String, _ model: Any) -> [UInt8]? {
        compiled(name, language: language).fast?.render(model)
    }

    private func compiled(_ name: String, language: String) -> Compiled {
        guard let template = templates[language]?[name] ?? templates["en"]?[name] else {
            preconditionFailure("no report template \(name)")
        }
        return template
    }
}
