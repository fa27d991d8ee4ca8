import Foundation

/// One identifier found in free text: which table entry, and the exact bytes that matched.
public struct TextMatch: Sendable, Equatable {
    /// Entry index in the ``IdentifierTable`` (use `hit(_:)` for the identifier and jobs).
    public var entry: Int
    /// Byte offsets of the matched text within the scanned buffer (the form that matched,
    /// e.g. `alice%40example.com`), which is what redaction replaces.
    public var range: Range<Int>
}

/// Finds identifiers in free text (log lines, `text:` columns) on token boundaries:
/// `alice@example.com` never matches `malice@example.com` or `alice@example.com.evil.org`, and
/// `1042` never matches `10420` or `21042`. Emails match case-insensitively and URL-encoded.
public struct TextMatcher: Sendable {
    let table: IdentifierTable
    /// Type codes to look for (nil: every type in the table).
    let wanted: [Bool]
    let wantEmail: Bool
    let wantPhone: Bool
    let wantIP: Bool
    let emailCode: Int?
    let phoneCode: Int?
    let ipCode: Int?

    /// Token bytes: letters, digits, `. _ % + - @ :` and every non-ASCII byte.
    static let tokenByte: [Bool] = (0..<256).map { b in
        let c = UInt8(b)
        if c >= 0x80 { return true }
        if (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) { return true }
        return [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "%"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), UInt8(ascii: ":")].contains(c)
    }

    /// A matcher for `types` (nil: all types of the batch).
    public init(table: IdentifierTable, types: Set<String>?) {
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
    }

    /// Whether nothing can match (no wanted type in the batch).
    public var isInert: Bool { !wanted.contains(true) }

    /// Appends every match in `text` to `out`.
    public func scan(_ text: UnsafeRawBufferPointer, into out: inout [TextMatch]) {
        guard !isInert, text.count > 0 else { return }
        let n = text.count
        var i = 0
        var scratch: [UInt8] = []
        TextMatcher.tokenByte.withUnsafeBufferPointer { tok in
            while i < n {
                while i < n && !tok[Int(text[i])] { i += 1 }
                let start = i
                var special = false
                while i < n {
                    let b = text[i]
                    if !tok[Int(b)] { break }
                    if b == 0x40 || b == 0x25 || b == 0x3A { special = true }
                    i += 1
                }
                if start < i { token(text, start, i, special: special, scratch: &scratch, into: &out) }
            }
        }
        if wantPhone { phones(text, into: &out) }
    }

    @inline(__always)
    func emit(_ entry: Int, _ r: Range<Int>, _ out: inout [TextMatch]) {
        if !out.contains(where: { $0.entry == entry && $0.range == r }) { out.append(TextMatch(entry: entry, range: r)) }
    }

    func token(
        _ text: UnsafeRawBufferPointer, _ s0: Int, _ e0: Int, special: Bool, scratch: inout [UInt8], into out: inout [TextMatch]
    ) {
        var s = s0
        var e = e0
        // Sentence punctuation around a token is not part of it: "id 1042." / "(user:1042)".
        while e > s, text[e - 1] == 0x2E || text[e - 1] == 0x3A || text[e - 1] == 0x2D || text[e - 1] == 0x2B { e -= 1 }
        while s < e, text[s] == 0x2E || text[s] == 0x3A || text[s] == 0x2D { s += 1 }
        guard s < e else { return }
        plain(text, s, e, into: &out)
        guard special else { return }
        // Split on ':' for "mailto:x@y", "uid:1042"; IPv6 is tried whole.
        var segStart = s
        var sawColon = false
        for k in s...e {
            if k == e || text[k] == 0x3A {
                if k < e { sawColon = true }
                if sawColon && segStart < k { plain(text, segStart, k, into: &out) }
                if sawColon || k == e { emailCandidate(text, segStart, k, scratch: &scratch, into: &out) }
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

    /// An e-mail address, lower-cased, with `%40` decoded to `@`.
    func emailCandidate(_ text: UnsafeRawBufferPointer, _ s: Int, _ e: Int, scratch: inout [UInt8], into out: inout [TextMatch]) {
        guard wantEmail, let emailCode, e > s else { return }
        scratch.removeAll(keepingCapacity: true)
        var k = s
        var at = 0
        while k < e {
            var b = text[k]
            if b == 0x25 && k + 2 < e && text[k + 1] == 0x34 && text[k + 2] == 0x30 {
                scratch.append(0x40)
                at += 1
                k += 3
                continue
            }
            if b == 0x40 { at += 1 }
            if b >= 0x41 && b <= 0x5A { b += 0x20 }
            scratch.append(b)
            k += 1
        }
        guard at == 1 else { return }
        while let last = scratch.last, last == 0x2E { scratch.removeLast() }
        scratch.withUnsafeBytes { p in table.lookup(p, type: emailCode) { emit($0, s..<e, &out) } }
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
            guard b == 0x2B || isDigit(b) || b == 0x28, i == 0 || !isAlnum(text[i - 1]) else {
                i += 1
                continue
            }
            let start = i
            digits.removeAll(keepingCapacity: true)
            let plus = b == 0x2B
            if plus { i += 1 }
            var lastDigitEnd = i
            while i < n {
                let c = text[i]
                if isDigit(c) {
                    digits.append(c)
                    i += 1
                    lastDigitEnd = i
                } else if c == 0x20 || c == 0x2D || c == 0x2E || c == 0x28 || c == 0x29 || c == 0x2F {
                    // A separator only continues the number if a digit (or '(') follows soon.
                    if i + 1 < n && (isDigit(text[i + 1]) || text[i + 1] == 0x28) { i += 1 } else { break }
                } else {
                    break
                }
            }
            let end = lastDigitEnd
            if end < n && isAlnum(text[end]) {
                i = max(end, start + 1)
                continue
            }
            if digits.count >= 5 && digits.count <= 17 {
                var norm = digits
                if !plus && norm.count > 4 && norm[0] == 0x30 && norm[1] == 0x30 {
                    norm.removeFirst(2)
                    norm.insert(0x2B, at: 0)
                } else if plus {
                    norm.insert(0x2B, at: 0)
                }
                norm.withUnsafeBytes { p in table.lookup(p, type: phoneCode) { emit($0, start..<end, &out) } }
            }
            i = max(end, start + 1)
        }
    }
}

extension IdentifierTable {
    /// The type code of an entry.
    @inline(__always)
    func entryType(_ entryIndex: Int) -> Int { Int(entries(entryIndex).type) }
}
