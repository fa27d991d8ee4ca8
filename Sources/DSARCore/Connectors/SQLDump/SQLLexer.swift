#if canImport(Glibc)
import Glibc
#endif

/// Byte constants and classifiers for the SQL scanners (ASCII only; bytes >= 0x80 count as identifier bytes).
enum SQLByte {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x27
    static let dquote: UInt8 = 0x22
    static let backtick: UInt8 = 0x60
    static let backslash: UInt8 = 0x5C
    static let lparen: UInt8 = 0x28
    static let rparen: UInt8 = 0x29
    static let lbracket: UInt8 = 0x5B
    static let rbracket: UInt8 = 0x5D
    static let comma: UInt8 = 0x2C
    static let semicolon: UInt8 = 0x3B
    static let dollar: UInt8 = 0x24
    static let hash: UInt8 = 0x23
    static let minus: UInt8 = 0x2D
    static let plus: UInt8 = 0x2B
    static let slash: UInt8 = 0x2F
    static let star: UInt8 = 0x2A
    static let dot: UInt8 = 0x2E
    static let colon: UInt8 = 0x3A
    static let pipe: UInt8 = 0x7C
    static let underscore: UInt8 = 0x5F

    @inline(__always) static func isSpace(_ c: UInt8) -> Bool { c == space || (c >= 0x09 && c <= 0x0D) }
    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    @inline(__always) static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) &- 0x61 < 26 }
    /// Bytes that may continue an unquoted identifier or keyword (`$` as in PostgreSQL and MySQL).
    @inline(__always) static func isIdent(_ c: UInt8) -> Bool {
        isLetter(c) || isDigit(c) || c == underscore || c == dollar || c >= 0x80
    }
    @inline(__always) static func upper(_ c: UInt8) -> UInt8 { (c &- 0x61 < 26) ? c &- 0x20 : c }
    @inline(__always) static func hexValue(_ c: UInt8) -> UInt8? {
        if c &- 0x30 < 10 { return c &- 0x30 }
        let l = c | 0x20
        if l &- 0x61 < 6 { return l &- 0x61 &+ 10 }
        return nil
    }

    /// Whether `b[i..<i+word.count]` equals the upper-case ASCII `word`, ignoring case.
    @inline(__always) static func matches(
        _ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, _ word: [UInt8]
    ) -> Bool {
        if i + word.count > end { return false }
        for k in 0..<word.count where upper(b[i + k]) != word[k] { return false }
        return true
    }

    /// Appends the UTF-8 encoding of a code point (invalid ones become U+FFFD).
    static func appendUTF8(_ cp: UInt32, to out: inout [UInt8]) {
        let scalar = Unicode.Scalar(cp) ?? "\u{FFFD}"
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
    }
}

/// Lexical rules of a dialect that matter for finding statement ends and decoding literals.
struct SQLLexOptions: Sendable {
    var dialect: SQLDialect
    /// MySQL: backslash escapes in every `'…'` and `"…"` string.
    var backslashStrings: Bool
    /// MySQL: `"…"` is a string, not an identifier.
    var doubleQuotedStrings: Bool
    /// MySQL: `#` starts a comment to the end of the line.
    var hashComments: Bool
    /// MySQL: `--` starts a comment only when followed by a space or control character.
    var dashCommentNeedsSpace: Bool
    /// PostgreSQL: `$tag$ … $tag$` dollar quoting.
    var dollarQuotes: Bool
    /// PostgreSQL: `/* /* */ */` nests.
    var nestedComments: Bool
    /// PostgreSQL: `E'…'` strings with backslash escapes.
    var escapeStrings: Bool
    /// PostgreSQL (psql): a `;` inside parentheses does not end a statement.
    var parensHoldStatements: Bool
    /// SQLite: `[…]` quotes an identifier.
    var bracketIdentifiers: Bool
    /// PostgreSQL and SQLite: `||` concatenates strings (in MySQL it is OR).
    var pipesConcatenate: Bool

    init(_ dialect: SQLDialect) {
        self.dialect = dialect
        let my = dialect == .mysql
        let pg = dialect == .postgres
        backslashStrings = my
        doubleQuotedStrings = my
        hashComments = my
        dashCommentNeedsSpace = my
        dollarQuotes = pg
        nestedComments = pg
        escapeStrings = pg
        parensHoldStatements = pg
        bracketIdentifiers = dialect == .sqlite
        pipesConcatenate = !my
    }
}

