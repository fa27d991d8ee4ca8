/// A parsed JSON value that keeps member order and source positions, and numbers as their text.
package indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number exactly as written (so `1042` stays `1042`, not `1042.0`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([JSONMember])

    /// The member named `key`, if this is an object that has it.
    package subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// A short name of the value's kind, for error messages.
    package var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One `"key": value` pair of a JSON object, with where its key starts in the source.
package struct JSONMember: Sendable, Equatable {
    package var key: String
    package var value: JSONValue
    package var position: JSONPosition
    package init(key: String, value: JSONValue, position: JSONPosition = JSONPosition(line: 0, column: 0)) {
        self.key = key
        self.value = value
        self.position = position
    }

    /// Members are equal when key and value are; where they were written does not matter.
    package static func == (a: JSONMember, b: JSONMember) -> Bool { a.key == b.key && a.value == b.value }
}

/// A 1-based line and column (columns count bytes) in a JSON source.
package struct JSONPosition: Sendable, Equatable, CustomStringConvertible {
    package var line: Int
    package var column: Int
    package init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    package var description: String { "line \(line), column \(column)" }
}

/// Why a JSON text did not parse.
package struct JSONParseError: Error, Sendable, CustomStringConvertible {
    /// What was wrong, e.g. "expected ',' or '}' after an object member".
    package var message: String
    /// Where it was found.
    package var position: JSONPosition
    /// True when the text simply ended too early (a partial upload looks like this).
    package var truncated: Bool
    package var description: String { "\(message) at \(position)" }
}

/// A strict RFC 8259 parser over bytes: UTF-8 validated, duplicate keys refused, depth bounded.
package struct JSONParser {
    private let bytes: [UInt8]
    private var i = 0
    private var line = 1
    private var lineStart = 0
    private let maxDepth: Int

    /// Parses a complete JSON document (one value, surrounded only by whitespace).
    package static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes: bytes, maxDepth: maxDepth)
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
        p.i = start
        p.lineStart = start
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        if p.i != bytes.count { throw p.error("unexpected text after the end of the JSON value") }
        return v
    }

    private init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private var position: JSONPosition { JSONPosition(line: line, column: i - lineStart + 1) }

    private func error(_ message: String, truncated: Bool = false) -> JSONParseError {
        JSONParseError(message: message, position: position, truncated: truncated)
    }

    private func endError(_ what: String) -> JSONParseError {
        JSONParseError(message: "the file ends before \(what)", position: position, truncated: true)
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0D: i += 1
            case 0x0A:
                i += 1
                line += 1
                lineStart = i
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard i < bytes.count else { throw endError("a value") }
        if depth > maxDepth { throw error("nesting deeper than \(maxDepth) levels") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("expected a value but found \(describe(bytes[i]))")
        }
    }

    private func describe(_ b: UInt8) -> String {
        if b >= 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        return "byte 0x\(String(b, radix: 16, uppercase: true))"
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for (k, b) in w.enumerated() {
            guard i + k < bytes.count else { throw endError("the end of '\(word)'") }
            if bytes[i + k] != b { throw error("expected '\(word)'") }
        }
        i += w.count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var members: [JSONMember] = []
        var seen = Set<String>()
        skipWhitespace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") {
            i += 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < bytes.count else { throw endError("an object member name") }
            guard bytes[i] == UInt8(ascii: "\"") else {
                throw error("expected a member name in double quotes but found \(describe(bytes[i]))")
            }
            let pos = position
            let key = try parseString()
            if !seen.insert(key).inserted {
                throw JSONParseError(message: "member \"\(key)\" appears twice", position: pos, truncated: false)
            }
            skipWhitespace()
            guard i < bytes.count else { throw endError("':' after member \"\(key)\"") }
            guard bytes[i] == UInt8(ascii: ":") else {
                throw error("expected ':' after member \"\(key)\" but found \(describe(bytes[i]))")
            }
            i += 1
            skipWhitespace()
            let value = try parseValue(depth: depth + 1)
            members.append(JSONMember(key: key, value: value, position: pos))
            skipWhitespace()
            guard i < bytes.count else { throw endError("the closing '}' of the object") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if bytes[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            throw error("expected ',' or '}' after member \"\(key)\" but found \(describe(bytes[i]))")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") {
            i += 1
            return .array(items)
        }
        while true {
            skipWhitespace()
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard i < bytes.count else { throw endError("the closing ']' of the array") }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            if bytes[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            throw error("expected ',' or ']' in an array but found \(describe(bytes[i]))")
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> String {
        let start = i
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count else { throw endError("the digits of a number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else if isDigit(bytes[i]) {
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
        } else {
            throw error("expected a digit in a number")
        }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count else { throw endError("the fraction of a number") }
            guard isDigit(bytes[i]) else { throw error("expected a digit after '.' in a number") }
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < bytes.count else { throw endError("the exponent of a number") }
            guard isDigit(bytes[i]) else { throw error("expected a digit in the exponent of a number") }
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
        }
        return String(decoding: bytes[start..<i], as: UTF8.self)
    }

    /// For the first byte of a multi-byte UTF-8 sequence: how many continuation bytes follow and the
    /// allowed range of the first of them (which rules out overlongs, surrogates and > U+10FFFF).
    static func utf8Lead(_ b: UInt8) -> (need: Int, lo: UInt8, hi: UInt8)? {
        switch b {
        case 0xC2...0xDF: (1, 0x80, 0xBF)
        case 0xE0: (2, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (2, 0x80, 0xBF)
        case 0xED: (2, 0x80, 0x9F)
        case 0xF0: (3, 0x90, 0xBF)
        case 0xF1...0xF3: (3, 0x80, 0xBF)
        case 0xF4: (3, 0x80, 0x8F)
        default: nil
        }
    }

    /// The value of one hex digit (either case).
    static func hexDigit(_ b: UInt8) -> UInt32? {
        switch b {
        case 0x30...0x39: UInt32(b - 0x30)
        case 0x41...0x46: UInt32(b - 0x41 + 10)
        case 0x61...0x66: UInt32(b - 0x61 + 10)
        default: nil
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw endError("the end of a \\u escape") }
            let b = bytes[i]
            guard let d = JSONParser.hexDigit(b) else {
                throw error("expected a hex digit in a \\u escape but found \(describe(b))")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < bytes.count else { throw endError("the closing '\"' of a string") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return String(decoding: out, as: UTF8.self)
            }
            if b == UInt8(ascii: "\\") {
                i += 1
                guard i < bytes.count else { throw endError("the end of an escape sequence") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var cp = try parseHex4()
                    if cp >= 0xD800 && cp < 0xDC00 {
                        guard i + 1 < bytes.count else { throw endError("the low half of a surrogate pair") }
                        guard bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw error("a \\u escape for a high surrogate must be followed by a low surrogate")
                        }
                        i += 2
                        let lo = try parseHex4()
                        guard lo >= 0xDC00 && lo < 0xE000 else { throw error("invalid low surrogate in \\u escape") }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    } else if cp >= 0xDC00 && cp < 0xE000 {
                        throw error("a lone low surrogate in a \\u escape")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(cp)!)).utf8))
                default:
                    i -= 1
                    throw error("invalid escape '\\\(Character(Unicode.Scalar(e)))' in a string")
                }
                continue
            }
            if b < 0x20 {
                if b == 0x0A { throw error("a line break inside a string (write it as \\n)") }
                throw error("a control character \(describe(b)) inside a string (escape it)")
            }
            if b < 0x80 {
                out.append(b)
                i += 1
                continue
            }
            // Multi-byte UTF-8: validate strictly (no overlongs, no surrogates, max U+10FFFF).
            guard let (need, lo, hi) = JSONParser.utf8Lead(b) else { throw error("invalid UTF-8 (\(describe(b)))") }
            guard i + need < bytes.count else {
                // A character cut off at the end of the file: the upload may still be going.
                throw endError("the end of a UTF-8 character")
            }
            for k in 1...need {
                let c = bytes[i + k]
                let l: UInt8 = k == 1 ? lo : 0x80
                let h: UInt8 = k == 1 ? hi : 0xBF
                guard c >= l && c <= h else { throw error("invalid UTF-8 (\(describe(b)) followed by \(describe(c)))") }
            }
            out.append(contentsOf: bytes[i...(i + need)])
            i += need + 1
        }
    }
}

