import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What of one found record goes into the subject's export (GDPR Art. 15(4)): a record that matched
/// only through free text keeps only the text fields that mention the subject; other people's
/// e-mail addresses, phone numbers and IPs in those fields (and in every log line) are masked.
package enum ExportView {
    /// The exported form of one record.
    package struct Record: Sendable {
        /// The fields exported (for a mention: only the text fields that mention the subject), masked.
        package var fields: [JSONMember]
        /// The record is someone else's and only mentions the subject in free text.
        package var mention: Bool
        /// How many e-mail addresses, phone numbers and IP addresses of other people were masked.
        package var masked: Int
    }

    /// Counts over one connector's findings.
    package struct Stats: Sendable, Equatable {
        /// Records that only mention the subject (exported reduced to the mentioning text fields).
        package var mentions = 0
        /// Other people's e-mail addresses, phone numbers and IP addresses masked in the export.
        package var masked = 0

        package init(mentions: Int = 0, masked: Int = 0) {
            self.mentions = mentions
            self.masked = masked
        }
    }

    /// What replaces another person's e-mail address.
    package static let emailMarker = "[e-mail of another person]"
    /// What replaces another person's phone number.
    package static let phoneMarker = "[phone number of another person]"
    /// What replaces another person's IP address.
    package static let ipMarker = "[IP address of another person]"

    /// The exported view of `r` for a subject with identity `subject` (request + derived identifiers).
    package static func view(_ r: FoundRecord, subject: [Identifier]) -> Record {
        view(r, subject: Subject(subject))
    }

    /// Totals over one connector's findings for the subject.
    package static func stats(_ o: ConnectorOutcome, subject: [Identifier]) -> Stats {
        let s = Subject(subject)
        var st = Stats()
        for r in o.findings.found where needsView(r) {
            let v = view(r, subject: s)
            if v.mention { st.mentions += 1 }
            st.masked += v.masked
        }
        return st
    }

    /// Whether the export of `r` differs from its record as found (a mention, or text fields to mask).
    @inline(__always)
    package static func needsView(_ r: FoundRecord) -> Bool { r.mention || !r.textFields.isEmpty }

    /// The view with the subject's identifiers already prepared (one per export, not per record).
    package static func view(_ r: FoundRecord, subject: Subject) -> Record {
        guard needsView(r) else { return Record(fields: r.fields, mention: false, masked: 0) }
        var out: [JSONMember] = []
        var masked = 0
        for var m in r.fields {
            let isText = r.textFields.contains(m.key)
            if r.mention && !isText { continue }
            if isText { masked += mask(&m.value, subject: subject) }
            out.append(m)
        }
        return Record(fields: out, mention: r.mention, masked: masked)
    }

    /// Masks every string in `v` at any depth (the strings of arrays, the keys and values of objects);
    /// how many were masked.
    static func mask(_ v: inout JSONValue, subject: Subject) -> Int {
        switch v {
        case .string(let s):
            let (b, n) = mask(Array(s.utf8), subject: subject)
            if n > 0 { v = .string(String(decoding: b, as: UTF8.self)) }
            return n
        case .array(var items):
            var n = 0
            for k in items.indices { n += mask(&items[k], subject: subject) }
            if n > 0 { v = .array(items) }
            return n
        case .object(var members):
            var n = 0
            for k in members.indices {
                var key = JSONValue.string(members[k].key)
                let nk = mask(&key, subject: subject)
                if nk > 0, case .string(let masked) = key { members[k].key = masked }
                n += nk + mask(&members[k].value, subject: subject)
            }
            if n > 0 { v = .object(members) }
            return n
        case .null, .bool, .number:
            return 0
        }
    }

    // MARK: - The subject's own identifiers

    /// The subject's e-mail addresses, phone numbers and IP addresses, normalised for comparison.
    package struct Subject: Sendable {
        var emails: Set<String> = []
        /// Canonical forms; an IPv4-mapped IPv6 address as its IPv4.
        var ips: Set<String> = []
        /// Phone numbers as digits, and whether they were international (`+`: E.164 digits with the
        /// country code) or national (as given, with a trunk `0`).
        var phones: [(digits: [UInt8], international: Bool)] = []

        package init(_ ids: [Identifier]) {
            for id in ids {
                switch id.type {
                case "email": emails.insert(ExportView.comparableEmail(Array(id.value.utf8)[...]))
                case "ip": ips.insert(ExportView.unmapped(id.value))
                case "phone":
                    let v = Array(id.value.utf8)
                    var d = v.filter(isDigit)
                    var intl = v.first == 0x2B
                    if !intl && d.starts(with: [0x30, 0x30]) {
                        d.removeFirst(2)
                        intl = true
                    }
                    // `+49 (0)170 …` given in the request: the trunk 0 after the country code is no
                    // E.164 digit (except in Italy, San Marino and the Vatican, where it is).
                    let cc = ExportView.countryCodeLength(d)
                    if intl, d.count > cc + 1, d[cc] == 0x30, !d.starts(with: [0x33, 0x39]),
                        !d.starts(with: [0x33, 0x37, 0x38]),
                        !d.starts(with: [0x33, 0x37, 0x39])
                    {
                        d.remove(at: cc)
                    }
                    phones.append((d, intl))
                default: continue
                }
            }
        }

        func ownsEmail(_ b: ArraySlice<UInt8>) -> Bool {
            !emails.isEmpty && emails.contains(ExportView.comparableEmail(b))
        }

        func ownsIP(_ b: ArraySlice<UInt8>) -> Bool {
            guard !ips.isEmpty else { return false }
            guard case .success(let n) = IdentifierNormalizer.normalize(type: "ip", String(decoding: b, as: UTF8.self))
            else { return false }
            return ips.contains(ExportView.unmapped(n))
        }

        /// The same number: an international spelling (`+49 …`, `0049 …`, also `+49 (0)170 …`) has
        /// the subject's E.164 digits; a national one (`0170 …`) is the subject's number without its
        /// country code (E.164 country codes are prefix-free), after a trunk `0`. A subject who gave
        /// only a national number owns only national spellings of it (their country code is unknown).
        func ownsPhone(_ b: ArraySlice<UInt8>) -> Bool {
            guard !phones.isEmpty else { return false }
            var d: [UInt8] = []
            d.reserveCapacity(16)
            let plus = b.first == 0x2B
            var k = b.startIndex
            while k < b.endIndex {
                let c = b[k]
                // `+49 (0)170 …`: the `(0)` trunk marker after the country code is no digit of the number.
                if c == 0x28, k + 2 < b.endIndex, b[k + 1] == 0x30, b[k + 2] == 0x29, !d.isEmpty,
                    plus || d.starts(with: [0x30, 0x30])
                {
                    k += 3
                    continue
                }
                if isDigit(c) { d.append(c) }
                k += 1
            }
            let international: ArraySlice<UInt8>? =
                plus ? d[...] : (d.starts(with: [0x30, 0x30]) ? d.dropFirst(2) : nil)
            for p in phones {
                if let international {
                    if p.international && international.elementsEqual(p.digits) { return true }
                    continue
                }
                if p.international {
                    let national = p.digits.dropFirst(ExportView.countryCodeLength(p.digits))
                    // `0170 1234567` (trunk 0) or, where the number has no trunk prefix (`06 …` in Italy,
                    // `202 555 0143` in North America), the national number as it is.
                    if d.first == 0x30 && d.dropFirst().elementsEqual(national) { return true }
                    if d.elementsEqual(national) { return true }
                } else {
                    let a = d.first == 0x30 ? d.dropFirst() : d[...]
                    let n = p.digits.first == 0x30 ? p.digits.dropFirst() : p.digits[...]
                    if a.elementsEqual(n) { return true }
                }
            }
            return false
        }
    }

    /// The two-digit E.164 country codes; `1` and `7` have one digit, all others three.
    static let twoDigitCountryCodes: Set<Int> = Set(
        [20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41] + Array(43...49) + Array(51...58) + Array(60...66)
            + [81, 82, 84, 86] + Array(90...95) + [98])

    /// How many of the E.164 `digits` (without `+`) are the country code (the codes are prefix-free).
    package static func countryCodeLength(_ digits: [UInt8]) -> Int {
        guard let f = digits.first else { return 0 }
        if f == 0x31 || f == 0x37 { return 1 }
        guard digits.count >= 2 else { return 1 }
        return twoDigitCountryCodes.contains(Int(f - 0x30) * 10 + Int(digits[1] - 0x30)) ? 2 : 3
    }

    /// An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`, canonical form) as its IPv4; others as they are.
    static func unmapped(_ ip: String) -> String {
        guard ip.hasPrefix("::ffff:") else { return ip }
        let v4 = ip.dropFirst(7)
        return v4.contains(".") ? String(v4) : ip
    }

    /// An address as compared with the subject's: `%XX` decoded (`bob%40example.org`), a fullwidth `＠`
    /// as `@`, lower case.
    static func comparableEmail(_ b: ArraySlice<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var k = b.startIndex
        while k < b.endIndex {
            let c = b[k]
            if c == 0x25, k + 2 < b.endIndex, let h = hexValue(b[k + 1]), let l = hexValue(b[k + 2]) {
                out.append(h << 4 | l)
                k += 3
            } else if c == 0xEF, k + 2 < b.endIndex, b[k + 1] == 0xBC, b[k + 2] == 0xA0 {
                out.append(0x40)
                k += 3
            } else {
                out.append(c)
                k += 1
            }
        }
        return String(decoding: out, as: UTF8.self).lowercased()
    }

    @inline(__always) static func hexValue(_ c: UInt8) -> UInt8? {
        if isDigit(c) { return c - 0x30 }
        let l = c | 0x20
        return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : nil
    }

    // MARK: - The masker (bytes)

    /// What one match is.
    enum Kind { case email, ip, phone }

    /// `text` with every e-mail address, phone number and IP address that is not the subject's
    /// replaced by its marker, and how many were replaced.
    package static func mask(_ text: [UInt8], subject: Subject) -> (bytes: [UInt8], masked: Int) {
        let found = scan(text)
        var out: [UInt8] = []
        var n = 0
        var at = 0
        for (range, kind) in found {
            let slice = text[range]
            let own: Bool
            switch kind {
            case .email: own = subject.ownsEmail(slice)
            case .ip: own = subject.ownsIP(slice)
            case .phone: own = subject.ownsPhone(slice)
            }
            if own { continue }
            if n == 0 { out.reserveCapacity(text.count + 32) }
            out += text[at..<range.lowerBound]
            switch kind {
            case .email: out += emailMarker.utf8
            case .ip: out += ipMarker.utf8
            case .phone: out += phoneMarker.utf8
            }
            at = range.upperBound
            n += 1
        }
        if n == 0 { return (text, 0) }
        out += text[at...]
        return (out, n)
    }

    /// Every e-mail address, IP address and phone number in `b`, in order, not overlapping
    /// (e-mail before IP before phone where they would overlap).
    static func scan(_ b: [UInt8]) -> [(Range<Int>, Kind)] {
        var found: [(Range<Int>, Kind)] = []
        emails(b, into: &found)
        func free(_ r: Range<Int>) -> Bool { !found.contains { $0.0.overlaps(r) } }
        // IPv6 first: an embedded IPv4 (`::ffff:10.0.0.1`) is part of it.
        ipv6(b) { r in if free(r) { found.append((r, .ip)) } }
        ipv4(b) { r in if free(r) { found.append((r, .ip)) } }
        let taken = found.map(\.0)
        phones(b, taken: taken) { r in
            if free(r) && (b[r.lowerBound] == 0x2B || !afterNumberWord(b, r.lowerBound)) { found.append((r, .phone)) }
        }
        return found.sorted { $0.0.lowerBound < $1.0.lowerBound }
    }

    @inline(__always) static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    @inline(__always) static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    @inline(__always) static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) }
    @inline(__always) static func isHex(_ c: UInt8) -> Bool { isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66) }
    /// Letters, digits, `_` and non-ASCII bytes: what continues a word.
    @inline(__always) static func isWord(_ c: UInt8) -> Bool { isAlnum(c) || c == 0x5F || c >= 0x80 }

    /// Unicode spaces, quotes, brackets and punctuation (UTF-8) that end an address written in text:
    /// no-break and other spaces, `«»‹›“”„‘‚`, dashes, `…`, CJK `、。「」『』【】`, fullwidth `（），：；＜＞`
    /// and `＠`. Every other byte `>= 0x80` is a letter of a local part or a domain (`ü`, `п`, `例`, a
    /// soft hyphen); `’` is an apostrophe (`o’hara`). The length of the stop that starts at `i`, or 0.
    @inline(__always) static func stop(_ b: [UInt8], at i: Int) -> Int {
        let c = b[i]
        guard c >= 0xC2 else { return 0 }
        if c == 0xC2 {
            guard i + 1 < b.count else { return 0 }
            switch b[i + 1] {
            case 0xA0, 0xAB, 0xBB: return 2
            default: return 0
            }
        }
        guard i + 2 < b.count else { return 0 }
        let (d, e) = (b[i + 1], b[i + 2])
        switch (c, d) {
        case (0xE2, 0x80):
            switch e {
            case 0x80...0x8A, 0x93, 0x94, 0x98, 0x9A, 0x9C, 0x9D, 0x9E, 0xA6, 0xA8, 0xA9, 0xAF, 0xB9, 0xBA: return 3
            default: return 0
            }
        case (0xE2, 0x81): return e == 0x9F ? 3 : 0
        case (0xE3, 0x80):
            switch e {
            case 0x80, 0x81, 0x82, 0x8C...0x91: return 3
            default: return 0
            }
        case (0xEF, 0xBC):
            switch e {
            case 0x88, 0x89, 0x8C, 0x9A, 0x9B, 0x9C, 0x9E, 0xA0: return 3
            default: return 0
            }
        default: return 0
        }
    }

    /// Whether a stop ends just before `e` (not before `floor`).
    @inline(__always) static func stop(_ b: [UInt8], endingAt e: Int, floor: Int) -> Bool {
        (e - 2 >= floor && b[e - 2] == 0xC2 && stop(b, at: e - 2) == 2)
            || (e - 3 >= floor && b[e - 3] >= 0xE0 && stop(b, at: e - 3) == 3)
    }

    /// The length of an at sign at `i`: `@`, URL-encoded `%40`, fullwidth `＠`; 0 if none.
    @inline(__always) static func atSign(_ b: [UInt8], _ i: Int) -> Int {
        switch b[i] {
        case 0x40: return 1
        case 0x25: return i + 2 < b.count && b[i + 1] == 0x34 && b[i + 2] == 0x30 ? 3 : 0
        case 0xEF: return i + 2 < b.count && b[i + 1] == 0xBC && b[i + 2] == 0xA0 ? 3 : 0
        default: return 0
        }
    }

    /// `local@domain.tld`, masked whole: the at sign also URL-encoded (`bob%40example.org`) or
    /// fullwidth; a local part of letters, digits, `._%+-'` and non-ASCII letters (`o'brien`, `ÜSER`),
    /// or quoted (`"quoted local"`); a domain of labels of letters, digits, `-` and non-ASCII letters
    /// (`bücher.de`, `пример.рф`) whose last label is at least two ASCII letters, non-ASCII, or `xn--…`,
    /// or a domain literal (`[192.0.2.1]`, `[IPv6:2001:db8::1]`).
    static func emails(_ b: [UInt8], into found: inout [(Range<Int>, Kind)]) {
        func local(_ c: UInt8) -> Bool {
            isAlnum(c) || c == 0x2E || c == 0x5F || c == 0x25 || c == 0x2B || c == 0x2D || c == 0x27
        }
        func domain(_ c: UInt8) -> Bool { isAlnum(c) || c == 0x2E || c == 0x2D }
        var lastEnd = 0
        var i = 0
        while i < b.count {
            let at = atSign(b, i)
            guard at > 0 else {
                i += 1
                continue
            }
            let d = i + at
            var s = i
            if s - 2 >= lastEnd && b[s - 1] == 0x22 {
                // A quoted local part: back to its opening quote (on the same line, at most 64 bytes).
                var k = s - 2
                while k >= lastEnd && s - k <= 66 && b[k] != 0x22 && b[k] != 0x0A && b[k] != 0x0D { k -= 1 }
                if k >= lastEnd && k < s - 2 && b[k] == 0x22 && (k == 0 || b[k - 1] != 0x5C) { s = k }
            }
            if s == i {
                // (At most 256 bytes back: a local part has at most 64.)
                while s > lastEnd && i - s < 256 {
                    let c = b[s - 1]
                    if c < 0x80 {
                        guard local(c) else { break }
                    } else if stop(b, endingAt: s, floor: lastEnd) {
                        break
                    }
                    s -= 1
                }
                // Not the start: dots, apostrophes (`'bob@…'`, `’bob@…`) and continuation bytes.
                while s < i {
                    if b[s] == 0x2E || b[s] == 0x27 || (b[s] >= 0x80 && b[s] < 0xC0) {
                        s += 1
                    } else if b[s] == 0xE2 && s + 2 < i && b[s + 1] == 0x80 && b[s + 2] == 0x99 {
                        s += 3
                    } else {
                        break
                    }
                }
            }
            var e = d
            if e < b.count && b[e] == 0x5B {
                // A domain literal: `[192.0.2.1]`, `[IPv6:2001:db8::1]`.
                var k = e + 1
                while k < b.count && k - e < 48 && (isAlnum(b[k]) || b[k] == 0x2E || b[k] == 0x3A) { k += 1 }
                let inner = b[(e + 1)..<k]
                if k < b.count && b[k] == 0x5D && inner.contains(where: isDigit)
                    && (inner.contains(0x2E) || inner.contains(0x3A))
                {
                    e = k + 1
                }
                defer { i = max(i + at, e) }
                guard s < i, e > d else { continue }
                found.append((s..<e, .email))
                lastEnd = e
                continue
            }
            while e < b.count && e - d < 256 {
                let c = b[e]
                if c < 0x80 {
                    guard domain(c) else { break }
                } else if stop(b, at: e) > 0 {
                    break
                }
                e += 1
            }
            while e > d && (b[e - 1] == 0x2E || b[e - 1] == 0x2D) { e -= 1 }
            defer { i = max(i + at, e) }
            guard s < i, e > d, b[d] != 0x2E, b[d] != 0x2D else { continue }
            // Labels: non-empty; the last one ASCII letters (at least two), non-ASCII, or punycode.
            let dom = b[d..<e]
            guard let lastDot = dom.lastIndex(of: 0x2E) else { continue }
            var ok = true
            var prevDot = true
            for c in dom {
                if c == 0x2E {
                    if prevDot { ok = false }
                    prevDot = true
                } else {
                    prevDot = false
                }
            }
            guard ok else { continue }
            let tld = b[(lastDot + 1)..<e]
            let letters = tld.prefix(while: isAlpha).count
            if letters == tld.count {
                guard letters >= 2 else { continue }
            } else if tld.allSatisfy({ $0 >= 0x80 }) {
                guard tld.count >= 2 else { continue }
            } else if tld.count > 4 && tld.starts(with: Array("xn--".utf8)) {
                guard tld.dropFirst(4).allSatisfy(isAlnum) else { continue }
            } else if letters >= 2 && tld.dropFirst(letters).allSatisfy({ $0 >= 0x80 }) {
                // `bob@example.org…`-like text right after the address: not part of it.
                e = lastDot + 1 + letters
            } else {
                continue
            }
            found.append((s..<e, .email))
            lastEnd = e
        }
    }

    /// Dotted-quad IPv4 (no leading zeros, each part ≤ 255), not inside a longer dotted number
    /// (`1.2.3.4.5`) or a word (`v1.2.3.4`); a `:port` may follow.
    static func ipv4(_ b: [UInt8], _ emit: (Range<Int>) -> Void) {
        var i = 0
        while i < b.count {
            guard isDigit(b[i]), i == 0 || !(isWord(b[i - 1]) || b[i - 1] == 0x2E || b[i - 1] == 0x2D) else {
                i += 1
                continue
            }
            var j = i
            var parts = 0
            var ok = true
            while parts < 4 {
                let start = j
                var v = 0
                while j < b.count && isDigit(b[j]) && j - start < 4 {
                    v = v * 10 + Int(b[j] - 0x30)
                    j += 1
                }
                let len = j - start
                if len == 0 || len > 3 || v > 255 || (len > 1 && b[start] == 0x30) {
                    ok = false
                    break
                }
                parts += 1
                if parts < 4 {
                    guard j < b.count, b[j] == 0x2E else {
                        ok = false
                        break
                    }
                    j += 1
                }
            }
            if ok, j < b.count {
                let c = b[j]
                if isWord(c) || ((c == 0x2E || c == 0x2D) && j + 1 < b.count && isAlnum(b[j + 1])) { ok = false }
            }
            if ok { emit(i..<j) }
            // Skip the rest of this run of digits and dots (a start inside it is never a boundary).
            var k = max(j, i + 1)
            while k < b.count && (isDigit(b[k]) || b[k] == 0x2E) { k += 1 }
            i = k
        }
    }

    /// IPv6 (validated by `inet_pton`): at least two colons and two groups of hex digits, not part
    /// of a word (`std::vector`), a time (`10:30:00`) or a MAC address (`00:1a:2b:3c:4d:5e`).
    static func ipv6(_ b: [UInt8], _ emit: (Range<Int>) -> Void) {
        var i = 0
        while i < b.count {
            let c = b[i]
            guard isHex(c) || c == 0x3A,
                i == 0 || !(isWord(b[i - 1]) || b[i - 1] == 0x3A || b[i - 1] == 0x2E)
            else {
                i += 1
                continue
            }
            var j = i
            var colons = 0
            while j < b.count && (isHex(b[j]) || b[j] == 0x3A || b[j] == 0x2E) && j - i < 64 {
                if b[j] == 0x3A { colons += 1 }
                j += 1
            }
            var e = j
            while e > i && b[e - 1] == 0x2E { e -= 1 }
            if e - i >= 2 && b[e - 1] == 0x3A && b[e - 2] != 0x3A { e -= 1 }
            defer { i = max(j, i + 1) }
            guard colons >= 2, e - i >= 3, j >= b.count || !isWord(b[j]) else { continue }
            let cand = b[i..<e]
            // Real addresses have a decimal digit somewhere (`a::b`, `dead::beef` are code or words).
            guard cand.contains(where: isDigit) else { continue }
            var groups = 0
            var inGroup = false
            for x in cand {
                if x == 0x3A || x == 0x2E {
                    inGroup = false
                } else if !inGroup {
                    inGroup = true
                    groups += 1
                }
            }
            guard groups >= 2 else { continue }
            var addr = in6_addr()
            let valid = (Array(cand) + [0]).withUnsafeBufferPointer { p in
                p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) {
                    inet_pton(AF_INET6, $0, &addr) == 1
                }
            }
            if valid { emit(i..<e) }
        }
    }

    /// Phone numbers: `+` and a country code, `00` and a country code, a national number starting
    /// with a trunk `0` (at least 9 digits, or 10–12 without separators), `(area) …`, or the North
    /// American `555-123-4567`; 7 to 15 digits in all. Not dates (`2026-01-02`, `02.01.2026`), times
    /// (`10:30`), prices, versions, UUIDs or plain long numbers (order numbers, timestamps).
    static func phones(_ b: [UInt8], taken: [Range<Int>], _ emit: (Range<Int>) -> Void) {
        // Reused for every candidate (one allocation per text, not per run of digits).
        var groups: [Int] = []
        var seps: [UInt8] = []
        var digits: [UInt8] = []
        var i = 0
        while i < b.count {
            let c = b[i]
            let startsHere: Bool
            if c == 0x2B || c == 0x28 {
                startsHere = i + 1 < b.count && isDigit(b[i + 1])
            } else {
                startsHere = isDigit(c)
            }
            guard startsHere, i == 0 || phoneMayFollow(b, i) else {
                i += 1
                continue
            }
            var j = i
            let plus = b[j] == 0x2B
            if plus { j += 1 }
            let paren = j < b.count && b[j] == 0x28
            if paren { j += 1 }
            groups.removeAll(keepingCapacity: true)
            seps.removeAll(keepingCapacity: true)
            digits.removeAll(keepingCapacity: true)
            var end = j
            while true {
                let g = j
                while j < b.count && isDigit(b[j]) {
                    digits.append(b[j])
                    j += 1
                }
                if j == g { break }
                groups.append(j - g)
                end = j
                // A separator of up to three characters of " -./()", at most one of "-./", no two spaces.
                var k = j
                var mark: UInt8 = 0
                var spaces = 0
                var bad = false
                while k < b.count && k - j < 3 {
                    let s = b[k]
                    if s == 0x20 {
                        spaces += 1
                    } else if s == 0x2D || s == 0x2E || s == 0x2F {
                        if mark != 0 && mark != 0x28 && mark != 0x29 { bad = true }
                        mark = s
                    } else if s == 0x28 || s == 0x29 {
                        if mark == 0 { mark = s }
                    } else {
                        break
                    }
                    k += 1
                }
                if bad || spaces > 1 || k == j || k >= b.count || !isDigit(b[k]) { break }
                // An e-mail or IP address that follows is not more of the number.
                if taken.contains(where: { $0.contains(k) }) { break }
                seps.append(mark == 0 ? 0x20 : mark)
                j = k
            }
            defer {
                var k = max(end, i + 1)
                while k < b.count && isDigit(b[k]) { k += 1 }
                i = k
            }
            if isPhone(b, start: i, end: end, plus: plus, paren: paren, groups: groups, seps: seps, digits: digits) {
                emit(i..<end)
            }
        }
    }

    /// Whether a phone number may start at `i` given what precedes it: not inside a word, a number
    /// (`1,234`, `v1.`), a path or an identifier (`#`, `-`, `/`, `@`), nor after a time's `10:`.
    static func phoneMayFollow(_ b: [UInt8], _ i: Int) -> Bool {
        let p = b[i - 1]
        if isWord(p) || p == 0x23 || p == 0x2D || p == 0x2F || p == 0x40 || p == 0x2B || p == 0x24 { return false }
        if p == 0x2E || p == 0x2C || p == 0x3A {
            // `1.5`, `1,234`, `10:30` continue a number; `Tel.:0151…` or `, 0151…` do not.
            if i >= 2 && isDigit(b[i - 2]) { return false }
        }
        return true
    }

    /// Words after which a number is a reference, not a phone number (`order 0123456789`).
    static let numberWords: Set<[UInt8]> = Set(
        [
            "order", "invoice", "ticket", "case", "ref", "reference", "account", "iban",
            "serial", "tracking", "customer", "bestellung", "rechnung", "auftrag", "kundennummer", "vorgang",
        ].map { Array($0.utf8) })

    /// Whether the word before `i` (skipping spaces and `:.#=`) names a kind of reference number.
    static func afterNumberWord(_ b: [UInt8], _ i: Int) -> Bool {
        var k = i
        while k > 0
            && (b[k - 1] == 0x20 || b[k - 1] == 0x3A || b[k - 1] == 0x2E || b[k - 1] == 0x23 || b[k - 1] == 0x3D)
        {
            k -= 1
        }
        let e = k
        while k > 0 && isAlpha(b[k - 1]) && e - k < 16 { k -= 1 }
        guard e > k else { return false }
        return numberWords.contains(b[k..<e].map { $0 | 0x20 })
    }

    static func isPhone(
        _ b: [UInt8], start: Int, end: Int, plus: Bool, paren: Bool, groups: [Int], seps: [UInt8], digits: [UInt8]
    ) -> Bool {
        guard digits.count >= 7, digits.count <= 15 else { return false }
        // What follows must end the number: not a word, a time's `:`, an e-mail's `@`, or a decimal part.
        if end < b.count {
            let c = b[end]
            if isWord(c) || c == 0x3A || c == 0x40 { return false }
            if (c == 0x2E || c == 0x2C || c == 0x2D || c == 0x2F) && end + 1 < b.count && isDigit(b[end + 1]) {
                return false
            }
        }
        // Dates: three groups with the same `.`, `/` or `-` shaped like a date.
        if groups.count >= 3 {
            for k in 0...(groups.count - 3) {
                let s1 = seps[k]
                let s2 = seps[k + 1]
                guard s1 == s2, s1 == 0x2E || s1 == 0x2F || s1 == 0x2D else { continue }
                let (a, m, c) = (groups[k], groups[k + 1], groups[k + 2])
                if a == 4 && m <= 2 && c <= 2 { return false }
                if a <= 2 && m <= 2 && c == 4 { return false }
                if groups.count == 3 && a <= 2 && m <= 2 && c <= 2 { return false }
            }
        }
        if plus { return digits[0] != 0x30 }
        if paren { return digits.count >= 9 }
        if digits[0] == 0x30 {
            if digits[1] == 0x30 {
                // International `00` + country code, written in groups.
                return groups.count >= 2 && digits.count >= 9 && digits[2] != 0x30
            }
            return groups.count >= 2 ? digits.count >= 9 : (digits.count >= 10 && digits.count <= 12)
        }
        // North American 555-123-4567 / 555.123.4567 / 555 123 4567.
        if groups == [3, 3, 4], seps[0] == seps[1], digits[0] >= 0x32 { return true }
        return false
    }
}
