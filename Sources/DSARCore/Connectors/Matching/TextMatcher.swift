import Foundation

/// One identifier found in free text: which table entry, and the exact bytes that matched.
package struct TextMatch: Sendable, Equatable {
    /// Entry index in the ``IdentifierTable`` (use `hit(_:)` for the identifier and jobs).
    package var entry: Int
    /// Byte offsets of the matched text within the scanned buffer (the form that matched,
    /// e.g. `alice%40example.com`), which is what redaction replaces.
    package var range: Range<Int>
}

/// Finds identifiers in free text (log lines, `text:` columns) on token boundaries:
/// `alice@example.com` never matches `malice@example.com` or `alice@example.com.evil.org`, and
/// `1042` never matches `10420` or `21042`. Emails match case-insensitively, URL-encoded and with an
/// internationalised domain in either spelling (UTF-8 or `xn--`).
///
/// Tokens (user ids, IPs, custom types) are runs of letters, digits, `. _ % + - @ :` and non-ASCII
/// bytes. E-mail addresses are found around each `@` (or `%40`) instead: the domain extends right
/// over letters, digits, `-`, `.` and non-ASCII (trailing `.`/`-` and non-ASCII punctuation are not
/// part of it) and must not be followed by `@`, `_` or a `%XX` that decodes to a domain byte or `@`;
/// the local part extends left over RFC 5322 atext (letters, digits, ``! # $ % & ' * + - / = ? ^ _ ` { | } ~``,
/// `.`, and non-ASCII), and every start inside that run is tried that begins the run or follows a
/// separator — atext punctuation other than `. - _ +` (so `email=`, `?u=`, `/u/`, `'…'` and `|` work), `..`,
/// a `%XX` that decodes to a separator or a non-atext byte, or non-ASCII punctuation (`“…”`). The
/// candidate is compared exactly with the normalised requested value.
package struct TextMatcher: Sendable {
    let table: IdentifierTable
    /// Type codes to look for (nil: every type in the table).
    let wanted: [Bool]
    let wantEmail: Bool
    let wantPhone: Bool
    let wantIP: Bool
    let emailCode: Int?
    let phoneCode: Int?
    let ipCode: Int?
    /// The literal prefilter for small batches (nil: every text goes through the token scan).
    let prefilter: LiteralPrefilter?

    /// Token bytes: letters, digits, `. _ % + - @ :` and every non-ASCII byte.
    static let tokenByte: [Bool] = (0..<256).map { b in
        let c = UInt8(b)
        if c >= 0x80 { return true }
        if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) { return true }
        return [
            UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "%"), UInt8(ascii: "+"), UInt8(ascii: "-"),
            UInt8(ascii: "@"), UInt8(ascii: ":"),
        ].contains(c)
    }

    static let clsToken: UInt8 = 1
    static let clsLocal: UInt8 = 2
    static let clsSeparator: UInt8 = 4
    static let clsDomain: UInt8 = 8

    /// Byte classes for the scan: token, e-mail local part (atext, `.`, non-ASCII), separator inside
    /// a local-part run (atext punctuation except `. - _ +`), domain (letters, digits, `-`, `.`, non-ASCII).
    static let byteClass: [UInt8] = (0..<256).map { b in
        let c = UInt8(b)
        var k: UInt8 = tokenByte[b] ? clsToken : 0
        let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
        let punct = Array("!#$%&'*/=?^`{|}~".utf8)
        if alnum || c >= 0x80 || c == 0x2E || c == 0x2D || c == 0x5F || c == 0x2B || punct.contains(c) { k |= clsLocal }
        if punct.contains(c) && c != 0x25 { k |= clsSeparator }
        if alnum || c >= 0x80 || c == 0x2E || c == 0x2D { k |= clsDomain }
        return k
    }

    /// A matcher for `types` (nil: all types of the batch). With `prefilter` (the default), a
    /// batch with few distinct needles first rules texts out with ``LiteralPrefilter``; the matches
    /// are the same either way.
    /// `prefilterLimit` overrides the needle count above which the token path is used (tests).
    package init(table: IdentifierTable, types: Set<String>?, prefilter: Bool = true, prefilterLimit: Int? = nil) {
        self.table = table
        let w = table.types.map { types?.contains($0) ?? true }
        wanted = w
        let e = table.code(of: "email")
        let p = table.code(of: "phone")
        let i = table.code(of: "ip")
        emailCode = e
        phoneCode = p
        ipCode = i
        wantEmail = e.map { w[$0] } ?? false
        wantPhone = p.map { w[$0] } ?? false
        wantIP = i.map { w[$0] } ?? false
        self.prefilter =
            prefilter
            ? LiteralPrefilter(
                table: table, wanted: w, emailCode: e, wantEmail: wantEmail, ipCode: i, wantIP: wantIP,
                limit: prefilterLimit ?? LiteralPrefilter.maxNeedles)
            : nil
    }

    /// Whether this matcher rules texts out with the literal prefilter.
    package var usesPrefilter: Bool { prefilter != nil }

    /// Whether nothing can match (no wanted type in the batch).
    package var isInert: Bool { !wanted.contains(true) }

    /// Appends every match in `text` to `out`.
    package func scan(_ text: UnsafeRawBufferPointer, into out: inout [TextMatch]) {
        guard !isInert, text.count > 0 else { return }
        // No needle in the text: the token scan would find nothing (phones have no needle).
        if let prefilter, !prefilter.mayMatch(text) {
            if wantPhone { phones(text, into: &out) }
            return
        }
        let n = text.count
        var i = 0
        var scratch: [UInt8] = []
        let emails = wantEmail
        TextMatcher.byteClass.withUnsafeBufferPointer { cls in
            while i < n {
                while i < n && cls[Int(text[i])] & 1 == 0 { i += 1 }
                let start = i
                var special = false
                while i < n {
                    let b = text[i]
                    if cls[Int(b)] & 1 == 0 { break }
                    if b == 0x40 {
                        if emails { email(text, at: i, width: 1, cls, scratch: &scratch, into: &out) }
                    } else if b == 0x25 {
                        if emails && i + 2 < n && text[i + 1] == 0x34 && text[i + 2] == 0x30 {
                            email(text, at: i, width: 3, cls, scratch: &scratch, into: &out)
                        }
                    } else if b == 0x3A {
                        special = true
                    }
                    i += 1
                }
                if start < i {
                    token(text, start, i, special: special, into: &out)
                    // `\t1042` in a COPY row or a JSON string is a tab, then the token.
                    if start + 1 < i && TextMatcher.afterEscape(text, start + 1) {
                        token(text, start + 1, i, special: special, into: &out)
                    }
                }
            }
        }
        if wantPhone { phones(text, into: &out) }
    }

    @inline(__always)
    func emit(_ entry: Int, _ r: Range<Int>, _ out: inout [TextMatch]) {
        if !out.contains(where: { $0.entry == entry && $0.range == r }) {
            out.append(TextMatch(entry: entry, range: r))
        }
    }

    func token(_ text: UnsafeRawBufferPointer, _ s0: Int, _ e0: Int, special: Bool, into out: inout [TextMatch]) {
        var s = s0
        var e = e0
        // Sentence punctuation around a token is not part of it: "id 1042." / "(user:1042)".
        while e > s, text[e - 1] == 0x2E || text[e - 1] == 0x3A || text[e - 1] == 0x2D || text[e - 1] == 0x2B { e -= 1 }
        while s < e, text[s] == 0x2E || text[s] == 0x3A || text[s] == 0x2D { s += 1 }
        guard s < e else { return }
        plain(text, s, e, into: &out)
        guard special else { return }
        // Split on ':' for "uid:1042"; IPv6 is tried whole.
        var segStart = s
        var sawColon = false
        for k in s...e {
            if k == e || text[k] == 0x3A {
                if k < e { sawColon = true }
                if sawColon && segStart < k { plain(text, segStart, k, into: &out) }
                segStart = k + 1
            }
        }
        if wantIP && sawColon, let ipCode {
            // IPv6: canonicalise and look up.
            let str = String(decoding: UnsafeRawBufferPointer(rebasing: text[s..<e]), as: UTF8.self)
            if case .success(let v) = IdentifierNormalizer.normalize(type: "ip", str) {
                var bytes = Array(v.utf8)
                bytes.withUnsafeBytes { p in table.lookup(p, type: ipCode) { emit($0, s..<e, &out) } }
                bytes.removeAll()
            }
        }
    }

    /// The token as it stands (user ids, custom ids, IPv4, phones written without spaces).
    @inline(__always)
    func plain(_ text: UnsafeRawBufferPointer, _ s: Int, _ e: Int, into out: inout [TextMatch]) {
        guard table.lengthPresent(e - s) else { return }
        table.lookup(UnsafeRawBufferPointer(rebasing: text[s..<e]), type: nil) { idx in
            let t = table.entryType(idx)
            if wanted[t] && t != emailCode { emit(idx, s..<e, &out) }
        }
    }

    /// Whether `k` follows a backslash escape that stands for a control character (`\n`, `\t`,
    /// `\r`, `\b`, `\f`, `\v`: JSON strings, PostgreSQL COPY text, MySQL strings, C-style logs),
    /// i.e. `text[k - 1]` is one of those letters preceded by an odd number of backslashes. The
    /// letter belongs to the escape, not to the identifier after it: `\nalice@example.com` is a
    /// line break, then `alice@example.com`.
    @inline(__always)
    static func afterEscape(_ text: UnsafeRawBufferPointer, _ k: Int) -> Bool {
        guard k >= 2 else { return false }
        switch text[k - 1] {
        case 0x6E, 0x74, 0x72, 0x62, 0x66, 0x76: break
        default: return false
        }
        var backslashes = 0
        var j = k - 2
        while j >= 0 && text[j] == 0x5C {
            backslashes += 1
            j -= 1
        }
        return backslashes % 2 == 1
    }

    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }

    /// The byte a `%XX` at `k` stands for.
    @inline(__always)
    static func percentDecoded(_ text: UnsafeRawBufferPointer, _ k: Int, limit: Int) -> UInt8? {
        guard k + 2 < limit, text[k] == 0x25, let h = hexValue(text[k + 1]), let l = hexValue(text[k + 2]) else {
            return nil
        }
        return h << 4 | l
    }

    /// The Unicode scalar whose UTF-8 encoding ends at byte `end - 1` (not before `floor`), and its length.
    static func scalar(endingAt end: Int, _ text: UnsafeRawBufferPointer, floor: Int) -> (Unicode.Scalar, Int)? {
        var k = end - 1
        while k > floor && k > end - 4 && text[k] & 0xC0 == 0x80 { k -= 1 }
        guard k >= floor else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: text[k..<end])
        let str = String(decoding: bytes, as: UTF8.self)
        guard str.unicodeScalars.count == 1, let s = str.unicodeScalars.first, s.value != 0xFFFD else { return nil }
        return (s, end - k)
    }

    /// Non-ASCII punctuation or symbols (curly quotes, guillemets, `。`) end a local part or a domain.
    static func isBoundaryScalar(_ s: Unicode.Scalar) -> Bool {
        !(s.properties.isAlphabetic || s.properties.numericType != nil
            || s.properties.generalCategory == .nonspacingMark
            || s.properties.generalCategory == .spacingMark)
    }

    /// E-mail candidates around the `@` (`width` 1) or `%40` (`width` 3) at `a`.
    func email(
        _ text: UnsafeRawBufferPointer, at a: Int, width w: Int, _ cls: UnsafeBufferPointer<UInt8>,
        scratch: inout [UInt8],
        into out: inout [TextMatch]
    ) {
        guard let emailCode else { return }
        let n = text.count
        // Domain: right over domain bytes; what follows must not continue an address.
        let ds = a + w
        var d = ds
        var nonASCII = false
        while d < n {
            let b = text[d]
            if cls[Int(b)] & TextMatcher.clsDomain == 0 { break }
            if b >= 0x80 { nonASCII = true }
            d += 1
        }
        if d < n {
            let b = text[d]
            if b == 0x40 || b == 0x5F { return }
            if b == 0x25, let c = TextMatcher.percentDecoded(text, d, limit: n),
                c == 0x40 || c == 0x5F || cls[Int(c)] & TextMatcher.clsDomain != 0
            {
                return
            }
        }
        var de = d
        while de > ds {
            let b = text[de - 1]
            if b == 0x2E || b == 0x2D {
                de -= 1
            } else if nonASCII && b >= 0x80, let sc = TextMatcher.scalar(endingAt: de, text, floor: ds),
                TextMatcher.isBoundaryScalar(sc.0)
            {
                de -= sc.1
            } else {
                break
            }
        }
        guard de > ds else { return }
        // Local part: left over atext, stopping at another `%40`; a run right after an address's
        // `@` is a domain, not a local part.
        // At most 3 × 64 bytes (a local part is at most 64 octets, URL-encoded thrice that): the
        // work per `@` stays bounded; a run cut there never starts a candidate at the cut.
        let floor = max(0, a - 192)
        var l = a
        while l > floor {
            let b = text[l - 1]
            if cls[Int(b)] & TextMatcher.clsLocal == 0 { break }
            if b >= 0x80 { nonASCII = true }
            if b == 0x30 && l >= 3 && text[l - 2] == 0x34 && text[l - 3] == 0x25 { break }
            l -= 1
        }
        if l > 0 && text[l - 1] == 0x40 { return }
        if l >= 3 && text[l - 1] == 0x30 && text[l - 2] == 0x34 && text[l - 3] == 0x25 { return }
        guard l < a else { return }
        let cut = l == floor && l > 0 && cls[Int(text[l - 1])] & TextMatcher.clsLocal != 0
        let domainLength = de - ds
        var s = l
        while s < a {
            let b = text[s]
            // The run may begin with the letter of an escape (`\nalice@…`): the address starts after it.
            var candidate = (s == l && !cut) || (s == l + 1 && TextMatcher.afterEscape(text, s))
            if !candidate {
                let p = text[s - 1]
                if cls[Int(p)] & TextMatcher.clsSeparator != 0 {
                    candidate = true
                } else if p == 0x2E && s - 2 >= l && text[s - 2] == 0x2E {
                    candidate = true  // after "..": no dot-atom has two dots in a row ("see...alice@x.org")
                } else if s - 3 >= l, let c = TextMatcher.percentDecoded(text, s - 3, limit: a),
                    cls[Int(c)] & TextMatcher.clsSeparator != 0 || cls[Int(c)] & TextMatcher.clsLocal == 0
                {
                    candidate = true
                } else if p >= 0x80 && b & 0xC0 != 0x80, let sc = TextMatcher.scalar(endingAt: s, text, floor: l),
                    TextMatcher.isBoundaryScalar(sc.0)
                {
                    candidate = true
                }
            }
            if candidate && b != 0x2E && (w == 3 || nonASCII || table.lengthPresent(a - s + 1 + domainLength)) {
                emailCandidate(text, s, a, w, de, emailCode, scratch: &scratch, into: &out)
            }
            s += 1
        }
    }

    /// Looks up the address `text[s..<a] @ text[a+w..<de]`, lower-cased (`%XX` decoded in a
    /// URL-encoded one; non-ASCII lower-cased and composed, NFC).
    func emailCandidate(
        _ text: UnsafeRawBufferPointer, _ s: Int, _ a: Int, _ w: Int, _ de: Int, _ emailCode: Int,
        scratch: inout [UInt8],
        into out: inout [TextMatch]
    ) {
        scratch.removeAll(keepingCapacity: true)
        var ascii = true
        var k = s
        while k < a {
            var b = text[k]
            if w == 3, b == 0x25, let c = TextMatcher.percentDecoded(text, k, limit: a) {
                b = c
                k += 3
            } else {
                k += 1
            }
            if b >= 0x80 { ascii = false } else if b >= 0x41 && b <= 0x5A { b += 0x20 }
            scratch.append(b)
        }
        scratch.append(0x40)
        for k in (a + w)..<de {
            var b = text[k]
            if b >= 0x80 { ascii = false } else if b >= 0x41 && b <= 0x5A { b += 0x20 }
            scratch.append(b)
        }
        if !ascii {
            let str = String(decoding: scratch, as: UTF8.self).precomposedStringWithCanonicalMapping.lowercased()
            scratch.removeAll(keepingCapacity: true)
            scratch.append(contentsOf: str.utf8)
        }
        scratch.withUnsafeBytes { p in table.lookup(p, type: emailCode) { emit($0, s..<de, &out) } }
    }

    /// Phone numbers written with separators: "+44 20 7946 0000", "(020) 7946-0000".
    func phones(_ text: UnsafeRawBufferPointer, into out: inout [TextMatch]) {
        guard let phoneCode else { return }
        let n = text.count
        var i = 0
        var digits: [UInt8] = []
        func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }
        func isAlnum(_ b: UInt8) -> Bool { isDigit(b) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) }
        while i < n {
            let b = text[i]
            guard b == 0x2B || isDigit(b) || b == 0x28,
                i == 0 || !isAlnum(text[i - 1]) || TextMatcher.afterEscape(text, i)
            else {
                i += 1
                continue
            }
            let start = i
            digits.removeAll(keepingCapacity: true)
            let plus = b == 0x2B
            if plus { i += 1 }
            var lastDigitEnd = i
            func lookup(_ end: Int) {
                guard digits.count >= 5 && digits.count <= 17 else { return }
                var norm = digits
                if !plus && norm.count > 4 && norm[0] == 0x30 && norm[1] == 0x30 {
                    norm.removeFirst(2)
                    norm.insert(0x2B, at: 0)
                } else if plus {
                    norm.insert(0x2B, at: 0)
                }
                norm.withUnsafeBytes { p in table.lookup(p, type: phoneCode) { emit($0, start..<end, &out) } }
            }
            while i < n {
                let c = text[i]
                if isDigit(c) {
                    digits.append(c)
                    i += 1
                    lastDigitEnd = i
                } else if c == 0x20 || c == 0x2D || c == 0x2E || c == 0x28 || c == 0x29 || c == 0x2F {
                    // A separator only continues the number if a digit (or '(') follows soon; the
                    // number so far is a candidate too, since a space may just as well end it
                    // ("+44 20 7946 0000 200": the phone, then a status code).
                    if i + 1 < n && (isDigit(text[i + 1]) || text[i + 1] == 0x28) {
                        if c == 0x20 { lookup(lastDigitEnd) }
                        i += 1
                    } else {
                        break
                    }
                } else {
                    break
                }
            }
            let end = lastDigitEnd
            if end < n && isAlnum(text[end]) {
                i = max(end, start + 1)
                continue
            }
            lookup(end)
            i = max(end, start + 1)
        }
    }
}

extension IdentifierTable {
    /// The type code of an entry.
    @inline(__always)
    func entryType(_ entryIndex: Int) -> Int { Int(entries(entryIndex).type) }
}