/// Serialises `JSONValue`s; with `sortKeys` the output is canonical (used for hashes and signatures).
package struct JSONWriter {
    /// Whether object keys are written in bytewise order instead of member order.
    package var sortKeys: Bool
    /// Indentation per level; nil writes one compact line.
    package var indent: Int?

    package init(sortKeys: Bool = false, indent: Int? = nil) {
        self.sortKeys = sortKeys
        self.indent = indent
    }

    /// The value as UTF-8 bytes.
    package func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(value, into: &out, level: 0)
        return out
    }

    /// The value as a string.
    package func string(_ value: JSONValue) -> String { String(decoding: encode(value), as: UTF8.self) }

    private func newline(_ out: inout [UInt8], _ level: Int) {
        guard let indent else { return }
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    /// Appends the value as if nested `level` deep (its inner lines indented accordingly).
    package func write(_ value: JSONValue, into out: inout [UInt8], level: Int) {
        switch value {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .number(let n): out.append(contentsOf: Array(n.utf8))
        case .string(let s): JSONWriter.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (k, item) in items.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, level + 1)
                write(item, into: &out, level: level + 1)
            }
            if !items.isEmpty { newline(&out, level) }
            out.append(UInt8(ascii: "]"))
        case .object(var members):
            if sortKeys { members.sort { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) } }
            out.append(UInt8(ascii: "{"))
            for (k, m) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                newline(&out, level + 1)
                JSONWriter.writeString(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                if indent != nil { out.append(0x20) }
                write(m.value, into: &out, level: level + 1)
            }
            if !members.isEmpty { newline(&out, level) }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Appends a JSON string literal the way Python's `json.dumps(ensure_ascii=False)` and JavaScript's
    /// `JSON.stringify` do: `"` `\\` and control characters escaped (short forms where they exist),
    /// everything else raw UTF-8 — so anyone can recompute a journal hash with a stock JSON library.
    package static func writeString(_ s: String, into out: inout [UInt8]) {
        var s = s
        s.withUTF8 { writeString(utf8: $0, into: &out) }
    }

    /// ``writeString(_:into:)`` for UTF-8 bytes: runs that need no escape are copied in one piece.
    package static func writeString(utf8 p: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        out.append(0x22)
        var start = 0
        var i = 0
        while i < p.count {
            let b = p[i]
            if b == 0x22 || b == 0x5C || b < 0x20 {
                if i > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<i])) }
                out.append(0x5C)
                switch b {
                case 0x22: out.append(0x22)
                case 0x5C: out.append(0x5C)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    let hex: StaticString = "0123456789abcdef"
                    out.append(UInt8(ascii: "u"))
                    out.append(0x30)
                    out.append(0x30)
                    hex.withUTF8Buffer { h in
                        out.append(h[Int(b >> 4)])
                        out.append(h[Int(b & 0xF)])
                    }
                }
                start = i + 1
            }
            i += 1
        }
        if p.count > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: p[start..<p.count])) }
        out.append(0x22)
    }
}

extension JSONValue {
    /// Builds an object from ordered pairs.
    package static func obj(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(members(pairs))
    }

    /// An object from literal pairs, in order, where a nil value leaves its member out.
    package static func obj(omittingNil pairs: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(pairs.compactMap { k, v in v.map { JSONMember(key: k, value: $0) } })
    }

    /// The members of literal pairs, in order.
    package static func members(_ pairs: KeyValuePairs<String, JSONValue>) -> [JSONMember] {
        pairs.map { JSONMember(key: $0.key, value: $0.value) }
    }

    /// A string, or null when nil.
    package static func str(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }

    /// An integer number.
    package static func int<I: BinaryInteger>(_ i: I) -> JSONValue { .number(String(i)) }
}
