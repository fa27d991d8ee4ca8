import Foundation

/// Byte-level identifier normalisation for the hot path (cells of a multi-GB dump), giving exactly
/// what ``IdentifierNormalizer`` gives for the same input, without building a `String` per value.
package enum ByteNormalizer {
    @inline(__always) static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    /// Normalises `raw` as an identifier of `type` into `out` (cleared first); false if it cannot be one.
    package static func normalize(type: IdentifierKind, _ raw: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool
    {
        out.removeAll(keepingCapacity: true)
        var s = 0
        var e = raw.count
        while s < e && isSpace(raw[s]) { s += 1 }
        while e > s && isSpace(raw[e - 1]) { e -= 1 }
        if s == e { return false }
        switch type {
        case .email:
            var at = 0
            for k in s..<e {
                var b = raw[k]
                if b == 0x40 { at += 1 }
                if b >= 0x41 && b <= 0x5A { b += 0x20 }
                if b >= 0x80 {
                    // Non-ASCII: fall back to the exact String path (lowercasing Unicode).
                    let str = String(decoding: UnsafeRawBufferPointer(rebasing: raw[s..<e]), as: UTF8.self)
                    guard case .success(let v) = IdentifierNormalizer.normalize(type: "email", str) else {
                        return false
                    }
                    out = Array(v.utf8)
                    return true
                }
                out.append(b)
            }
            return at == 1
        case .phone:
            var plus = false
            // As IdentifierNormalizer.phone: "(0)" after the country code of an international number
            // (leading + or 00) is the unwritten trunk prefix, not part of the number.
            var first = s
            while first < e && raw[first] == 0x20 { first += 1 }
            let international =
                first < e && (raw[first] == 0x2B || (first + 1 < e && raw[first] == 0x30 && raw[first + 1] == 0x30))
            var k = s
            while k < e {
                let b = raw[k]
                defer { k += 1 }
                if international && b == 0x28 && k + 2 < e && raw[k + 1] == 0x30 && raw[k + 2] == 0x29 {
                    k += 2
                } else if b >= 0x30 && b <= 0x39 {
                    out.append(b)
                } else if b == 0x2B && k == s {
                    plus = true
                } else if b == 0x20 || b == 0x2D || b == 0x2E || b == 0x2F || b == 0x28 || b == 0x29 {
                    continue
                } else {
                    return false
                }
            }
            if !plus && out.count > 4 && out[0] == 0x30 && out[1] == 0x30 {
                out.removeFirst(2)
                plus = true
            }
            guard out.count >= 5 && out.count <= 17 else { return false }
            if plus { out.insert(0x2B, at: 0) }
            return true
        case .ip:
            let str = String(decoding: UnsafeRawBufferPointer(rebasing: raw[s..<e]), as: UTF8.self)
            guard case .success(let v) = IdentifierNormalizer.normalize(type: "ip", str) else { return false }
            out = Array(v.utf8)
            return true
        case .other:
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: raw[s..<e]))
            return true
        }
    }
}

/// How an identifier type is normalised and found in text.
package enum IdentifierKind: Sendable {
    case email, phone, ip, other

    /// The kind of a type name (`user_id` and custom types are `other`).
    package init(type: String) {
        switch type {
        case "email": self = .email
        case "phone": self = .phone
        case "ip": self = .ip
        default: self = .other
        }
    }
}