/// A resumable byte scanner that finds where a statement (or one item of a parenthesised list) ends,
/// honouring strings, quoted identifiers, comments and dollar quotes of the dialect.
///
/// It works on whatever part of the buffer is loaded: when it needs bytes past the end (to see a whole
/// delimiter, the byte after a backslash, a dollar tag…) it returns `.needMore(i)` and, after the
/// caller has loaded more, resumes at `i` with its state (which holds no buffer positions) intact.
struct SQLScanner {
    enum Mode { case statement, listItem }
    /// Where the scanner is (a trivial enum: the dollar tag lives in `tag`, so nothing is retained per byte).
    enum State: Equatable {
        case normal
        case quoted(UInt8, escapes: Bool)
        case lineComment
        case blockComment(Int)
        case dollar
    }
    enum Step: Equatable {
        /// Statement mode: index just past the terminator. List-item mode: index of the `,` or `)`.
        case stop(Int)
        /// More bytes are needed; resume at this index.
        case needMore(Int)
        /// End of input reached (only when `eof` was true) without a terminator.
        case exhausted
    }

    let opts: SQLLexOptions
    let mode: Mode
    let delimiter: [UInt8]
    /// SQLite `CREATE TRIGGER … BEGIN …; …; END;`: only a `;` outside BEGIN/CASE … END ends it.
    let trigger: Bool
    var state = State.normal
    /// The `$tag$` that ends the current dollar-quoted string.
    var tag: [UInt8] = []
    var depth = 0
    var blockDepth = 0

    init(
        _ opts: SQLLexOptions, mode: Mode = .statement, delimiter: [UInt8] = [SQLByte.semicolon], trigger: Bool = false
    ) {
        self.opts = opts
        self.mode = mode
        self.delimiter = delimiter.isEmpty ? [SQLByte.semicolon] : delimiter
        self.trigger = trigger
    }

    private static let kwBegin = Array("BEGIN".utf8)
    private static let kwCase = Array("CASE".utf8)
    private static let kwEnd = Array("END".utf8)

