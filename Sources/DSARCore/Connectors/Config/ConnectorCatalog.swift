import Foundation
import Yams

/// Reads every connector config in a directory, reporting all problems as `file:line: key: what`.
package enum ConnectorCatalog {
    static let commonKeys = [
        "name", "type", "paths", "description", "category", "purpose", "retention", "timeout", "retries", "placeholder",
        "legal_basis", "source", "disclosed_to", "automated_decisions",
    ]
    static let ruleKeys = ["match", "text", "erase", "redact", "reason", "expand"]

    /// The YAML files of a connectors directory, sorted.
    package static func files(in dir: String) throws -> [String] {
        guard FileSystem.exists(dir) else {
            throw DSARError(
                .config,
                "connectors directory \(dir) does not exist (set --connectors or `connectors:` in config.yaml)",
                path: dir)
        }
        return try FileSystem.list(dir).filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }
            .map { dir + "/" + $0 }
    }

    /// The identifier types every spool knows; others must be declared in `config.yaml`
    /// (`identifier_types:`), so that a typo such as `emial` is an error, not a search for nothing.
    package static let builtinTypes: Set<String> = ["email", "user_id", "phone", "ip"]

    /// How deeply configs are checked against the data they name.
    package struct Checks: Sendable {
        /// Identifier types allowed (nil: any well-formed name).
        package var knownTypes: Set<String>?
        /// Read the header of every CSV source that exists (cheap: the first record).
        package var headers: Bool
        /// Everything `connectors check` checks: every glob matches a file, dumps hold the configured tables and columns.
        package var sources: Bool

        package init(knownTypes: Set<String>? = nil, headers: Bool = false, sources: Bool = false) {
            self.knownTypes = knownTypes
            self.headers = headers || sources
            self.sources = sources
        }
    }

    /// Loads every connector; throws ``ConfigProblems`` listing every problem of every file.
    package static func load(dir: String, checkSources: Bool = false) throws -> [ConnectorConfig] {
        try load(dir: dir, checks: Checks(sources: checkSources))
    }

    /// Loads every connector with `checks`; throws ``ConfigProblems`` listing every problem of every file.
    package static func load(dir: String, checks: Checks) throws -> [ConnectorConfig] {
        let (configs, problems) = try loadAll(dir: dir, checks: checks)
        if !problems.isEmpty { throw ConfigProblems(problems) }
        return configs
    }

    /// Loads every connector with `checks`, returning the usable configs and every problem.
    package static func loadAll(dir: String, checks: Checks) throws -> ([ConnectorConfig], [ConfigProblem]) {
        var configs: [ConnectorConfig] = []
        var problems: [ConfigProblem] = []
        for file in try files(in: dir) {
            do {
                let (c, p) = try parse(file: file, checks: checks)
                problems += p
                if let c { configs.append(c) }
            } catch let e as ConfigProblems {
                problems += e.problems
            } catch let e as DSARError {
                // One unusable file is one problem: the other files are still checked.
                problems.append(ConfigProblem(file: file, line: 0, key: "-", message: e.message))
            } catch {
                problems.append(ConfigProblem(file: file, line: 0, key: "-", message: "\(error)"))
            }
        }
        var names: [String: String] = [:]
        for c in configs {
            if let other = names[c.name] {
                problems.append(
                    ConfigProblem(
                        file: c.file, line: 1, key: "name",
                        message: "\"\(c.name)\" is also the name of the connector in \(other); names must be unique"))
            }
            names[c.name] = c.file
        }
        return (configs, problems)
    }

    /// Parses one file. Returns the config (nil if unusable) and its problems.
    package static func parse(file: String, checkSources: Bool = false) throws -> (ConnectorConfig?, [ConfigProblem]) {
        try parse(file: file, checks: Checks(sources: checkSources))
    }

    /// Parses one file with `checks`. Returns the config (nil if unusable) and its problems.
    package static func parse(file: String, checks: Checks) throws -> (ConnectorConfig?, [ConfigProblem]) {
        let checkSources = checks.sources
        let y = try YAMLMap.load(file: file)
        y.knownTypes = checks.knownTypes
        let dir = (file as NSString).deletingLastPathComponent
        let base = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = y.string("name") ?? base
        if name.isEmpty {
            y.problem(
                "name",
                "is empty: give the connector a name (letters, digits, '-', '_', '.'), or leave the key out to use the file name"
            )
        } else if !isSafeName(name) {
            y.problem(
                "name", "\"\(name)\" may only contain letters, digits, '-', '_' and '.' (it names output folders)")
        }
        guard let typeText = y.string("type", required: true) else { return (nil, y.problems) }
        guard let kind = ConnectorRegistry.kind(named: typeText) else {
            y.problem(
                "type",
                "\"\(typeText)\" is not a connector type; expected one of: \(ConnectorRegistry.names.joined(separator: ", "))"
            )
            return (nil, y.problems)
        }
        return parse(kind, y, name: name, file: file, checks: checks)
    }

    /// The common keys of a connector of `kind`, then the kind's own (``ConnectorKind/parse(_:_:)``
    /// and ``ConnectorKind/check(_:of:_:_:)``); any other key is a problem.
    static func parse<K: ConnectorKind>(
        _ kind: K.Type, _ y: YAMLMap, name: String, file: String, checks: Checks
    ) -> (ConnectorConfig?, [ConfigProblem]) {
        var context = ConnectorParseContext(file: file, checks: checks)
        let dir = context.dir
        let metadata = reportFacts(y)
        var timeout: Double?
        var retries: Int?
        var placeholder: String?
        if let t = y.seconds("timeout", range: 1...86400) { timeout = t }
        if let r = y.int("retries", range: 0...10) { retries = r }
        if let p = y.string("placeholder") { placeholder = p }
        var allowed = commonKeys
        var globs: [String] = []
        var followSymlinks: Bool?
        var maxFileBytes: Int64?
        if K.readsFiles {
            globs = y.strings("paths", required: true) ?? []
            if y.has("paths") && globs.filter({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }).isEmpty {
                y.problem(
                    "paths", "lists no file: give the files or globs this connector searches (relative to this file)")
            }
            allowed += ["follow_symlinks", "max_file_bytes"]
            if let f = y.bool("follow_symlinks") { followSymlinks = f }
            if let m = y.int("max_file_bytes", range: 1...Int.max) { maxFileBytes = Int64(m) }
        }
        let settings = K.parse(y, &context)
        var c = ConnectorConfig(
            name: name, file: file, paths: globs.map { $0.hasPrefix("/") ? $0 : dir + "/" + $0 }, metadata: metadata,
            settings: settings)
        if let timeout { c.timeoutSeconds = timeout }
        if let retries { c.retries = retries }
        if let placeholder { c.placeholder = placeholder }
        if let followSymlinks { c.followSymlinks = followSymlinks }
        c.maxFileBytes = maxFileBytes
        c.warnings = context.warnings
        if K.readsFiles && checks.sources {
            for (g, abs) in zip(globs, c.paths) where ConnectorConfig.glob(abs).isEmpty {
                y.problem("paths", "no file matches \"\(g)\" (looked for \(abs))")
            }
            // Whatever a glob matches that is not a regular file is a problem, never skipped.
            for e in c.inspectSources() {
                if let problem = e.problem { y.problem("paths", "\(e.path) is not read: \(problem)") }
            }
        }
        K.check(settings, of: c, y, checks)
        y.rejectUnknownKeys(allowed: allowed + K.keys)
        return (y.problems.isEmpty ? c : nil, y.problems)
    }

    /// The Art. 15 facts of a connector (common keys); each free-text one a string or a map language → text.
    static func reportFacts(_ y: YAMLMap) -> SourceMetadata {
        var translations: [String: [String: String]] = [:]
        func text(_ key: String) -> String? {
            guard let t = y.localized(key) else { return nil }
            if !t.byLanguage.isEmpty { translations[key] = t.byLanguage }
            return t.common ?? t.text("en")
        }
        var m = SourceMetadata(
            description: text("description"), category: text("category"), purpose: text("purpose"),
            retention: text("retention"), legalBasis: text("legal_basis"), origin: text("source"),
            disclosedTo: y.disclosures("disclosed_to"), automatedDecisions: text("automated_decisions"))
        if !translations.isEmpty { m.translations = translations }
        return m
    }

    static func isSafeName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && !s.hasPrefix(".")
            && s.utf8.allSatisfy {
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F
                    || $0 == 0x2E
            }
    }

    static func fieldRules(_ m: YAMLMap) -> [FieldRule] {
        var out: [FieldRule] = []
        for col in m.keys {
            if col.trimmingCharacters(in: .whitespaces).isEmpty {
                m.problem(col, "a column or field name cannot be empty")
                continue
            }
            if m.isMap(col), let sub = m.map(col) {
                sub.knownTypes = m.knownTypes
                guard let t = sub.string("type", required: true) else { continue }
                if !IdentifierNormalizer.isValidTypeName(t) {
                    sub.problem("type", "\"\(t)\" is not an identifier type name")
                } else if let why = sub.unknownType(t) {
                    sub.problem("type", why)
                }
                out.append(FieldRule(column: col, type: t, expand: sub.bool("expand") ?? true))
                sub.rejectUnknownKeys(allowed: ["type", "expand"])
            } else if let t = m.string(col) {
                if !IdentifierNormalizer.isValidTypeName(t) {
                    m.problem(
                        col,
                        "\"\(t)\" is not an identifier type (email, user_id, phone, ip or a custom name in lower case)")
                } else if let why = m.unknownType(t) {
                    m.problem(col, why)
                }
                out.append(FieldRule(column: col, type: t, expand: true))
            }
        }
        return out
    }

    static func rules(_ m: YAMLMap, matchKey: String, allowRetainOnly: Bool) -> RecordRules {
        var r = RecordRules()
        if let mm = m.map(matchKey) {
            mm.knownTypes = m.knownTypes
            r.match = fieldRules(mm)
        }
        if m.bool("expand") == false {
            r.match = r.match.map {
                var f = $0
                f.expand = false
                return f
            }
        }
        r.text = m.strings("text") ?? []
        for (key, list) in [("text", r.text)]
        where list.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            m.problem(key, "a column name cannot be empty")
        }
        if let e = m.string("erase") {
            if let s = EraseStrategy(rawValue: e), s != .dropLine, s != .plugin {
                r.erase = s
            } else {
                m.problem("erase", "expected delete, redact or retain")
            }
        }
        r.redact = m.strings("redact") ?? []
        r.reason = m.string("reason")
        if r.erase == .retain && (r.reason ?? "").isEmpty {
            m.problem("erase", "retain needs a `reason:` (the legal hold or statutory retention, shown in the receipt)")
        }
        if r.erase == .redact && r.redact.isEmpty {
            m.problem("erase", "redact needs `redact:` listing the columns to overwrite")
        }
        if r.match.isEmpty && r.text.isEmpty && m.path.contains(".") {
            m.problemHere("give `match:` (column: identifier type) or `text:` columns")
        }
        return r
    }

    /// A `tables:` section (SQL dumps, live databases): the rules per table and the tables in the
    /// order of the YAML file, problems reported on `y`.
    static func tables(_ y: YAMLMap) -> ([String: RecordRules], [String]) {
        var rules: [String: RecordRules] = [:]
        var order: [String] = []
        guard let t = y.map("tables", required: true) else { return (rules, order) }
        for table in t.keys {
            guard let m = t.map(table) else { continue }
            m.knownTypes = y.knownTypes
            rules[table] = ConnectorCatalog.rules(m, matchKey: "match", allowRetainOnly: true)
            order.append(table)
            m.rejectUnknownKeys(allowed: ConnectorCatalog.ruleKeys)
        }
        if t.keys.isEmpty { y.problem("tables", "list at least one table") }
        return (rules, order)
    }
}
