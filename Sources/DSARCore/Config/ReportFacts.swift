import Foundation

/// Free text of the subject report that may differ per language: one text for every language
/// (`purpose: order fulfilment`) or a map language → text (`purpose: { en: …, de: … }`).
package struct LocalizedText: Sendable, Equatable, Codable {
    /// The text for every language without its own.
    package var common: String?
    /// Language code → text.
    package var byLanguage: [String: String]

    package init(_ common: String? = nil, byLanguage: [String: String] = [:]) {
        self.common = common
        self.byLanguage = byLanguage
    }

    /// The text in `language`; else the common text; else the first of `fallback` that has one.
    package func text(_ language: String, fallback: [String] = []) -> String? {
        if let t = byLanguage[language] { return t }
        if let common { return common }
        for l in fallback { if let t = byLanguage[l] { return t } }
        return byLanguage.keys.sorted().first.flatMap { byLanguage[$0] }
    }

    package init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) {
            self.init(s)
        } else {
            self.init(nil, byLanguage: try c.decode([String: String].self))
        }
    }

    package func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let common, byLanguage.isEmpty { try c.encode(common) } else { try c.encode(byLanguage) }
    }
}

/// Who receives a source's data (GDPR Art. 15(1)(c)) and, for a country outside the EU/EEA, the
/// transfer safeguard (Art. 15(2), Art. 46).
package struct Disclosure: Sendable, Equatable, Codable {
    package var name: String?
    /// A category of recipients, e.g. "payment processor".
    package var category: LocalizedText?
    /// ISO 3166-1 alpha-2 code, e.g. `US`.
    package var country: String
    /// e.g. "EU SCCs 2021/914"; needed when `country` is outside the EU/EEA.
    package var safeguard: LocalizedText?

    package init(name: String? = nil, category: LocalizedText? = nil, country: String, safeguard: LocalizedText? = nil)
    {
        self.name = name
        self.category = category
        self.country = country
        self.safeguard = safeguard
    }

    /// Whether `country` lies outside the EU/EEA (a third-country transfer).
    package var isThirdCountry: Bool { !Disclosure.eea.contains(country) }

    /// The EU member states and Iceland, Liechtenstein, Norway (ISO 3166-1 alpha-2).
    package static let eea: Set<String> = [
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU",
        "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
    ]
}

/// The controller (Art. 13(1)(a)): who holds the data.
package struct ControllerFacts: Sendable, Equatable {
    package var name: LocalizedText
    package var address: LocalizedText?
    package var contact: String?
}

/// The data protection officer.
package struct DPOFacts: Sendable, Equatable {
    package var name: String?
    package var contact: String
}

/// The supervisory authority the subject may complain to (Art. 15(1)(f)).
package struct AuthorityFacts: Sendable, Equatable {
    package var name: LocalizedText
    /// An `https://` (or `http://`) address, from config only.
    package var url: String
}

