/// A cursor over one complete statement held in memory (`b[i..<end]`): tokens, names and value expressions.
struct SQLCursor {
    let b: UnsafeBufferPointer<UInt8>
    let end: Int
    let opts: SQLLexOptions
    var i: Int

    init(_ b: UnsafeBufferPointer<UInt8>, from: Int, end: Int, opts: SQLLexOptions) {
        self.b = b
        self.end = end
        self.opts = opts
        self.i = from
    }

    var atEnd: Bool { i >= end }

    @inline(__always) func byte(_ k: Int = 0) -> UInt8 {
        let j = i + k
        return j < end ? b[j] : 0
    }

    /// Skips whitespace and comments (`--`, `/* */`, and `#` in MySQL).
    mutating func skipTrivia() {
        while i < end {
            let c = b[i]
            if SQLByte.isSpace(c) {
                i += 1
            } else if c == SQLByte.minus && byte(1) == SQLByte.minus
                && (!opts.dashCommentNeedsSpace || i + 2 >= end || b[i + 2] <= SQLByte.space)
            {
                i = (SQLScanner.find(SQLByte.lf, b, from: i, to: end) ?? end - 1) + 1
            } else if c == SQLByte.hash && opts.hashComments {
                i = (SQLScanner.find(SQLByte.lf, b, from: i, to: end) ?? end - 1) + 1
            } else if c == SQLByte.slash && byte(1) == SQLByte.star {
                var depth = 1
                i += 2
                while i < end && depth > 0 {
                    if b[i] == SQLByte.star && byte(1) == SQLByte.slash {
                        depth -= 1
                        i += 2
                    } else if opts.nestedComments && b[i] == SQLByte.slash && byte(1) == SQLByte.star {
                        depth += 1
                        i += 2
                    } else {
                        i += 1
                    }
                }
            } else {
                return
            }
        }
    }

    /// The range of the unquoted word at the cursor (identifier bytes), advancing past it.
    mutating func word() -> Range<Int>? {
        let s = i
        while i < end && SQLByte.isIdent(b[i]) { i += 1 }
        return i > s ? s..<i : nil
    }

    /// Consumes `kw` (upper-case ASCII) if the next token is that keyword, ignoring case.
    mutating func keyword(_ kw: [UInt8]) -> Bool {
        guard SQLByte.matches(b, i, end, kw) else { return false }
        let j = i + kw.count
        if j < end && SQLByte.isIdent(b[j]) { return false }
        i = j
        return true
    }

    /// The upper-cased ASCII text of a word (for keyword comparisons).
    func upper(_ r: Range<Int>) -> String {
        String(decoding: b[r].map { SQLByte.upper($0) }, as: UTF8.self)
    }

