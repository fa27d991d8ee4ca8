import Foundation
import Yams

/// Reads every connector config in a directory, reporting all problems as `file:line: key: what`.
public enum ConnectorCatalog {
    static let commonKeys = ["name", "type", "paths", "description", "category", "purpose", "retention", "timeout", "retries", "placeholder"]
    static let ruleKeys = ["match", "text", "erase", "redact", "reason", "expand"]

    /// The YAML files of a connectors directory, sorted.
    public static func files(in dir: String) throws -> [String] {
        guard FileSystem.exists(dir) else {
            throw DSARError(.config, "connectors directory \(dir) does not exist (set --connectors or `connectors:` in config.yaml)", path: dir)
        }
        return try FileSystem.list(dir).filter { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && !$0.hasPrefix(".") }
            .map { dir + "/" + $0 }
    }

    /// The identifier types every spool knows; others must be declared in `config.yaml`
    /// (`identifier_types:`), so that a typo such as `emial` is an error, not a search for nothing.
    public static let builtinTypes: Set<String> = ["email", "user_id", "phone", "ip"]

    /// How deeply configs are checked against the data they name.
    public struct Checks: Sendable {
        /// Identifier types allowed (nil: any well-formed name).
        public var knownTypes: Set<String>?
        /// Read the header of every CSV source that exists (cheap: the first record).
        public var headers: Bool
        /// Everything `connectors check` checks: every glob matches a file, dumps hold the configured tables and columns.
        public var sources: Bool

        public init(knownTypes: Set<String>? = nil, headers: Bool = false, sources: Bool = false) {
            self.knownTypes = knownTypes
            self.headers = headers || sources
            self.sources = sources
        }
    }

    /// Loads every connector; throws ``ConfigProblems`` listing every problem of every file.
    public static func load(dir: String, checkSources: Bool = false) throws -> [ConnectorConfig] {
        try load(dir: dir, checks: Checks(sources: checkSources))
    }

    /// Loads every connector with `checks`; throws ``ConfigProblems`` listing every problem of every file.
    public static func load(dir: String, checks: Checks) throws -> [ConnectorConfig] {
        let (configs, problems) = try loadAll(dir: dir, checks: checks)
        if !problems.isEmpty { throw ConfigProblems(problems) }
        return configs
    }

