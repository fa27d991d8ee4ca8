/// Decoders for SQL string literals and COPY text fields. All work on bytes; nothing builds a String per value.
enum SQLLiterals {
    enum Escapes { case none, mysql, postgresE }

    /// Decodes a quoted literal whose opening quote is at `start`: doubled quotes collapse, and backslash
    /// escapes are resolved per `escapes`. Returns the bytes and the index just past the closing quote,
    /// or nil if the literal is not closed before `end`.
    static func quoted(
        _ b: UnsafeBufferPointer<UInt8>, at start: Int, end: Int, quote q: UInt8, escapes: Escapes
    ) -> (bytes: [UInt8], next: Int)? {
        var out: [UInt8] = []
        var i = start + 1
        var seg = i
        while i < end {
            if escapes == .none {
                // Only the quote matters: jump to it.
                guard let j = SQLScanner.find(q, b, from: i, to: end) else { return nil }
                i = j
            }
            let c = b[i]
            if c == q {
                if i + 1 < end && b[i + 1] == q {
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: b[seg..<i + 1]))
                    i += 2
                    seg = i
                    continue
                }
                if out.isEmpty { return (Array(UnsafeBufferPointer(rebasing: b[seg..<i])), i + 1) }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[seg..<i]))
                return (out, i + 1)
            }
            if c == SQLByte.backslash && escapes != .none {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: b[seg..<i]))
                if i + 1 >= end { return nil }
                i = escapes == .mysql ? mysqlEscape(b, i, &out) : postgresEscape(b, i, end, &out)
                seg = i
                continue
            }
            i += 1
        }
        return nil
    }

    /// One MySQL backslash escape at `i` (`b[i+1]` exists); returns the index after it.
    @inline(__always) static func mysqlEscape(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ out: inout [UInt8]) -> Int {
        let c = b[i + 1]
        switch c {
        case 0x30: out.append(0)  // \0
        case 0x62: out.append(0x08)  // \b
        case 0x6E: out.append(SQLByte.lf)  // \n
        case 0x72: out.append(SQLByte.cr)  // \r
        case 0x74: out.append(SQLByte.tab)  // \t
        case 0x5A: out.append(0x1A)  // \Z
        case 0x25, 0x5F:
            out.append(SQLByte.backslash)
            out.append(c)  // \% and \_ keep the backslash
        default: out.append(c)  // \\ \' \" and anything else
        }
        return i + 2
    }

    /// One PostgreSQL `E'…'` backslash escape at `i`; returns the index after it.
    static func postgresEscape(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, _ out: inout [UInt8]) -> Int {
        let c = b[i + 1]
        switch c {
        case 0x62:
            out.append(0x08)
            return i + 2
        case 0x66:
            out.append(0x0C)
            return i + 2
        case 0x6E:
            out.append(SQLByte.lf)
            return i + 2
        case 0x72:
            out.append(SQLByte.cr)
            return i + 2
        case 0x74:
            out.append(SQLByte.tab)
            return i + 2
        case 0x30...0x37: return octal(b, i + 1, end, &out)
        case 0x78: return hex(b, i + 1, end, &out)
        case 0x75, 0x55:  // \uXXXX, \UXXXXXXXX
            let digits = c == 0x75 ? 4 : 8
            guard var cp = hexNumber(b, i + 2, end, digits) else {
                out.append(c)
                return i + 2
            }
            var next = i + 2 + digits
            if cp >= 0xD800 && cp < 0xDC00 && next + 6 <= end && b[next] == SQLByte.backslash && b[next + 1] == 0x75,
                let lo = hexNumber(b, next + 2, end, 4), lo >= 0xDC00 && lo < 0xE000
            {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                next += 6
            }
            SQLByte.appendUTF8(cp, to: &out)
            return next
        default:
            out.append(c)
            return i + 2
        }
    }

    /// Up to three octal digits starting at `j`; returns the index after them.
    @inline(__always) static func octal(
        _ b: UnsafeBufferPointer<UInt8>, _ j: Int, _ end: Int, _ out: inout [UInt8]
    ) -> Int {
        var v: UInt32 = 0
        var k = j
        while k < end && k < j + 3 && b[k] &- 0x30 < 8 {
            v = v * 8 + UInt32(b[k] &- 0x30)
            k += 1
        }
        out.append(UInt8(truncatingIfNeeded: v))
        return k
    }

    /// `x` at `j` followed by one or two hex digits; a bare `x` stands for itself.
    @inline(__always) static func hex(
        _ b: UnsafeBufferPointer<UInt8>, _ j: Int, _ end: Int, _ out: inout [UInt8]
    ) -> Int {
        var k = j + 1
        var v: UInt8 = 0
        while k < end && k < j + 3, let h = SQLByte.hexValue(b[k]) {
            v = v &* 16 &+ h
            k += 1
        }
        if k == j + 1 {
            out.append(b[j])
            return j + 1
        }
        out.append(v)
        return k
    }

    static func hexNumber(_ b: UnsafeBufferPointer<UInt8>, _ j: Int, _ end: Int, _ digits: Int) -> UInt32? {
        guard j + digits <= end else { return nil }
        var v: UInt32 = 0
        for k in j..<j + digits {
            guard let h = SQLByte.hexValue(b[k]) else { return nil }
            v = v << 4 | UInt32(h)
        }
        return v
    }

    /// Decodes hex digits (`X'0a0B'`, `0x…`, bytea `\x…`); nil if a non-hex byte appears. An odd count is
    /// left-padded with a zero, as MySQL does.
    static func hexBytes<C: Collection>(_ digits: C) -> [UInt8]? where C.Element == UInt8 {
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2 + 1)
        var pending: UInt8? = digits.count % 2 == 1 ? 0 : nil
        for c in digits {
            if SQLByte.isSpace(c) { continue }
            guard let h = SQLByte.hexValue(c) else { return nil }
            if let p = pending {
                out.append(p << 4 | h)
                pending = nil
            } else {
                pending = h
            }
        }
        return out
    }

    /// Decodes a PostgreSQL COPY text-format field `b[start..<end]` (not `\N`, which the caller checks).
    static func copyField(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [UInt8] {
        guard let first = SQLScanner.find(SQLByte.backslash, b, from: start, to: end) else {
            return Array(UnsafeBufferPointer(rebasing: b[start..<end]))
        }
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        var seg = start
        var next: Int? = first
        while let i = next {
            out.append(contentsOf: UnsafeBufferPointer(rebasing: b[seg..<i]))
            if i + 1 >= end {
                out.append(SQLByte.backslash)
                return out
            }
            let e = b[i + 1]
            switch e {
            case 0x62:
                out.append(0x08)
                seg = i + 2
            case 0x66:
                out.append(0x0C)
                seg = i + 2
            case 0x6E:
                out.append(SQLByte.lf)
                seg = i + 2
            case 0x72:
                out.append(SQLByte.cr)
                seg = i + 2
            case 0x74:
                out.append(SQLByte.tab)
                seg = i + 2
            case 0x76:
                out.append(0x0B)
                seg = i + 2
            case 0x30...0x37: seg = octal(b, i + 1, end, &out)
            case 0x78: seg = hex(b, i + 1, end, &out)
            default:
                out.append(e)
                seg = i + 2
            }
            next = SQLScanner.find(SQLByte.backslash, b, from: seg, to: end)
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: b[seg..<end]))
        return out
    }

    /// Decodes PostgreSQL bytea text (`\x0a0b` hex format, or the old escape format `\\`, `\ooo`).
    static func bytea(_ text: [UInt8]) -> [UInt8]? {
        if text.count >= 2 && text[0] == SQLByte.backslash && text[1] == 0x78 {
            return hexBytes(text[2...])
        }
        var out: [UInt8] = []
        var i = 0
        while i < text.count {
            let c = text[i]
            if c != SQLByte.backslash {
                out.append(c)
                i += 1
                continue
            }
            if i + 1 < text.count && text[i + 1] == SQLByte.backslash {
                out.append(SQLByte.backslash)
                i += 2
            } else if i + 3 < text.count, text[i + 1] &- 0x30 < 4, text[i + 2] &- 0x30 < 8, text[i + 3] &- 0x30 < 8 {
                out.append((text[i + 1] &- 0x30) << 6 | (text[i + 2] &- 0x30) << 3 | (text[i + 3] &- 0x30))
                i += 4
            } else {
                return nil
            }
        }
        return out
    }

    /// SQLite `unistr('…')` escapes: `\XXXX`, `\uXXXX`, `\+XXXXXX`, `\UXXXXXXXX`, `\\`.
    static func unistr(_ s: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        var i = 0
        while i < s.count {
            let c = s[i]
            if c != SQLByte.backslash {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < s.count else { return nil }
            let e = s[i + 1]
            var digits = 4
            var from = i + 1
            if e == SQLByte.backslash {
                out.append(SQLByte.backslash)
                i += 2
                continue
            } else if e == 0x75 {
                from = i + 2
            } else if e == SQLByte.plus {
                from = i + 2
                digits = 6
            } else if e == 0x55 {
                from = i + 2
                digits = 8
            }
            guard let cp = s.withUnsafeBufferPointer({ hexNumber($0, from, s.count, digits) }) else { return nil }
            SQLByte.appendUTF8(cp, to: &out)
            i = from + digits
        }
        return out
    }

    /// Whether `b[start..<end]` is a plain decimal number: `-?[0-9]+(\.[0-9]+)?`, optionally with an exponent
    /// when `exponent` is true.
    static func isPlainNumber(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, exponent: Bool) -> Bool {
        var i = start
        if i < end && b[i] == SQLByte.minus { i += 1 }
        let intStart = i
        while i < end && SQLByte.isDigit(b[i]) { i += 1 }
        if i == intStart { return false }
        if i < end && b[i] == SQLByte.dot {
            i += 1
            let fracStart = i
            while i < end && SQLByte.isDigit(b[i]) { i += 1 }
            if i == fracStart { return false }
        }
        if exponent && i < end && (b[i] | 0x20) == 0x65 {
            i += 1
            if i < end && (b[i] == SQLByte.plus || b[i] == SQLByte.minus) { i += 1 }
            let expStart = i
            while i < end && SQLByte.isDigit(b[i]) { i += 1 }
            if i == expStart { return false }
        }
        return i == end
    }
}
