import Foundation

/// Why a request file was refused: one plain sentence, and whether it may still be arriving.
///
/// Two forms of the sentence: ``message`` quotes what the drop says (for the operator, only in
/// `rejected/<name>.reason`, beside the drop that holds the same data), ``redacted`` has every
/// value taken from the drop replaced by `<value>` (for the journal, logs and notifications).
package struct RequestProblem: Error, Sendable, CustomStringConvertible, Equatable {
    /// The sentence written into `rejected/<name>.reason`, quoting the drop's values.
    package var message: String
    /// The sentence without any value from the drop: field names dsar knows, what was expected,
    /// positions and dsar's own choices only.
    package var redacted: String
    /// True when the file looks cut off (it may be an upload still in progress).
    package var mayBeIncomplete: Bool

    /// A problem whose sentence dsar wrote itself; anything quoted in it that dsar does not know
    /// (see ``RequestProblem/scrub(_:)``) is treated as a value from the drop in ``redacted``.
    package init(_ message: String, mayBeIncomplete: Bool = false) {
        self.message = message
        self.redacted = RequestProblem.scrub(message)
        self.mayBeIncomplete = mayBeIncomplete
    }

    /// A problem about `value`, a text taken from the drop: `sentence` is called with the value
    /// quoted (for ``message``) and with `<value>` (for ``redacted``).
    package init(value: String, mayBeIncomplete: Bool = false, _ sentence: (String) -> String) {
        self.message = sentence("\"" + value + "\"")
        self.redacted = sentence(RequestProblem.placeholder)
        self.mayBeIncomplete = mayBeIncomplete
    }

    /// A problem with both forms given (`redacted` must quote nothing from the drop).
    package init(message: String, redacted: String, mayBeIncomplete: Bool = false) {
        self.message = message
        self.redacted = redacted
        self.mayBeIncomplete = mayBeIncomplete
    }

    /// What stands for a value from the drop in ``redacted``.
    package static let placeholder = "<value>"

    /// The redacted sentence (so that interpolating the error never leaks the drop's values).
    package var description: String { redacted }

    /// Quoted texts that dsar itself writes into reasons and that are kept by ``scrub(_:)``: the
    /// request's known field names, the identifier types built in, `subject.<type>` of those, and
    /// the enum choices dsar lists.
    package static let keptQuotes: Set<String> = {
        var s = Set(
            RequestParser.knownFields + ["subject"] + RequestAction.allCases.map(\.rawValue)
                + Regulation.allCases.map(\.rawValue))
        for t in IdentifierNormalizer.builtInTypes {
            s.insert(t)
            s.insert("subject." + t)
        }
        return s
    }()

    /// `text` with every double-quoted segment that is not one of ``keptQuotes`` replaced by
    /// `<value>` (an unclosed quote: up to the end), e.g. `member "jane@x.org" appears twice` →
    /// `member <value> appears twice`. The fallback for sentences not built with a separate value.
    package static func scrub(_ text: String) -> String {
        let b = Array(text.utf8)
        guard b.contains(0x22) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            guard b[i] == 0x22 else {
                out.append(b[i])
                i += 1
                continue
            }
            var j = i + 1
            while j < b.count && b[j] != 0x22 { j += 1 }
            let inner = String(decoding: b[(i + 1)..<j], as: UTF8.self)
            if j < b.count && keptQuotes.contains(inner) {
                out += b[i...j]
            } else {
                out += Array(placeholder.utf8)
            }
            i = j + 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Turns request bytes into a validated ``DSARRequest``, strictly: unknown fields are errors.
package struct RequestParser: Sendable {
    /// Top-level identifier fields allowed in the minimal shape (`{"user_id": "1", "action": "export"}`).
    package static let topLevelIdentifierFields: [String] = ["email", "user_id", "phone", "ip"]
    /// Every accepted top-level field.
    package static let knownFields: [String] =
        ["request_id", "action", "subject", "received_at", "regulation", "dry_run", "language"]
        + topLevelIdentifierFields

    /// Regulation used when a request names none.
    package var defaultRegulation: Regulation

    /// The clock `received_at` is checked against.
    package var now: @Sendable () -> Date = { Date() }

    /// How far `received_at` may lie in the future (clock skew between systems): one day.
    package static let maxFutureSeconds: Double = 86400

    /// Languages a request may ask for its report in (config.yaml `languages:`).
    package var languages: [String]

    package init(defaultRegulation: Regulation = .gdpr, languages: [String] = ["en"]) {
        self.defaultRegulation = defaultRegulation
        self.languages = languages
    }

    /// Parses and validates; throws a ``RequestProblem`` naming the field or position.
    package func parse(_ bytes: [UInt8]) throws(RequestProblem) -> DSARRequest {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw RequestProblem("the file is empty", mayBeIncomplete: true)
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            if error.truncated {
                throw RequestProblem(
                    "the JSON is incomplete: \(error.message) (\(error.position)); the upload may have been cut off",
                    mayBeIncomplete: true)
            }
            throw RequestProblem("the JSON is malformed: \(error.message) at \(error.position)")
        }
        guard case .object(let members) = root else {
            throw RequestProblem("the request must be a JSON object ({...}) but is \(root.kindName)")
        }
        for m in members where !Self.knownFields.contains(m.key) {
            throw RequestProblem(value: m.key) { v in
                "unknown field \(v) at \(m.position); expected one of: \(Self.knownFields.joined(separator: ", ")). "
                    + "Identifiers of other types go inside \"subject\""
            }
        }
        func field(_ k: String) -> JSONMember? { members.first { $0.key == k } }

        // action
        guard let actionMember = field("action") else {
            throw RequestProblem("field \"action\" is missing; expected \"export\" or \"delete\"")
        }
        guard case .string(let actionText) = actionMember.value, let action = RequestAction(rawValue: actionText) else {
            throw problem(actionMember.value) { v in
                "field \"action\" at \(actionMember.position) is \(v); expected \"export\" or \"delete\""
            }
        }

        // request_id
        var requestID: String?
        if let m = field("request_id") {
            guard case .string(let s) = m.value else {
                throw RequestProblem(
                    "field \"request_id\" at \(m.position) must be a string but is \(m.value.kindName)")
            }
            let t = s.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty else { throw RequestProblem("field \"request_id\" at \(m.position) is empty") }
            guard t.count <= 128 else {
                throw RequestProblem(
                    "field \"request_id\" at \(m.position) is \(t.count) characters long; at most 128 are allowed")
            }
            guard !t.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
                throw RequestProblem("field \"request_id\" at \(m.position) contains a control character")
            }
            requestID = t
        }

        // regulation
        var regulation = defaultRegulation
        if let m = field("regulation") {
            guard case .string(let s) = m.value, let r = Regulation(rawValue: s.lowercased()) else {
                throw problem(m.value) { v in
                    "field \"regulation\" at \(m.position) is \(v); expected one of: "
                        + Regulation.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                }
            }
            regulation = r
        }

        // received_at
        var receivedAt: Date?
        if let m = field("received_at") {
            guard case .string(let s) = m.value, let d = Timestamp.parse(s) else {
                throw problem(m.value) { v in
                    "field \"received_at\" at \(m.position) is \(v); expected an RFC 3339 time such as \"2026-11-20T09:00:00Z\""
                }
            }
            // A time in the future would push the deadline out of reach: the job would never be overdue.
            if d.timeIntervalSince(now()) > Self.maxFutureSeconds {
                throw RequestProblem(value: s) { v in
                    "field \"received_at\" at \(m.position) is \(v), more than a day after now (\(Timestamp.format(now()))); it must say when the request was received (a typo in the year?)"
                }
            }
            receivedAt = d
        }

        // dry_run
        var dryRun = false
        if let m = field("dry_run") {
            guard case .bool(let b) = m.value else {
                throw RequestProblem(
                    "field \"dry_run\" at \(m.position) must be true or false but is \(m.value.kindName)")
            }
            dryRun = b
        }

        // language
        var language: String?
        if let m = field("language") {
            guard case .string(let s) = m.value else {
                throw RequestProblem(
                    "field \"language\" at \(m.position) must be a string such as \"en\" but is \(m.value.kindName)")
            }
            let l = s.trimmingCharacters(in: .whitespaces).lowercased()
            guard languages.contains(l) else {
                throw RequestProblem(value: s) { v in
                    "field \"language\" at \(m.position) is \(v); this spool answers in: \(languages.joined(separator: ", ")) (config.yaml `languages:`)"
                }
            }
            language = l
        }

        // identifiers: top-level shorthand plus "subject"
        var ids = Set<Identifier>()
        for name in Self.topLevelIdentifierFields {
            if let m = field(name) { try collect(type: name, m.value, at: m.position, path: name, into: &ids) }
        }
        if let m = field("subject") {
            guard case .object(let subject) = m.value else {
                throw RequestProblem(
                    "field \"subject\" at \(m.position) must be an object of identifiers but is \(m.value.kindName)")
            }
            for s in subject {
                guard IdentifierNormalizer.isValidTypeName(s.key) else {
                    throw RequestProblem(value: "subject." + s.key) { v in
                        "identifier type \(v) at \(s.position) is not a valid name; use lower-case letters, digits and '_' (e.g. email, user_id, phone, ip, loyalty_card)"
                    }
                }
                try collect(type: s.key, s.value, at: s.position, path: "subject.\(s.key)", into: &ids)
            }
        }
        guard !ids.isEmpty else {
            throw RequestProblem(
                "the request names no identifier; give at least one of email, user_id, phone, ip (top level or inside \"subject\")"
            )
        }
        return DSARRequest(
            requestID: requestID, action: action, regulation: regulation, identifiers: ids.sorted(),
            receivedAt: receivedAt, dryRun: dryRun, language: language)
    }

    /// A problem about a member's value: a string is a value from the drop (quoted only in the
    /// full message), any other kind is named by its kind.
    private func problem(_ v: JSONValue, _ sentence: (String) -> String) -> RequestProblem {
        if case .string(let s) = v { return RequestProblem(value: s, sentence) }
        let text = sentence(v.kindName)
        return RequestProblem(message: text, redacted: text)
    }

    private func collect(
        type: String, _ value: JSONValue, at pos: JSONPosition, path: String, into ids: inout Set<Identifier>
    ) throws(RequestProblem) {
        switch value {
        case .string(let s):
            switch IdentifierNormalizer.normalize(type: type, s) {
            case .success(let v): ids.insert(Identifier(type: type, value: v))
            case .failure(let e): throw RequestProblem("identifier \"\(path)\" at \(pos) \(e.reason)")
            }
        case .number(let n):
            guard type != "email", type != "ip" else {
                throw RequestProblem("identifier \"\(path)\" at \(pos) must be a string but is a number")
            }
            guard !n.contains("."), !n.contains("e"), !n.contains("E"), !n.hasPrefix("-") else {
                throw RequestProblem(
                    message:
                        "identifier \"\(path)\" at \(pos) is the number \(n); write non-integer identifiers as strings",
                    redacted:
                        "identifier \"\(path)\" at \(pos) is a number other than a non-negative integer; write such identifiers as strings"
                )
            }
            switch IdentifierNormalizer.normalize(type: type, n) {
            case .success(let v): ids.insert(Identifier(type: type, value: v))
            case .failure(let e): throw RequestProblem("identifier \"\(path)\" at \(pos) \(e.reason)")
            }
        case .array(let items):
            guard !items.isEmpty else { throw RequestProblem("identifier \"\(path)\" at \(pos) is an empty list") }
            for item in items {
                if case .array = item {
                    throw RequestProblem("identifier \"\(path)\" at \(pos) contains a nested list; expected strings")
                }
                try collect(type: type, item, at: pos, path: path, into: &ids)
            }
        default:
            throw RequestProblem(
                "identifier \"\(path)\" at \(pos) must be a string or a list of strings but is \(value.kindName)")
        }
    }
}
