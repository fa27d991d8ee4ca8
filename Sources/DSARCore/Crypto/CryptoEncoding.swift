/// Base64 (RFC 4648 §4) as age and OpenSSH need it: canonical encoding, and strict decoding
/// that rejects non-canonical input (age requires that; see C2SP age.md "Conventions").
enum CryptoBase64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Maps an ASCII byte to its 6-bit value, or 0xFF when it is not in the alphabet.
    static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// Encodes bytes; `padded` adds `=` to a multiple of four characters.
    static func encode<C: Collection>(_ bytes: C, padded: Bool) -> String where C.Element == UInt8 {
        let input = Array(bytes)
        var out: [UInt8] = []
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= input.count {
            let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
            out.append(alphabet[Int(v & 63)])
            i += 3
        }
        let rest = input.count - i
        if rest == 1 {
            let v = UInt32(input[i]) << 16
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            if padded { out.append(contentsOf: [0x3D, 0x3D]) }
        } else if rest == 2 {
            let v = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(alphabet[Int(v >> 6 & 63)])
            if padded { out.append(0x3D) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64, strictly: only alphabet characters, no `=`, no whitespace, and the
    /// unused low bits of the last character must be zero (canonical form). Nil if any rule fails.
    static func decodeUnpadded<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        let chars = Array(text)
        if chars.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = reverse[Int(c)]
            if v == 0xFF { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
                acc &= (1 << UInt32(bits)) - 1
            }
        }
        if acc != 0 { return nil }  // non-canonical: leftover bits must be zero
        return out
    }

    /// Decodes padded base64 as OpenSSH writes it; whitespace (space, tab, CR, LF) is skipped.
    /// Requires correct `=` padding and canonical trailing bits. Nil if malformed.
    static func decodePadded<C: Collection>(_ text: C) -> [UInt8]? where C.Element == UInt8 {
        var chars: [UInt8] = []
        chars.reserveCapacity(text.count)
        for c in text where !(c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0A) { chars.append(c) }
        if chars.count % 4 != 0 { return nil }
        var pad = 0
        while pad < 2, chars.last == 0x3D {
            chars.removeLast()
            pad += 1
        }
        if chars.count % 4 == 1 { return nil }
        if pad > 0 && (chars.count + pad) % 4 != 0 { return nil }
        return decodeUnpadded(chars)
    }
}

/// The SSH wire encoding (RFC 4251 §5): uint32 big-endian, and strings as uint32 length + bytes.
struct SSHWireWriter {
    var bytes: [UInt8] = []

    mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    mutating func uint32(_ v: UInt32) {
        bytes.append(UInt8(v >> 24))
        bytes.append(UInt8(v >> 16 & 0xFF))
        bytes.append(UInt8(v >> 8 & 0xFF))
        bytes.append(UInt8(v & 0xFF))
    }

    mutating func string<C: Collection>(_ b: C) where C.Element == UInt8 {
        uint32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }

    mutating func string(_ s: String) { string(Array(s.utf8)) }
}

/// Reads the SSH wire encoding; every read throws `SSHWireReader.Truncated` past the end.
struct SSHWireReader {
    struct Truncated: Error {}

    let bytes: [UInt8]
    var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func raw(_ n: Int) throws -> [UInt8] {
        guard n >= 0, n <= remaining else { throw Truncated() }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    mutating func uint32() throws -> UInt32 {
        let b = try raw(4)
        return UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
    }

    mutating func string() throws -> [UInt8] {
        let n = try uint32()
        guard n <= UInt32(remaining) else { throw Truncated() }
        return try raw(Int(n))
    }

    /// A string that must be valid UTF-8 text.
    mutating func text() throws -> String {
        let b = try string()
        guard let s = String(validating: b, as: UTF8.self) else { throw Truncated() }
        return s
    }
}

/// Constant-time equality for secrets and MACs.
func cryptoConstantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