/// What config.yaml says for the subject report: controller, DPO, authority, rights text, languages, templates.
package struct ReportSettings: Sendable {
    package var controller: ControllerFacts?
    package var dpo: DPOFacts?
    package var authority: AuthorityFacts?
    /// Replaces the built-in text on the subject's rights.
    package var rights: LocalizedText?
    /// Languages requests may ask for; the first is the spool default.
    package var languages: [String] = ["en"]
    /// The templates (built in, or overridden per file by `report_templates:`).
    package var templates = ReportTemplates.builtIn

    package init() {}

    /// The spool's default language.
    package var defaultLanguage: String { languages.first ?? "en" }

    /// The config keys these settings are read from.
    package static let keys = ["controller", "dpo", "supervisory_authority", "rights", "languages", "report_templates"]

    /// Reads the keys from `y`, recording problems on it (file and line).
    package static func parse(_ y: YAMLMap, resolve: (String) -> String) -> ReportSettings {
        var s = ReportSettings()
        if let m = y.map("controller") {
            if let name = m.localized("name", required: true) {
                s.controller = ControllerFacts(
                    name: name, address: m.localized("address"), contact: m.string("contact"))
            }
            m.rejectUnknownKeys(allowed: ["name", "address", "contact"])
        }
        if let m = y.map("dpo") {
            if let contact = m.string("contact", required: true) {
                s.dpo = DPOFacts(name: m.string("name"), contact: contact)
            }
            m.rejectUnknownKeys(allowed: ["name", "contact"])
        }
        if let m = y.map("supervisory_authority") {
            let name = m.localized("name", required: true)
            let url = m.string("url", required: true)
            if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) || url.contains(where: \.isWhitespace)
            {
                m.problem("url", "expected an https:// address (the link the subject follows to complain)")
            } else if let name, let url {
                s.authority = AuthorityFacts(name: name, url: url)
            }
            m.rejectUnknownKeys(allowed: ["name", "url"])
        }
        s.rights = y.localized("rights")
        var dir: String?
        if let d = y.string("report_templates") {
            dir = resolve(d)
            if !FileSystem.exists(dir!) {
                y.problem("report_templates", "directory \(d) does not exist (looked for \(dir!))")
                dir = nil
            }
        }
        if let langs = y.strings("languages") {
            var ok: [String] = []
            for l in langs {
                if !ReportSettings.isLanguageCode(l) {
                    y.problem(
                        "languages", "\"\(l)\" is not a language code; use lower-case ISO 639-1 codes such as en, de")
                } else if !ReportTemplates.builtInLanguages.contains(l) && !ReportTemplates.overrideHasAll(dir, l) {
                    y.problem(
                        "languages",
                        "no report templates for \"\(l)\": built-in languages are \(ReportTemplates.builtInLanguages.joined(separator: ", ")); for another, put \(ReportTemplates.names.map { "\(l)/\($0).mustache" }.joined(separator: ", ")) into report_templates:"
                    )
                } else if ok.contains(l) {
                    y.problem("languages", "\"\(l)\" is listed twice")
                } else {
                    ok.append(l)
                }
            }
            if langs.isEmpty { y.problem("languages", "list at least one language, e.g. [ en ]") }
            if !ok.isEmpty { s.languages = ok }
        }
        if let dir {
            s.templates = ReportTemplates.loading(overrides: dir, languages: s.languages, key: y)
        }
        return s
    }

    /// `en`, `de`, `pt-br`: a lower-case ISO 639-1 code, optionally with a region.
    package static func isLanguageCode(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts[0].count == 2 || parts[0].count == 3 else { return false }
        return parts.allSatisfy { p in !p.isEmpty && p.count <= 8 && p.utf8.allSatisfy { $0 >= 0x61 && $0 <= 0x7A } }
    }
}

extension SourceMetadata {
    /// The connector keys the subject report needs (Art. 15(1)); ``missingReportKeys`` names those not set.
    package static let reportKeys = [
        "purpose", "category", "retention", "legal_basis", "source", "disclosed_to", "automated_decisions",
    ]

    /// The report keys this connector does not set (`dsar connectors check` warns about them).
    package var missingReportKeys: [String] {
        var out: [String] = []
        if purpose == nil { out.append("purpose") }
        if category == nil { out.append("category") }
        if retention == nil { out.append("retention") }
        if legalBasis == nil { out.append("legal_basis") }
        if origin == nil { out.append("source") }
        if disclosedTo == nil { out.append("disclosed_to") }
        if automatedDecisions == nil { out.append("automated_decisions") }
        return out
    }
}