    /// Loads every connector with `checks`, returning the usable configs and every problem.
    public static func loadAll(dir: String, checks: Checks) throws -> ([ConnectorConfig], [ConfigProblem]) {
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
                problems.append(ConfigProblem(file: c.file, line: 1, key: "name", message: "\"\(c.name)\" is also the name of the connector in \(other); names must be unique"))
            }
            names[c.name] = c.file
        }
        return (configs, problems)
    }

    /// Parses one file. Returns the config (nil if unusable) and its problems.
    public static func parse(file: String, checkSources: Bool = false) throws -> (ConnectorConfig?, [ConfigProblem]) {
        try parse(file: file, checks: Checks(sources: checkSources))
    }

    /// Parses one file with `checks`. Returns the config (nil if unusable) and its problems.
    public static func parse(file: String, checks: Checks) throws -> (ConnectorConfig?, [ConfigProblem]) {
        let checkSources = checks.sources
        let y = try YAMLMap.load(file: file)
        y.knownTypes = checks.knownTypes
        let dir = (file as NSString).deletingLastPathComponent
        let base = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let name = y.string("name") ?? base
        if name.isEmpty {
            y.problem("name", "is empty: give the connector a name (letters, digits, '-', '_', '.'), or leave the key out to use the file name")
        } else if !isSafeName(name) {
            y.problem("name", "\"\(name)\" may only contain letters, digits, '-', '_' and '.' (it names output folders)")
        }
        guard let typeText = y.string("type", required: true) else { return (nil, y.problems) }
        guard let type = ConnectorType(rawValue: typeText) else {
            y.problem("type", "\"\(typeText)\" is not a connector type; expected one of: \(ConnectorType.allCases.map(\.rawValue).joined(separator: ", "))")
            return (nil, y.problems)
        }
        var c = ConnectorConfig(
            name: name, type: type, file: file, paths: [],
            metadata: SourceMetadata(
                description: y.string("description"), category: y.string("category"), purpose: y.string("purpose"),
                retention: y.string("retention")))
        if let t = y.seconds("timeout", range: 1...86400) { c.timeoutSeconds = t }
        if let r = y.int("retries", range: 0...10) { c.retries = r }
        if let p = y.string("placeholder") { c.placeholder = p }
        var allowed = commonKeys
        if type != .exec {
            let globs = y.strings("paths", required: true) ?? []
            if y.has("paths") && globs.filter({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }).isEmpty {
                y.problem("paths", "lists no file: give the files or globs this connector searches (relative to this file)")
            }
            c.paths = globs.map { $0.hasPrefix("/") ? $0 : dir + "/" + $0 }
            allowed += ["follow_symlinks", "max_file_bytes"]
            if let f = y.bool("follow_symlinks") { c.followSymlinks = f }
            if let m = y.int("max_file_bytes", range: 1...Int.max) { c.maxFileBytes = Int64(m) }
            if checkSources {
                for (g, abs) in zip(globs, c.paths) where ConnectorConfig.glob(abs).isEmpty {
                    y.problem("paths", "no file matches \"\(g)\" (looked for \(abs))")
                }
                // Whatever a glob matches that is not a regular file is a problem, never skipped.
                for e in c.inspectSources() {
                    if let problem = e.problem { y.problem("paths", "\(e.path) is not read: \(problem)") }
                }
            }
        }
        switch type {
        case .csv:
            allowed += ["delimiter", "header", "columns"] + ruleKeys
            if let d = y.string("delimiter") {
                switch d {
                case ",": c.delimiter = UInt8(ascii: ",")
                case ";": c.delimiter = UInt8(ascii: ";")
                case "\t", "tab", "\\t": c.delimiter = 0x09
                case "|": c.delimiter = UInt8(ascii: "|")
                default: y.problem("delimiter", "expected one of , ; tab |")
                }
            }
            if let h = y.bool("header") { c.header = h }
            let matchKey = y.has("columns") ? "columns" : "match"
            c.rules = rules(y, matchKey: matchKey, allowRetainOnly: false)
            if c.rules.match.isEmpty && c.rules.text.isEmpty {
                y.problemHere("a csv connector needs `columns:` (column: identifier type) or `text:` columns to search")
            }
            if checks.headers && c.header && y.problems.isEmpty { checkHeaders(c, y, matchKey: matchKey, reportUnreadable: checks.sources) }
        case .sqldump:
            allowed += ["dialect", "tables", "allow_truncated"]
            if let a = y.bool("allow_truncated") { c.allowTruncated = a }
            if let d = y.string("dialect") {
                if let v = SQLDialect(rawValue: d) { c.dialect = v } else {
                    y.problem("dialect", "expected one of: \(SQLDialect.allCases.map(\.rawValue).joined(separator: ", "))")
                }
            }
            if let t = y.map("tables", required: true) {
                for table in t.keys {
                    guard let m = t.map(table) else { continue }
                    m.knownTypes = y.knownTypes
                    c.tables[table] = rules(m, matchKey: "match", allowRetainOnly: true)
                    c.tableOrder.append(table)
                    m.rejectUnknownKeys(allowed: ruleKeys)
                }
                if t.keys.isEmpty { y.problem("tables", "list at least one table") }
            }
            if checkSources && y.problems.isEmpty { checkTables(c, y) }
        case .log:
            allowed += ["format", "match", "fields", "patterns", "erase", "placeholder"]
            if let f = y.string("format") {
                if let v = ConnectorConfig.LogFormat(rawValue: f) { c.logFormat = v } else { y.problem("format", "expected text or jsonl") }
            }
            logMatch(y, &c)
            if let f = y.map("fields") {
                f.knownTypes = y.knownTypes
                c.rules.match = fieldRules(f)
            }
            if c.logFormat == .jsonl && c.rules.match.isEmpty && c.textTypes == nil {
                y.problemHere("a jsonl log needs `fields:` (JSON field: identifier type) or `match:` types to search as text")
            }
            if let p = y.map("patterns") {
                p.knownTypes = y.knownTypes
                for k in p.keys {
                    guard IdentifierNormalizer.isValidTypeName(k) else {
                        p.problem(k, "not an identifier type name")
                        continue
                    }
                    if let why = p.unknownType(k) { p.problem(k, why) }
                    guard let rx = p.string(k) else { continue }
                    if (try? NSRegularExpression(pattern: rx)) == nil {
                        p.problem(k, "invalid regular expression")
                        continue
                    }
                    c.patterns.append((k, rx))
                }
            }
            numericWarnings(y, &c)
            if let e = y.string("erase") {
                switch EraseStrategy(rawValue: e) {
                case .redact?, .dropLine?, .retain?: c.rules.erase = EraseStrategy(rawValue: e)!
                default: y.problem("erase", "for logs expected redact, drop_line or retain")
                }
            } else {
                c.rules.erase = .redact
            }
            if c.rules.erase == .retain { c.rules.reason = y.string("reason", required: true) }
            allowed.append("reason")
            allowed += ["reopen", "reopen_timeout"]
            if y.has("reopen") {
                let isShell = y.isScalar("reopen")
                if let cmd = y.strings("reopen") {
                    if cmd.first?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
                        y.problem("reopen", "is empty: give the command that makes the log's writers reopen it (`nginx -s reopen`), or leave `reopen:` out")
                    } else if isShell {
                        c.reopenCommand = ["/bin/sh", "-c", cmd[0]]
                    } else {
                        c.reopenCommand = cmd
                        if cmd[0].contains("/") && !cmd[0].hasPrefix("/") { c.reopenCommand[0] = (dir + "/" + cmd[0] as NSString).standardizingPath }
                        if checkSources && cmd[0].contains("/") && access(c.reopenCommand[0], X_OK) != 0 {
                            y.problem("reopen", "\(c.reopenCommand[0]) is not an executable file")
                        }
                    }
                }
            }
            if let t = y.seconds("reopen_timeout", range: 1...3600) { c.reopenTimeout = t }
        case .exec:
            allowed += ["command", "env"]
            // A list is argv (a relative program path is relative to this file); a string is a
            // shell command run in this file's directory.
            let isShell = y.isScalar("command")
            let given = y.strings("command", required: true)
            if let cmd = given, cmd.first?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
                y.problem(
                    "command",
                    isShell
                        ? "is empty: give the shell command that runs the plugin"
                        : "needs the program as its first element (a list is argv: [ plugins/lookup.py, arg ]); it is \(cmd.isEmpty ? "empty" : "an empty string")")
            } else if let cmd = given {
                if isShell {
                    c.command = ["/bin/sh", "-c", "cd \"$DSAR_CONNECTOR_DIR\" && " + cmd[0]]
                } else {
                    c.command = cmd
                    if cmd[0].contains("/") {
                        let exe = cmd[0].hasPrefix("/") ? cmd[0] : (dir + "/" + cmd[0] as NSString).standardizingPath
                        c.command[0] = exe
                        if checkSources && access(exe, X_OK) != 0 { y.problem("command", "\(exe) is not an executable file") }
                    }
                }
                c.environment["DSAR_CONNECTOR_DIR"] = dir
            }
            if let env = y.map("env") {
                for k in env.keys { if let v = env.string(k) { c.environment[k] = v } }
            }
        }
        y.rejectUnknownKeys(allowed: allowed)
        return (y.problems.isEmpty ? c : nil, y.problems)
    }

    /// A log's `match:` list: type names matched as bare tokens, or `{ type: …, pattern: '…(…)…' }`
    /// to find a type only in a context (capture group 1 is the identifier; then never bare).
    static func logMatch(_ y: YAMLMap, _ c: inout ConnectorConfig) {
        guard let n = y.node("match") else { return }
        let expected = "expected a list of identifier types, each a name (email, user_id, phone, ip or a custom name) or { type: user_id, pattern: '/users/([0-9]+)' }"
        var items: [Node] = []
        if n.scalar != nil {
            items = [n]
        } else if let seq = n.sequence {
            items = Array(seq)
        } else {
            y.problem("match", expected)
            return
        }
        var bare: [String] = []
        for (k, item) in items.enumerated() {
            if item.scalar != nil, let t = item.string {
                if !IdentifierNormalizer.isValidTypeName(t) {
                    y.problem("match", "\"\(t)\" is not an identifier type name (email, user_id, phone, ip or a custom name)")
                } else if let why = y.unknownType(t) {
                    y.problem("match", why)
                }
                bare.append(t)
            } else if let m = YAMLMap.from(item, file: y.file, path: "match[\(k)]", sink: y.sink) {
                let t = m.string("type", required: true)
                let rx = m.string("pattern", required: true)
                m.rejectUnknownKeys(allowed: ["type", "pattern"])
                guard let t, let rx else { continue }
                if !IdentifierNormalizer.isValidTypeName(t) {
                    m.problem("type", "\"\(t)\" is not an identifier type name (email, user_id, phone, ip or a custom name)")
                    continue
                } else if let why = y.unknownType(t) {
                    m.problem("type", why)
                    continue
                }
                do {
                    let compiled = try NSRegularExpression(pattern: rx)
                    if compiled.numberOfCaptureGroups == 0 {
                        m.problem("pattern", "has no capture group: put the identifier in parentheses, e.g. '/users/([0-9]+)' (group 1 is compared)")
                        continue
                    }
                } catch {
                    m.problem("pattern", "is not a valid regular expression (ICU syntax)")
                    continue
                }
                c.contextPatterns.append(ContextPattern(type: t, regex: rx))
            } else {
                y.problem("match", "item \(k + 1): " + expected)
            }
        }
        let scoped = Set(c.contextPatterns.map(\.type))
        c.textTypes = bare.filter { !scoped.contains($0) }
    }

    /// Warns (does not fail) when a numeric identifier type is matched as a bare token in text: a
    /// number in a log is usually a byte count, a port or a duration, not user 1042.
    static func numericWarnings(_ y: YAMLMap, _ c: inout ConnectorConfig) {
        func isNumeric(_ t: String) -> Bool { t == "user_id" || t.hasSuffix("_id") }
        let advice = "scope it to a context, e.g. match: [ email, { type: user_id, pattern: '/users/([0-9]+)' } ]"
        if let types = c.textTypes {
            for t in types where isNumeric(t) {
                c.warnings.append(
                    ConfigProblem(
                        file: y.file, line: y.line(of: "match"), key: "match",
                        message: "\(t) is matched as a bare number anywhere in a line (a byte count or a port can equal a user id); \(advice)"))
            }
        } else if c.logFormat == .text {
            c.warnings.append(
                ConfigProblem(
                    file: y.file, line: y.line(of: "type"), key: "match",
                    message: "no `match:` list, so every type of a request is searched as a bare token, user_id and other *_id numbers too (a byte count or a port can equal a user id); list the types and \(advice)"))
        }
    }

    static func isSafeName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64 && !s.hasPrefix(".")
            && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F || $0 == 0x2E }
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
                    m.problem(col, "\"\(t)\" is not an identifier type (email, user_id, phone, ip or a custom name in lower case)")
                } else if let why = m.unknownType(t) {
                    m.problem(col, why)
                }
                out.append(FieldRule(column: col, type: t, expand: true))
            }
        }
        return out
    }

    /// Checks that every source's header has the configured columns (`columns`, `text`, `redact`;
    /// case-sensitive, with a did-you-mean).
    /// A source that cannot be read is a problem only with `reportUnreadable` (`connectors check`); at
    /// run time the scan reports it for the jobs (the connector fails, the jobs are PARTIAL).
    static func checkHeaders(_ c: ConnectorConfig, _ y: YAMLMap, matchKey: String, reportUnreadable: Bool) {
        for src in c.sources() {
            let header: [String]?
            do {
                // A FIFO or device is never opened (``SourceFile``); with `reportUnreadable` it is reported above.
                if SourceFile.inspect(src, options: c.sourceOptions).problem != nil { continue }
                let delimiter = try c.delimiter ?? CSVReader.detectDelimiter(path: src, options: c.sourceOptions)
                header = try CSVReader(path: src, delimiter: delimiter, hasHeader: true, options: c.sourceOptions).header
            } catch {
                if reportUnreadable { y.problem("paths", "cannot read the header of \(src): \(error)") }
                continue
            }
            guard let header else { continue }  // an empty file
            let have = Set(header)
            let keys: [(String, [String])] = [(matchKey, c.rules.match.map(\.column)), ("text", c.rules.text), ("redact", c.rules.redact)]
            for (key, names) in keys {
                for name in names where !have.contains(name) {
                    let rest = CSVConnector.describeHeader(header, missing: name)
                    y.problem(
                        key,
                        "the header of \(src) has no column \"\(name)\"\(rest)\(rest.hasPrefix("; its first row") ? "" : " (names are case-sensitive)")")
                }
            }
        }
    }

    static func rules(_ m: YAMLMap, matchKey: String, allowRetainOnly: Bool) -> RecordRules {
        var r = RecordRules()
        if let mm = m.map(matchKey) {
            mm.knownTypes = m.knownTypes
            r.match = fieldRules(mm)
        }
        if m.bool("expand") == false { r.match = r.match.map { var f = $0; f.expand = false; return f } }
        r.text = m.strings("text") ?? []
        for (key, list) in [("text", r.text)] where list.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            m.problem(key, "a column name cannot be empty")
        }
        if let e = m.string("erase") {
            if let s = EraseStrategy(rawValue: e), s != .dropLine, s != .plugin { r.erase = s } else {
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

    /// Checks that every configured table occurs in the dumps (reads their CREATE TABLE / COPY / INSERT),
    /// and that every dump can be read to its end and is complete (unless `allow_truncated`).
    static func checkTables(_ c: ConnectorConfig, _ y: YAMLMap) {
        var seen = Set<String>()
        var columns: [String: Set<String>] = [:]
        for src in c.sources() {
            guard var reader = try? SQLDumpReader(path: src, dialect: c.dialect, options: c.sourceOptions) else { continue }
            do {
                try reader.forEachRow { _ in }
                if let t = reader.truncation, !c.allowTruncated {
                    y.problem(
                        "paths",
                        "\(src):\(t.line): \(t.message) (set `allow_truncated: true` on this connector to accept it)")
                }
            } catch let e as DSARError {
                y.problem("paths", e.message.hasPrefix(src) ? e.message : "\(src): \(e.message)")
            } catch {
                y.problem("paths", "cannot read \(src) to its end: \(error)")
            }
            for t in reader.tables {
                seen.insert(t.name)
                columns[t.name, default: []].formUnion(t.columns)
            }
        }
        guard !c.sources().isEmpty, let tables = y.map("tables") else { return }
        for t in c.tableOrder {
            if !seen.contains(t) {
                tables.problem(t, "the dump does not contain table \"\(t)\" (it has: \(seen.sorted().joined(separator: ", ")))")
                continue
            }
            let cols = columns[t] ?? []
            guard !cols.isEmpty, let r = c.tables[t] else { continue }
            for name in r.match.map(\.column) + r.text + r.redact where !cols.contains(name) {
                tables.problem(t, "table \"\(t)\" has no column \"\(name)\" (it has: \(cols.sorted().joined(separator: ", ")))")
            }
        }
    }
}
