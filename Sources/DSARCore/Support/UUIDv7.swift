import Foundation

/// Time-ordered identifiers (RFC 9562 UUIDv7): they sort by creation time, so `ls jobs/` is a timeline.
public enum UUIDv7 {
    /// A new UUIDv7 in lower-case canonical form.
    public static func make(now: Date = Date()) -> String {
        let ms = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var b = [UInt8](repeating: 0, count: 16)
        for k in 0..<6 { b[k] = UInt8(truncatingIfNeeded: ms >> (8 * UInt64(5 - k))) }
        var rng = SystemRandomNumberGenerator()
        for k in 6..<16 { b[k] = UInt8.random(in: 0...255, using: &rng) }
        b[6] = 0x70 | (b[6] & 0x0F)
        b[8] = 0x80 | (b[8] & 0x3F)
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let h = Array(hex)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
            + String(h[20..<32])
    }

    /// Whether `s` has the canonical UUID shape (so it is safe as a file name).
    public static func isValid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 36 else { return false }
        for (k, c) in b.enumerated() {
            if k == 8 || k == 13 || k == 18 || k == 23 {
                if c != UInt8(ascii: "-") { return false }
            } else if !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) {
                return false
            }
        }
        return true
    }
}