    func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) }

    /// One identifier: `"quoted"`, `` `quoted` ``, `[quoted]` (SQLite) or bare; unquoted and unescaped.
    mutating func identifier() -> String? {
        let c = byte()
        var close: UInt8 = 0
        if c == SQLByte.dquote || c == SQLByte.backtick {
            close = c
        } else if c == SQLByte.lbracket && opts.bracketIdentifiers {
            close = SQLByte.rbracket
        }
        if close != 0 {
            guard let (bytes, next) = SQLLiterals.quoted(b, at: i, end: end, quote: close, escapes: .none) else {
                return nil
            }
            i = next
            return String(decoding: bytes, as: UTF8.self)
        }
        guard let r = word() else { return nil }
        return text(r)
    }

    /// A possibly qualified name `a.b.c`, as its parts.
    mutating func qualifiedName() -> [String] {
        var parts: [String] = []
        while true {
            skipTrivia()
            guard let p = identifier() else { break }
            parts.append(p)
            let save = i
            skipTrivia()
            if byte() == SQLByte.dot {
                i += 1
            } else {
                i = save
                break
            }
        }
        return parts
    }

    /// A parenthesised identifier list `(a, "b", `c`)` at the cursor; nil if malformed.
    mutating func identifierList() -> [String]? {
        guard byte() == SQLByte.lparen else { return nil }
        i += 1
        var names: [String] = []
        while true {
            skipTrivia()
            if byte() == SQLByte.rparen && names.isEmpty {
                i += 1
                return names
            }
            guard let n = identifier() else { return nil }
            names.append(n)
            skipTrivia()
            if byte() == SQLByte.comma {
                i += 1
            } else if byte() == SQLByte.rparen {
                i += 1
                return names
            } else {
                return nil
            }
        }
    }

    /// Moves to the `,` or `)` that ends the current list item (nested parentheses, strings and comments
    /// skipped), or to `end`.
    mutating func skipListItem() {
        var sc = SQLScanner(opts, mode: .listItem)
        switch sc.run(UnsafeBufferPointer(rebasing: b[0..<end]), from: i, eof: true) {
        case .stop(let j): i = j
        default: i = end
        }
    }

    // MARK: - Values

    private static let kwNull = Array("NULL".utf8)
    private static let kwTrue = Array("TRUE".utf8)
    private static let kwFalse = Array("FALSE".utf8)
    private static let kwReplace = Array("REPLACE".utf8)
    private static let kwChar = Array("CHAR".utf8)
    private static let kwUnistr = Array("UNISTR".utf8)
    private static let kwBinary = Array("_BINARY".utf8)

    /// A value expression that decodes to a literal: a literal, possibly with a `::type` cast, SQLite's
    /// `replace(…, char(n))` / `unistr(…)` and `||` concatenations of strings. Nil if the expression is
    /// something else (the caller then keeps it as `.raw`). The second result is the cast type, if any.
    mutating func valueExpression() -> (SQLValue, cast: String?)? {
        guard var (v, cast) = primary() else { return nil }
        guard opts.pipesConcatenate else { return (v, cast) }
        while true {
            let save = i
            skipTrivia()
            guard byte() == SQLByte.pipe && byte(1) == SQLByte.pipe else {
                i = save
                return (v, cast)
            }
            i += 2
            skipTrivia()
            guard case .string(let a) = v, let (r, c2) = primary(), case .string(let more) = r else { return nil }
            v = .string(a + more)
            cast = c2
        }
    }

    /// A literal or a decodable function call, followed by an optional `::type` cast.
    private mutating func primary() -> (SQLValue, cast: String?)? {
        guard let v = literal() else { return nil }
        let save = i
        skipTrivia()
        if byte() == SQLByte.colon && byte(1) == SQLByte.colon {
            i += 2
            skipTrivia()
            let typeStart = i
            let typeWord = word().map { text($0).lowercased() }
            i = typeStart
            skipCastType()
            return (v, typeWord ?? "")
        }
        i = save
        return (v, nil)
    }

    /// Skips a type name after `::`: words, quoted names, dots, `(n,m)` and `[]`, until `,` `)` `|` `:` or end.
    private mutating func skipCastType() {
        while i < end {
            skipTrivia()
            let c = byte()
            if c == SQLByte.comma || c == SQLByte.rparen || c == SQLByte.pipe || c == SQLByte.colon || i >= end {
                return
            }
            if c == SQLByte.lparen {
                i += 1
                skipListItemsToClose()
            } else if c == SQLByte.lbracket || c == SQLByte.rbracket || c == SQLByte.dot {
                i += 1
            } else if identifier() == nil {
                return
            }
        }
    }

    /// After an opening `(`: skips items up to and including the matching `)`.
    private mutating func skipListItemsToClose() {
        while i < end {
            skipListItem()
            if byte() == SQLByte.comma {
                i += 1
            } else {
                if byte() == SQLByte.rparen { i += 1 }
                return
            }
        }
    }

    private mutating func string(escapes: SQLLiterals.Escapes, quote: UInt8 = SQLByte.quote) -> [UInt8]? {
        guard let (bytes, next) = SQLLiterals.quoted(b, at: i, end: end, quote: quote, escapes: escapes) else {
            return nil
        }
        i = next
        return bytes
    }

    private var stringEscapes: SQLLiterals.Escapes { opts.backslashStrings ? .mysql : .none }

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    private mutating func literal() -> SQLValue? {
        let c = byte()
        if c == SQLByte.quote {
            return string(escapes: stringEscapes).map { .string($0) }
        }
        if c == SQLByte.dquote && opts.doubleQuotedStrings {
            return string(escapes: stringEscapes, quote: SQLByte.dquote).map { .string($0) }
        }
        if SQLByte.isDigit(c) || c == SQLByte.dot || c == SQLByte.minus || c == SQLByte.plus {
            return number()
        }
        if c == SQLByte.dollar && opts.dollarQuotes {
            return dollarString().map { .string($0) }
        }
        guard SQLByte.isLetter(c) || c == SQLByte.underscore else { return nil }
        let start = i
        guard let w = word() else { return nil }
        let len = w.count
        let next = byte()
        if next == SQLByte.quote && len == 1 {
            switch c | 0x20 {
            case 0x65 where opts.escapeStrings:  // E'…'
                return string(escapes: .postgresE).map { .string($0) }
            case 0x78:  // X'…'
                guard let s = string(escapes: .none), let bytes = SQLLiterals.hexBytes(s) else { return nil }
                return .blob(bytes)
            case 0x6E:  // N'…'
                return string(escapes: stringEscapes).map { .string($0) }
            default:
                return nil  // B'0101' and the like stay raw
            }
        }
        if c == SQLByte.underscore && opts.dialect == .mysql {
            // A character-set introducer: _binary '…', _utf8mb4 '…', _binary 0x…
            let binary = SQLByte.matches(b, start, w.upperBound, Self.kwBinary) && len == Self.kwBinary.count
            skipTrivia()
            guard let v = literal() else { return nil }
            switch v {
            case .string(let s): return binary ? .blob(s) : .string(s)
            case .blob(let s): return binary ? .blob(s) : .string(s)
            default: return nil
            }
        }
        if !SQLByte.isIdent(next) {
            if len == 4 && SQLByte.matches(b, start, end, Self.kwNull) { return .null }
            if len == 4 && SQLByte.matches(b, start, end, Self.kwTrue) { return .bool(true) }
            if len == 5 && SQLByte.matches(b, start, end, Self.kwFalse) { return .bool(false) }
        }
        // Function calls SQLite's .dump uses to spell control characters.
        let save = i
        skipTrivia()
        guard byte() == SQLByte.lparen else {
            i = save
            return nil
        }
        i += 1
        if len == 7 && SQLByte.matches(b, start, end, Self.kwReplace) {
            guard let (s, _) = valueExpression(), case .string(let subject) = s, comma(),
                let (f, _) = valueExpression(), case .string(let from) = f, comma(),
                let (t, _) = valueExpression(), case .string(let to) = t, closeParen()
            else { return nil }
            return .string(Self.replace(subject, from, to))
        }
        if len == 4 && SQLByte.matches(b, start, end, Self.kwChar) {
            var out: [UInt8] = []
            while true {
                skipTrivia()
                guard case .number(let n)? = number(), let cp = UInt32(n) else { return nil }
                SQLByte.appendUTF8(cp, to: &out)
                skipTrivia()
                if byte() == SQLByte.comma {
                    i += 1
                } else if closeParen() {
                    return .string(out)
                } else {
                    return nil
                }
            }
        }
        if len == 6 && SQLByte.matches(b, start, end, Self.kwUnistr) {
            skipTrivia()
            guard byte() == SQLByte.quote, let s = string(escapes: .none), closeParen(),
                let decoded = SQLLiterals.unistr(s)
            else { return nil }
            return .string(decoded)
        }
        return nil
    }

    /// A PostgreSQL dollar-quoted string `$tag$…$tag$` at the cursor.
    private mutating func dollarString() -> [UInt8]? {
        var j = i + 1
        if j < end && SQLByte.isDigit(b[j]) { return nil }
        while j < end && b[j] != SQLByte.dollar && SQLByte.isIdent(b[j]) { j += 1 }
        guard j < end && b[j] == SQLByte.dollar else { return nil }
        let tagLen = j + 1 - i
        var k = j + 1
        while let d = SQLScanner.find(SQLByte.dollar, b, from: k, to: end) {
            if d + tagLen <= end && b[d..<d + tagLen].elementsEqual(b[i..<i + tagLen]) {
                let body = Array(UnsafeBufferPointer(rebasing: b[j + 1..<d]))
                i = d + tagLen
                return body
            }
            k = d + 1
        }
        return nil
    }

    private mutating func comma() -> Bool {
        skipTrivia()
        guard byte() == SQLByte.comma else { return false }
        i += 1
        skipTrivia()
        return true
    }

    private mutating func closeParen() -> Bool {
        skipTrivia()
        guard byte() == SQLByte.rparen else { return false }
        i += 1
        return true
    }

    /// A numeric literal (sign, digits, fraction, exponent); MySQL `0x…` is a blob.
    private mutating func number() -> SQLValue? {
        let start = i
        var j = i
        if j < end && (b[j] == SQLByte.minus || b[j] == SQLByte.plus) { j += 1 }
        if opts.dialect == .mysql && j == i && j + 1 < end && b[j] == 0x30 && (b[j + 1] | 0x20) == 0x78 {
            var k = j + 2
            while k < end && SQLByte.hexValue(b[k]) != nil { k += 1 }
            if k < end && SQLByte.isIdent(b[k]) { return nil }
            guard let bytes = SQLLiterals.hexBytes(UnsafeBufferPointer(rebasing: b[j + 2..<k])) else { return nil }
            i = k
            return .blob(bytes)
        }
        var digits = 0
        while j < end && SQLByte.isDigit(b[j]) {
            j += 1
            digits += 1
        }
        if j < end && b[j] == SQLByte.dot {
            j += 1
            while j < end && SQLByte.isDigit(b[j]) {
                j += 1
                digits += 1
            }
        }
        if digits == 0 { return nil }
        if j < end && (b[j] | 0x20) == 0x65 {
            var k = j + 1
            if k < end && (b[k] == SQLByte.minus || b[k] == SQLByte.plus) { k += 1 }
            let e = k
            while k < end && SQLByte.isDigit(b[k]) { k += 1 }
            if k > e { j = k }
        }
        if j < end && SQLByte.isIdent(b[j]) { return nil }
        i = j
        return .number(text(start..<j))
    }

    /// Replaces every occurrence of `from` in `s` with `to` (SQLite's `replace`: an empty `from` changes nothing).
    static func replace(_ s: [UInt8], _ from: [UInt8], _ to: [UInt8]) -> [UInt8] {
        guard !from.isEmpty, s.count >= from.count else { return s }
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var k = 0
        let first = from[0]
        while k < s.count {
            if s[k] == first && k + from.count <= s.count && s[k..<k + from.count].elementsEqual(from) {
                out.append(contentsOf: to)
                k += from.count
            } else {
                out.append(s[k])
                k += 1
            }
        }
        return out
    }
}
