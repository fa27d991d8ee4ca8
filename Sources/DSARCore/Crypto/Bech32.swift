/// Bech32 (BIP 173) for age keys: no 90-character limit, all-lower or all-upper case only, the
/// checksum always computed over the lower-case form. Data is 8-bit bytes (regrouped to 5 bits).
package enum Bech32 {
    static let charset = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    static let charsetReverse: [Int8] = {
        var t = [Int8](repeating: -1, count: 128)
        for (i, c) in charset.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    static func polymod(_ values: [UInt8]) -> UInt32 {
        let gen: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> UInt32(i)) & 1 == 1 { chk ^= gen[i] }
        }
        return chk
    }

    static func hrpExpand(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    /// Regroups bits; `pad` adds zero bits at the end (encoding), otherwise leftover bits must be
    /// fewer than `from` and all zero (decoding).
    static func convertBits(_ data: [UInt8], from: Int, to: Int, pad: Bool) -> [UInt8]? {
        var acc: UInt32 = 0
        var bits = 0
        var out: [UInt8] = []
        let maxv: UInt32 = (1 << UInt32(to)) - 1
        for value in data {
            if UInt32(value) >> UInt32(from) != 0 { return nil }
            acc = acc << UInt32(from) | UInt32(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((acc >> UInt32(bits)) & maxv))
            }
            acc &= (1 << UInt32(bits)) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((acc << UInt32(to - bits)) & maxv)) }
        } else if bits >= from || acc != 0 {
            return nil
        }
        return out
    }

    /// Encodes `data` (bytes) under the human-readable part `hrp`; the result is lower case.
    /// `hrp` must be 1 or more printable ASCII characters (33...126).
    package static func encode(hrp: String, data: [UInt8]) -> String {
        let h = Array(hrp.lowercased().utf8)
        precondition(!h.isEmpty && h.allSatisfy { (33...126).contains($0) }, "invalid Bech32 HRP")
        let values = convertBits(data, from: 8, to: 5, pad: true)!
        let mod = polymod(hrpExpand(h) + values + [0, 0, 0, 0, 0, 0]) ^ 1
        var out = h
        out.append(0x31)  // "1"
        for v in values { out.append(charset[Int(v)]) }
        for i in 0..<6 { out.append(charset[Int((mod >> UInt32(5 * (5 - i))) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a Bech32 string into its lower-case human-readable part and its bytes.
    /// Rejects mixed case, characters outside the charset, a bad checksum and bad padding.
    package static func decode(_ string: String) throws -> (hrp: String, data: [UInt8]) {
        let s = Array(string.utf8)
        func fail(_ why: String) -> DSARError {
            DSARError(.invalidInput, "invalid Bech32 string: \(why)")
        }
        guard s.allSatisfy({ (33...126).contains($0) }) else {
            throw fail("it contains a character outside printable ASCII")
        }
        let hasLower = s.contains { (0x61...0x7A).contains($0) }
        let hasUpper = s.contains { (0x41...0x5A).contains($0) }
        if hasLower && hasUpper { throw fail("it mixes upper and lower case") }
        let lower = s.map { (0x41...0x5A).contains($0) ? $0 + 32 : $0 }
        guard let sep = lower.lastIndex(of: 0x31) else { throw fail("no separator '1'") }
        guard sep >= 1 else { throw fail("empty human-readable part") }
        guard lower.count - sep - 1 >= 6 else { throw fail("too short for a checksum") }
        let hrp = Array(lower[..<sep])
        var values: [UInt8] = []
        for c in lower[(sep + 1)...] {
            let v = c < 128 ? charsetReverse[Int(c)] : -1
            if v < 0 { throw fail("character '\(Character(Unicode.Scalar(c)))' is not in the Bech32 charset") }
            values.append(UInt8(v))
        }
        guard polymod(hrpExpand(hrp) + values) == 1 else { throw fail("checksum mismatch") }
        guard let data = convertBits(Array(values.dropLast(6)), from: 5, to: 8, pad: false) else {
            throw fail("bad padding")
        }
        return (String(decoding: hrp, as: UTF8.self), data)
    }
}