    // swiftlint:disable:next cyclomatic_complexity function_body_length
    mutating func run(_ b: UnsafeBufferPointer<UInt8>, from start: Int, eof: Bool) -> Step {
        let n = b.count
        var i = start
        let d0 = delimiter[0]
        let dlen = delimiter.count
        while i < n {
            switch state {
            case .normal:
                let c = b[i]
                if mode == .statement {
                    if c == d0 && blockDepth == 0 && (depth == 0 || !opts.parensHoldStatements) {
                        if dlen == 1 { return .stop(i + 1) }
                        if i + dlen > n {
                            if !eof { return .needMore(i) }
                        } else {
                            var same = true
                            for k in 1..<dlen where b[i + k] != delimiter[k] {
                                same = false
                                break
                            }
                            if same { return .stop(i + dlen) }
                        }
                    }
                } else if depth == 0 && (c == SQLByte.comma || c == SQLByte.rparen) {
                    return .stop(i)
                }
                switch c {
                case SQLByte.quote:
                    var esc = opts.backslashStrings
                    if opts.escapeStrings && i > 0 && (b[i - 1] | 0x20) == 0x65 && (i < 2 || !SQLByte.isIdent(b[i - 2]))
                    {
                        esc = true
                    }
                    state = .quoted(c, escapes: esc)
                    i += 1
                case SQLByte.dquote:
                    state = .quoted(c, escapes: opts.doubleQuotedStrings)
                    i += 1
                case SQLByte.backtick:
                    state = .quoted(c, escapes: false)
                    i += 1
                case SQLByte.lbracket:
                    if opts.bracketIdentifiers {
                        state = .quoted(SQLByte.rbracket, escapes: false)
                    } else if mode == .listItem {
                        depth += 1
                    }
                    i += 1
                case SQLByte.rbracket:
                    if mode == .listItem && depth > 0 { depth -= 1 }
                    i += 1
                case SQLByte.lparen:
                    depth += 1
                    i += 1
                case SQLByte.rparen:
                    if depth > 0 { depth -= 1 }
                    i += 1
                case SQLByte.minus:
                    if i + 1 >= n {
                        if !eof { return .needMore(i) }
                        i += 1
                    } else if b[i + 1] == SQLByte.minus {
                        if opts.dashCommentNeedsSpace {
                            if i + 2 >= n {
                                if !eof { return .needMore(i) }
                                state = .lineComment
                                i += 2
                            } else if b[i + 2] <= SQLByte.space {
                                state = .lineComment
                                i += 3
                            } else {
                                i += 2
                            }
                        } else {
                            state = .lineComment
                            i += 2
                        }
                    } else {
                        i += 1
                    }
                case SQLByte.hash where opts.hashComments:
                    state = .lineComment
                    i += 1
                case SQLByte.slash:
                    if i + 1 >= n {
                        if !eof { return .needMore(i) }
                        i += 1
                    } else if b[i + 1] == SQLByte.star {
                        state = .blockComment(1)
                        i += 2
                    } else {
                        i += 1
                    }
                case SQLByte.dollar where opts.dollarQuotes:
                    if i > 0 && SQLByte.isIdent(b[i - 1]) {
                        i += 1
                        continue
                    }
                    var j = i + 1
                    if j < n && SQLByte.isDigit(b[j]) {
                        i += 1  // $1: a parameter
                        continue
                    }
                    while j < n && b[j] != SQLByte.dollar && SQLByte.isIdent(b[j]) { j += 1 }
                    if j >= n {
                        if !eof { return .needMore(i) }
                        i += 1
                    } else if b[j] == SQLByte.dollar {
                        tag = Array(b[i...j])
                        state = .dollar
                        i = j + 1
                    } else {
                        i += 1
                    }
                default:
                    if trigger && SQLByte.isLetter(c) && (i == 0 || !SQLByte.isIdent(b[i - 1])) {
                        var j = i + 1
                        while j < n && SQLByte.isIdent(b[j]) { j += 1 }
                        if j >= n && !eof { return .needMore(i) }
                        let len = j - i
                        if (len == 5 && SQLByte.matches(b, i, j, Self.kwBegin))
                            || (len == 4 && SQLByte.matches(b, i, j, Self.kwCase))
                        {
                            blockDepth += 1
                        } else if len == 3 && SQLByte.matches(b, i, j, Self.kwEnd) && blockDepth > 0 {
                            blockDepth -= 1
                        }
                        i = j
                    } else {
                        i += 1
                    }
                }

            case .quoted(let q, let esc):
                while i < n {
                    let c = b[i]
                    if c == q {
                        // A doubled quote stays inside the string.
                        if i + 1 >= n {
                            if !eof { return .needMore(i) }
                            i += 1
                            state = .normal
                            break
                        }
                        if b[i + 1] == q {
                            i += 2
                            continue
                        }
                        i += 1
                        state = .normal
                        break
                    }
                    if esc && c == SQLByte.backslash {
                        if i + 1 >= n {
                            if !eof { return .needMore(i) }
                            i = n
                            break
                        }
                        i += 2
                        continue
                    }
                    i += 1
                }

            case .lineComment:
                if let nl = SQLScanner.find(SQLByte.lf, b, from: i, to: n) {
                    i = nl + 1
                    state = .normal
                } else {
                    i = n
                }

            case .blockComment(let d):
                let c = b[i]
                if c == SQLByte.star || (c == SQLByte.slash && opts.nestedComments) {
                    if i + 1 >= n {
                        if !eof { return .needMore(i) }
                        i += 1
                        continue
                    }
                    if c == SQLByte.star && b[i + 1] == SQLByte.slash {
                        state = d <= 1 ? .normal : .blockComment(d - 1)
                        i += 2
                    } else if c == SQLByte.slash && b[i + 1] == SQLByte.star {
                        state = .blockComment(d + 1)
                        i += 2
                    } else {
                        i += 1
                    }
                } else {
                    i += 1
                }

            case .dollar:
                guard let d = SQLScanner.find(SQLByte.dollar, b, from: i, to: n) else {
                    i = n
                    continue
                }
                if d + tag.count > n {
                    if !eof { return .needMore(d) }
                    i = n
                    continue
                }
                var same = true
                for k in 1..<tag.count where b[d + k] != tag[k] {
                    same = false
                    break
                }
                if same {
                    state = .normal
                    i = d + tag.count
                } else {
                    i = d + 1
                }
            }
        }
        return eof ? .exhausted : .needMore(n)
    }

    /// The index of the first `byte` in `b[from..<to]` (memchr).
    @inline(__always) static func find(_ byte: UInt8, _ b: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard from < to, let base = b.baseAddress else { return nil }
        guard let p = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: p.assumingMemoryBound(to: UInt8.self))
    }
}