extension YAMLMap {
    /// Free text: a string, or a map language → string. A blank text (`""`, `"   "`) states
    /// nothing: it counts as not given (a required one is a problem), so the report says "not stated".
    package func localized(_ key: String, required: Bool = false) -> LocalizedText? {
        func isBlank(_ t: String) -> Bool { t.allSatisfy(\.isWhitespace) }
        if isMap(key), let m = map(key) {
            var by: [String: String] = [:]
            var bad = false
            var blank = false
            for k in m.keys {
                if !ReportSettings.isLanguageCode(k) {
                    m.problem(k, "expected a language code (en, de, …) mapped to the text in that language")
                    bad = true
                } else if let t = m.string(k) {
                    if isBlank(t) { blank = true } else { by[k] = t }
                } else {
                    bad = true
                }
            }
            if by.isEmpty && !bad && (!blank || required) {
                problem(key, "give the text, or a map such as { en: …, de: … }")
            }
            return by.isEmpty ? nil : LocalizedText(nil, byLanguage: by)
        }
        guard let t = string(key, required: required) else { return nil }
        if isBlank(t) {
            if required { problem(key, "is blank: give the text") }
            return nil
        }
        return LocalizedText(t)
    }

    /// `disclosed_to:` — a list of `{name or category, country, safeguard}`; `[]` means nobody.
    package func disclosures(_ key: String) -> [Disclosure]? {
        guard has(key) else { return nil }
        guard let items = maps(key) else { return nil }
        var out: [Disclosure] = []
        for m in items {
            let name = m.string("name").flatMap { $0.allSatisfy(\.isWhitespace) ? nil : $0 }
            let category = m.localized("category")
            if name == nil && category == nil {
                m.problemHere("give the recipient's `name:` or `category:` (e.g. category: payment processor)")
            }
            guard let country = m.string("country", required: true) else { continue }
            let code = country.uppercased()
            if code.count != 2 || !code.utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) {
                m.problem("country", "\"\(country)\" is not an ISO 3166-1 alpha-2 country code (e.g. DE, IE, US)")
                continue
            }
            let d = Disclosure(name: name, category: category, country: code, safeguard: m.localized("safeguard"))
            if d.isThirdCountry && d.safeguard == nil {
                m.problem(
                    "safeguard",
                    "\(code) is outside the EU/EEA: name the transfer safeguard (GDPR Art. 46, e.g. \"EU SCCs 2021/914\" or \"adequacy decision\")"
                )
            }
            m.rejectUnknownKeys(allowed: ["name", "category", "country", "safeguard"])
            out.append(d)
        }
        return out
    }
}

extension ReportSettings {
    /// The controller name `dsar init` writes as an example: a report must not name it.
    package static let exampleControllerName = "Example Shop GmbH"

    /// What `dsar connectors check` warns about (not errors): each connector lacking report facts
    /// (naming the keys and its file), and spool report facts still missing or still the example.
    package static func warnings(
        _ configs: [ConnectorConfig], config: SpoolConfig?, configFile: String
    )
        -> [ConfigProblem]
    {
        var out: [ConfigProblem] = []
        for c in configs {
            let missing = c.metadata.missingReportKeys
            guard !missing.isEmpty else { continue }
            out.append(
                ConfigProblem(
                    file: c.file, line: 1, key: "report",
                    message:
                        "connector \"\(c.name)\" lacks \(missing.joined(separator: ", ")): the subject's report (GDPR Art. 15(1)) says \"not stated\" for them; add them to \(c.file)"
                ))
        }
        if let r = config?.report {
            if r.controller == nil {
                out.append(
                    ConfigProblem(
                        file: configFile, line: 1, key: "controller",
                        message:
                            "not set: the subject's report cannot say who holds the data (controller: {name, address, contact})"
                    ))
            } else if r.controller?.name.text("en") == exampleControllerName {
                out.append(
                    ConfigProblem(
                        file: configFile, line: 1, key: "controller",
                        message:
                            "is still dsar init's example (\(exampleControllerName)): put your organisation's facts in controller:, dpo:, supervisory_authority:"
                    ))
            }
            if r.authority == nil {
                out.append(
                    ConfigProblem(
                        file: configFile, line: 1, key: "supervisory_authority",
                        message: "not set: the subject's report cannot name the authority to complain to ({name, url})")
                )
            }
        }
        return out
    }
}
