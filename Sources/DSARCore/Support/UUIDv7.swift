import Foundation
import Synchronization

/// Time-ordered identifiers (RFC 9562 UUIDv7): they sort by creation time, so `ls jobs/` is a timeline.
package enum UUIDv7 {
    /// A new UUIDv7 in lower-case canonical form. Within a process the ids are strictly increasing,
    /// also for several made in the same millisecond (RFC 9562 §6.2, method 2: the random bits of a
    /// later id in the same millisecond are the previous ones plus one), so creation order is sort order.
    package static func make(now: Date = Date()) -> String {
        let wall = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        var rng = SystemRandomNumberGenerator()
        let (ms, randA, randB): (UInt64, UInt16, UInt64) = state.withLock { last in
            var next = (
                ms: wall, a: UInt16.random(in: 0...0x0FFF, using: &rng),
                b: UInt64.random(in: 0...(1 << 62 - 1), using: &rng)
            )
            if let prev = last, wall <= prev.ms {
                next = prev
                if next.b < (1 << 62) - 1 {
                    next.b += 1
                } else if next.a < 0x0FFF {
                    next.a += 1
                    next.b = 0
                } else {
                    next = (prev.ms + 1, 0, 0)
                }
            }
            last = next
            return next
        }
        var b = [UInt8](repeating: 0, count: 16)
        for k in 0..<6 { b[k] = UInt8(truncatingIfNeeded: ms >> (8 * UInt64(5 - k))) }
        b[6] = 0x70 | UInt8(truncatingIfNeeded: randA >> 8)
        b[7] = UInt8(truncatingIfNeeded: randA)
        b[8] = 0x80 | UInt8(truncatingIfNeeded: randB >> 56)
        for k in 9..<16 { b[k] = UInt8(truncatingIfNeeded: randB >> (8 * UInt64(15 - k))) }
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let h = Array(hex)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
            + String(h[20..<32])
    }

    /// The last id made by this process: (milliseconds, 12 random bits, 62 random bits).
    private static let state = Mutex<(ms: UInt64, a: UInt16, b: UInt64)?>(nil)

    /// Whether `s` has the canonical UUID shape (so it is safe as a file name).
    package static func isValid(_ s: String) -> Bool {
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
