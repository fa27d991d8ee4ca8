import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// `type: log`: log files, plain text or JSON lines, plain or gzip (rotations).
package enum LogKind: ConnectorKind {
    package static let type = "log"
    package static let keys = [
        "format", "match", "fields", "patterns", "erase", "placeholder", "reason", "reopen", "reopen_timeout",
    ]

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> LogSettings {
        var c = LogSettings()
        let dir = context.dir
        if let f = y.string("format") {
            if let v = LogSettings.Format(rawValue: f) {
                c.logFormat = v
            } else {
                y.problem("format", "expected text or jsonl")
            }
        }
        logMatch(y, &c)
        if let f = y.map("fields") {
            f.knownTypes = y.knownTypes
            c.rules.match = ConnectorCatalog.fieldRules(f)
        }
        if c.logFormat == .jsonl && c.rules.match.isEmpty && c.textTypes == nil {
            y.problemHere(
                "a jsonl log needs `fields:` (JSON field: identifier type) or `match:` types to search as text")
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
        numericWarnings(y, c, &context)
        if let e = y.string("erase") {
            switch EraseStrategy(rawValue: e) {
            case .redact?, .dropLine?, .retain?: c.rules.erase = EraseStrategy(rawValue: e)!
            default: y.problem("erase", "for logs expected redact, drop_line or retain")
            }
        } else {
            c.rules.erase = .redact
        }
        if c.rules.erase == .retain { c.rules.reason = y.string("reason", required: true) }
        if y.has("reopen") {
            let isShell = y.isScalar("reopen")
            if let cmd = y.strings("reopen") {
                if cmd.first?.trimmingCharacters(in: .whitespaces).isEmpty ?? true {
                    y.problem(
                        "reopen",
                        "is empty: give the command that makes the log's writers reopen it (`nginx -s reopen`), or leave `reopen:` out"
                    )
                } else if isShell {
                    c.reopenCommand = ["/bin/sh", "-c", cmd[0]]
                } else {
                    c.reopenCommand = cmd
                    if cmd[0].contains("/") && !cmd[0].hasPrefix("/") {
                        c.reopenCommand[0] = (dir + "/" + cmd[0] as NSString).standardizingPath
                    }
                    if context.checks.sources && cmd[0].contains("/") && access(c.reopenCommand[0], X_OK) != 0 {
                        y.problem("reopen", "\(c.reopenCommand[0]) is not an executable file")
                    }
                }
            }
        }
        if let t = y.seconds("reopen_timeout", range: 1...3600) { c.reopenTimeout = t }
        return c
    }

    /// A log's `match:` list: type names matched as bare tokens, or `{ type: …, pattern: '…(…)…' }`
    /// to find a type only in a context (capture group 1 is the identifier; then never bare).
    static func logMatch(_ y: YAMLMap, _ c: inout LogSettings) {
        guard let n = y.node("match") else { return }
        let expected =
            "expected a list of identifier types, each a name (email, user_id, phone, ip or a custom name) or { type: user_id, pattern: '/users/([0-9]+)' }"
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
                    y.problem(
                        "match", "\"\(t)\" is not an identifier type name (email, user_id, phone, ip or a custom name)")
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
                    m.problem(
                        "type", "\"\(t)\" is not an identifier type name (email, user_id, phone, ip or a custom name)")
                    continue
                } else if let why = y.unknownType(t) {
                    m.problem("type", why)
                    continue
                }
                do {
                    let compiled = try NSRegularExpression(pattern: rx)
                    if compiled.numberOfCaptureGroups == 0 {
                        m.problem(
                            "pattern",
                            "has no capture group: put the identifier in parentheses, e.g. '/users/([0-9]+)' (group 1 is compared)"
                        )
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
    static func numericWarnings(_ y: YAMLMap, _ c: LogSettings, _ context: inout ConnectorParseContext) {
        func isNumeric(_ t: String) -> Bool { t == "user_id" || t.hasSuffix("_id") }
        let advice = "scope it to a context, e.g. match: [ email, { type: user_id, pattern: '/users/([0-9]+)' } ]"
        if let types = c.textTypes {
            for t in types where isNumeric(t) {
                context.warnings.append(
                    ConfigProblem(
                        file: y.file, line: y.line(of: "match"), key: "match",
                        message:
                            "\(t) is matched as a bare number anywhere in a line (a byte count or a port can equal a user id); \(advice)"
                    ))
            }
        } else if c.logFormat == .text {
            context.warnings.append(
                ConfigProblem(
                    file: y.file, line: y.line(of: "type"), key: "match",
                    message:
                        "no `match:` list, so every type of a request is searched as a bare token, user_id and other *_id numbers too (a byte count or a port can equal a user id); list the types and \(advice)"
                ))
        }
    }

}

/// An identifier type found in text logs only inside a context: the regular expression's first
/// capture group is the identifier, compared exactly after normalising.
package struct ContextPattern: Sendable, Equatable {
    /// The identifier type the capture is compared as (`user_id`).
    package var type: String
    /// The regular expression (ICU syntax) with at least one capture group (`/users/([0-9]+)`).
    package var regex: String
    /// A pattern for `type`.
    package init(type: String, regex: String) {
        self.type = type
        self.regex = regex
    }
}

/// The settings of a `type: log` connector.
package struct LogSettings: ConnectorSettings {
    package static var kind: any ConnectorKind.Type { LogKind.self }
    /// Formats of log connectors.
    package enum Format: String, Sendable { case text, jsonl }

    /// `format:`.
    package var logFormat: Format = .text
    /// JSON lines: `fields:` (in `rules.match`); every log: `erase:` and `reason:`.
    package var rules = RecordRules()
    /// Identifier types looked for as tokens in text logs (nil: every type of the request).
    package var textTypes: [String]?
    /// Custom identifier types found by a regular expression in text logs.
    package var patterns: [(type: String, regex: String)] = []
    /// Identifier types scoped to a context in text logs (`match: [ { type: user_id, pattern: '/users/([0-9]+)' } ]`):
    /// only capture group 1 is compared, and the type is not matched as a bare token.
    package var contextPatterns: [ContextPattern] = []
    /// The command run after a rewritten file was renamed into place, so that writers that
    /// keep the file open reopen it (`nginx -s reopen`, like logrotate's `postrotate`). A `reopen:`
    /// string runs as `/bin/sh -c`, a list is argv. Empty: none.
    package var reopenCommand: [String] = []
    /// How long `reopen:` may run (`reopen_timeout:`, seconds).
    package var reopenTimeout: Double = 30

    /// Defaults: a text log, every type of the request searched, redacted on erasure.
    package init() { rules.erase = .redact }

    package func connector(_ config: ConnectorConfig) -> any Connector { LogConnector(config: config, settings: self) }
}
