import Foundation

/// Punycode (RFC 3492): the Bootstring encoding IDNA uses for non-ASCII domain labels.
package enum Punycode {
    static let base = 36
    static let tmin = 1
    static let tmax = 26
    static let skew = 38
    static let damp = 700
    static let initialBias = 72
    static let initialN = 128

    static func adapt(_ delta0: Int, _ numPoints: Int, _ first: Bool) -> Int {
        var delta = first ? delta0 / damp : delta0 / 2
        delta += delta / numPoints
        var k = 0
        while delta > ((base - tmin) * tmax) / 2 {
            delta /= base - tmin
            k += base
        }
        return k + (base - tmin + 1) * delta / (delta + skew)
    }

    @inline(__always)
    static func threshold(_ k: Int, _ bias: Int) -> Int { k <= bias ? tmin : (k >= bias + tmax ? tmax : k - bias) }

    static func digit(_ d: Int) -> UInt8 { d < 26 ? UInt8(d) + 0x61 : UInt8(d - 26) + 0x30 }

    /// Encodes code points (`"bücher"` → `"bcher-kva"`); nil on overflow (absurdly long input).
    package static func encode(_ input: [Unicode.Scalar]) -> String? {
        guard input.count <= 1024 else { return nil }
        let values = input.map { Int($0.value) }
        var output: [UInt8] = values.filter { $0 < 0x80 }.map { UInt8($0) }
        let b = output.count
        var h = b
        if b > 0 { output.append(0x2D) }
        var n = initialN
        var delta = 0
        var bias = initialBias
        while h < values.count {
            guard let m = values.filter({ $0 >= n }).min() else { return nil }
            guard m - n <= (Int.max / 2 - delta) / (h + 1) else { return nil }
            delta += (m - n) * (h + 1)
            n = m
            for c in values {
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = threshold(k, bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, h + 1, h == b)
                    delta = 0
                    h += 1
                }
            }
            delta += 1
            n += 1
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Decodes a Punycode string (`"bcher-kva"` → `"bücher"`); nil when it is not valid Punycode.
    package static func decode(_ input: String) -> [Unicode.Scalar]? {
        let bytes = Array(input.utf8)
        guard bytes.count <= 1024, bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        var output: [UInt32] = []
        var pos = 0
        if let d = bytes.lastIndex(of: 0x2D), d > 0 {
            output = bytes[0..<d].map(UInt32.init)
            pos = d + 1
        }
        var n = initialN
        var i = 0
        var bias = initialBias
        while pos < bytes.count {
            let oldi = i
            var w = 1
            var k = base
            while true {
                guard pos < bytes.count else { return nil }
                let c = bytes[pos]
                pos += 1
                let d: Int
                switch c {
                case 0x30...0x39: d = Int(c) - 0x30 + 26
                case 0x41...0x5A: d = Int(c) - 0x41
                case 0x61...0x7A: d = Int(c) - 0x61
                default: return nil
                }
                guard d <= (Int.max / 2 - i) / w else { return nil }
                i += d * w
                let t = threshold(k, bias)
                if d < t { break }
                guard w <= Int.max / 2 / (base - t) else { return nil }
                w *= base - t
                k += base
            }
            let count = output.count + 1
            bias = adapt(i - oldi, count, oldi == 0)
            n += i / count
            i %= count
            guard n <= 0x10FFFF, Unicode.Scalar(UInt32(n)) != nil else { return nil }
            output.insert(UInt32(n), at: i)
            i += 1
        }
        return output.map { Unicode.Scalar($0)! }
    }
}

/// IDNA label handling for e-mail domains (RFC 5890/5891, without the full UTS #46 mapping table):
/// labels are split on `.` (and the ideographic full stops U+3002, U+FF0E, U+FF61), lower-cased and
/// put in Unicode NFC; a non-ASCII label becomes `xn--` + Punycode, and an `xn--` label decodes back.
package enum IDNA {
    static func labels(_ domain: String) -> [String] {
        var out: [String] = []
        var cur = String.UnicodeScalarView()
        for s in domain.unicodeScalars {
            if s == "." || s.value == 0x3002 || s.value == 0xFF0E || s.value == 0xFF61 {
                out.append(String(cur))
                cur = String.UnicodeScalarView()
            } else {
                cur.append(s)
            }
        }
        out.append(String(cur))
        return out
    }

    /// The ASCII form (`bücher.example` → `xn--bcher-kva.example`); nil when a label cannot be encoded
    /// (longer than 63 bytes once encoded).
    package static func toASCII(_ domain: String) -> String? {
        var parts: [String] = []
        for label in labels(domain) {
            let l = label.precomposedStringWithCanonicalMapping.lowercased()
            if l.utf8.allSatisfy({ $0 < 0x80 }) {
                parts.append(l)
                continue
            }
            guard let p = Punycode.encode(Array(l.unicodeScalars)), p.utf8.count + 4 <= 63 else { return nil }
            parts.append("xn--" + p)
        }
        return parts.joined(separator: ".")
    }

    /// The Unicode form (`xn--bcher-kva.example` → `bücher.example`), lower-cased, NFC; an `xn--`
    /// label that is not valid Punycode (or does not encode back to itself) is kept as it is.
    package static func toUnicode(_ domain: String) -> String {
        var parts: [String] = []
        for label in labels(domain) {
            let l = label.precomposedStringWithCanonicalMapping.lowercased()
            if l.hasPrefix("xn--"), let scalars = Punycode.decode(String(l.dropFirst(4))) {
                var v = String.UnicodeScalarView()
                v.append(contentsOf: scalars)
                let u = String(v).precomposedStringWithCanonicalMapping.lowercased()
                if let back = Punycode.encode(Array(u.unicodeScalars)), "xn--" + back == l {
                    parts.append(u)
                    continue
                }
            }
            parts.append(l)
        }
        return parts.joined(separator: ".")
    }

    /// Every spelling of a normalised e-mail address that denotes the same mailbox: itself, the
    /// domain in ASCII (`xn--`) and in Unicode form (local part NFC). Only computed when the domain
    /// is internationalised (non-ASCII or an `xn--` label); otherwise just the address.
    package static func emailForms(_ email: String) -> [String] {
        guard let at = email.lastIndex(of: "@") else { return [email] }
        let local = String(email[..<at])
        let domain = String(email[email.index(after: at)...])
        let international =
            domain.utf8.contains { $0 >= 0x80 } || domain.contains("xn--") || local.utf8.contains { $0 >= 0x80 }
        guard international else { return [email] }
        var out = [email]
        let nfcLocal = local.precomposedStringWithCanonicalMapping.lowercased()
        for form in [toASCII(domain), toUnicode(domain)] {
            guard let form else { continue }
            let e = nfcLocal + "@" + form
            if !out.contains(e) { out.append(e) }
        }
        return out
    }
}
