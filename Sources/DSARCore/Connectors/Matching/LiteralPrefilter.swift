import Foundation

/// A SIMD multi-literal prefilter in front of ``TextMatcher``'s token scan, for batches with few
/// distinct needles: it answers "can this text hold a match at all?" with a packed-pair search
/// (two anchor bytes per needle compared 16 positions at a time, the rare pair chosen by a byte
/// frequency rank, then the whole needle compared), so most log lines and cells are ruled out
/// without tokenising them. A text it lets through is scanned by the unchanged token path, so the
/// matches are exactly the token path's.
///
/// Recall is exact because every match of the token path contains one of the needles:
/// - a `user_id`, custom, IPv4 or phone value found as a token is its exact bytes;
/// - an e-mail found around `@` is `local@domain` compared ASCII-case-insensitively, and one found
///   around `%40` (URL-encoded, its local part `%XX`-decoded) contains `%40domain`, the domain being
///   compared raw, case aside. Non-ASCII text (Unicode lowercasing, NFC, a Kelvin sign that folds to
///   `k`) is never ruled out: a text with any byte ≥ 0x80 always goes to the token path when e-mails
///   are searched, and an e-mail form with non-ASCII bytes needs no needle of its own;
/// - an IPv6 address, in any spelling `inet_pton` accepts, contains the hex digits of each of its
///   non-zero 16-bit groups among the first six (the last two may be written as dotted IPv4),
///   without leading zeros and case aside; the longest such group is its needle. An IPv6 value
///   whose first six groups are all zero (`::1`) has no safe needle: no prefilter then.
/// Phone numbers written with separators (`+44 20 7946 0000`) have no literal every spelling
/// contains; ``TextMatcher`` always searches them over the whole text.
struct LiteralPrefilter: Sendable {
    struct Needle: Sendable {
        /// The needle's bytes, lower-cased when `fold`.
        var bytes: [UInt8]
        /// Compared ASCII-case-insensitively.
        var fold: Bool
        /// The two anchor offsets (o1 < o2, or both 0 for a one-byte needle) and their bytes.
        var o1: Int
        var o2: Int
        var a1: UInt8
        var a2: UInt8
        /// Whether an anchor is a letter compared case-insensitively (`b | 0x20`).
        var f1: Bool
        var f2: Bool
    }

    let needles: [Needle]
    /// Any byte ≥ 0x80 sends the text to the token path (e-mails searched: Unicode folding).
    let nonASCIIPasses: Bool

    /// Above this many distinct needles the token hash path is used instead (the per-needle SIMD
    /// loop grows with the needles, the token scan does not). `DSAR_SCAN_PREFILTER_MAX=N` sets it
    /// for a measurement (bench/README.md, "Prefilter switch point"); the default is the measured
    /// switch point. Measured on the 200 MiB bench corpus (release, 2 cores, medians of 3 whole
    /// `dsar run`s, token path vs prefilter forced on; about 3 needles per subject with an e-mail
    /// and a user id): 1 subject 2.26 → 1.14 s, 5 subjects 1.81 vs 1.88 s (even), 10 subjects
    /// 1.63 vs 3.35 s, 20 subjects 4.2 vs 8.3 s. The prefilter pays only for the smallest
    /// batches, so it is used up to 8 needles (2 subjects of that shape).
    static let maxNeedles: Int =
        getenv("DSAR_SCAN_PREFILTER_MAX").flatMap { Int(String(cString: $0)) }.map { max(0, $0) } ?? 8

    /// `DSAR_SCAN_PREFILTER=off` in the environment turns the prefilter off (the token path for
    /// every batch), for A/B timings of the same binary.
    static let disabled: Bool = getenv("DSAR_SCAN_PREFILTER").map { String(cString: $0) == "off" } ?? false

    /// The prefilter for the entries of `table` whose type code `wanted` says, or nil when the
    /// batch has more than `limit` (``maxNeedles``) distinct needles or an identifier without a safe needle.
    init?(
        table: IdentifierTable, wanted: [Bool], emailCode: Int?, wantEmail: Bool, ipCode: Int?, wantIP: Bool,
        limit: Int = LiteralPrefilter.maxNeedles
    ) {
        guard !LiteralPrefilter.disabled, table.entryCount <= limit * 2 else { return nil }
        var set: [[UInt8]: Bool] = [:]  // bytes → fold
        var order: [[UInt8]] = []
        var ok = true
        func add(_ b: [UInt8], fold: Bool) {
            guard !b.isEmpty else { return }
            if let f = set[b] {
                if f && !fold { return }  // an exact needle is implied by the folded one
                if !f && fold { set[b] = true }
                return
            }
            set[b] = fold
            order.append(b)
        }
        table.forEachEntry { value, type in
            guard ok, wanted[type] else { return }
            if type == emailCode {
                guard wantEmail else { return }
                guard let at = value.lastIndex(of: 0x40) else { return }
                let domain = Array(value[(at + 1)...])
                if domain.allSatisfy({ $0 < 0x80 }) {
                    add(LiteralPrefilter.lower([0x25, 0x34, 0x30] + domain), fold: true)
                    if value.allSatisfy({ $0 < 0x80 }) { add(LiteralPrefilter.lower(value), fold: true) }
                }
                return
            }
            // The value as a token (also a phone or IPv4 written without separators).
            add(value, fold: false)
            if type == ipCode && wantIP && value.contains(0x3A) {
                guard let g = LiteralPrefilter.ipv6Needle(value) else {
                    ok = false
                    return
                }
                add(g, fold: true)
            }
        }
        guard ok, order.count <= limit else { return nil }
        // A folded needle makes an exact one with the same bytes redundant (handled in add); keep order.
        needles = order.map { LiteralPrefilter.needle($0, fold: set[$0]!) }
        nonASCIIPasses = wantEmail && emailCode != nil
    }

    static func lower(_ b: [UInt8]) -> [UInt8] { b.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 } }

    @inline(__always) static func isLetter(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }

    /// The hex digits (lower case, no leading zeros) of the longest non-zero group among the first
    /// six of an IPv6 address, nil when they are all zero or the value does not parse.
    static func ipv6Needle(_ value: [UInt8]) -> [UInt8]? {
        var addr = in6_addr()
        let parsed = String(decoding: value, as: UTF8.self).withCString { inet_pton(AF_INET6, $0, &addr) }
        guard parsed == 1 else { return nil }
        var best: [UInt8] = []
        withUnsafeBytes(of: &addr) { p in
            for g in 0..<6 {
                let v = UInt16(p[2 * g]) << 8 | UInt16(p[2 * g + 1])
                guard v != 0 else { continue }
                let hex = Array(String(v, radix: 16).utf8)
                if hex.count > best.count { best = hex }
            }
        }
        return best.isEmpty ? nil : best
    }

    /// Background rank of a byte in logs and dumps (higher: more frequent), for the anchor choice.
    static let rank: [UInt8] = (0..<256).map { b in
        let c = UInt8(b)
        switch c {
        case 0x20: return 255
        case 0x30...0x39: return 200  // digits: timestamps, sizes, ids
        case UInt8(ascii: "e"), UInt8(ascii: "t"), UInt8(ascii: "a"), UInt8(ascii: "o"), UInt8(ascii: "i"),
            UInt8(ascii: "n"), UInt8(ascii: "s"), UInt8(ascii: "r"):
            return 190
        case 0x61...0x7A: return 150
        case UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"), UInt8(ascii: "-"), UInt8(ascii: "\""),
            UInt8(ascii: ","), UInt8(ascii: "_"), UInt8(ascii: "="):
            return 170
        case 0x41...0x5A: return 100
        case UInt8(ascii: "@"): return 40
        case UInt8(ascii: "%"): return 60
        case 0x80...0xFF: return 30
        default: return 80
        }
    }

    /// The two rarest positions of `b` (as effective rank: a folded letter counts both cases).
    static func needle(_ b: [UInt8], fold: Bool) -> Needle {
        func r(_ k: Int) -> Int {
            let c = b[k]
            if fold && isLetter(c) { return Int(rank[Int(c | 0x20)]) + Int(rank[Int(c & ~0x20)]) / 2 }
            return Int(rank[Int(c)])
        }
        var first = 0
        for k in b.indices where r(k) < r(first) { first = k }
        var second = first
        if b.count > 1 {
            second = first == 0 ? 1 : 0
            for k in b.indices where k != first && r(k) < r(second) { second = k }
        }
        let o1 = min(first, second)
        let o2 = max(first, second)
        return Needle(
            bytes: b, fold: fold, o1: o1, o2: o2, a1: b[o1], a2: b[o2],
            f1: fold && isLetter(b[o1]), f2: fold && isLetter(b[o2]))
    }

    /// Whether `text` may hold a match (a needle occurs, or it has non-ASCII bytes and e-mails are
    /// searched); false means the token path would find nothing in it.
    func mayMatch(_ text: UnsafeRawBufferPointer) -> Bool {
        guard let base = text.baseAddress else { return false }
        let n = text.count
        for nd in needles where LiteralPrefilter.find(nd, base, n) { return true }
        if nonASCIIPasses && LiteralPrefilter.hasNonASCII(base, n) { return true }
        return false
    }

    @inline(__always)
    static func hasNonASCII(_ base: UnsafeRawPointer, _ n: Int) -> Bool {
        var acc = SIMD16<UInt8>(repeating: 0)
        var i = 0
        while i + 16 <= n {
            acc |= base.loadUnaligned(fromByteOffset: i, as: SIMD16<UInt8>.self)
            i += 16
        }
        var tail: UInt8 = 0
        while i < n {
            tail |= base.load(fromByteOffset: i, as: UInt8.self)
            i += 1
        }
        return (acc.max() | tail) >= 0x80
    }

    /// Whether `nd` occurs in `base[0..<n]`.
    @inline(__always)
    static func find(_ nd: Needle, _ base: UnsafeRawPointer, _ n: Int) -> Bool {
        let m = nd.bytes.count
        guard n >= m else { return false }
        let last = n - m  // the last possible start
        let a1 = SIMD16<UInt8>(repeating: nd.a1)
        let a2 = SIMD16<UInt8>(repeating: nd.a2)
        let fold1 = SIMD16<UInt8>(repeating: nd.f1 ? 0x20 : 0)
        let fold2 = SIMD16<UInt8>(repeating: nd.f2 ? 0x20 : 0)
        var p = 0
        return nd.bytes.withUnsafeBufferPointer { needle in
            while p + 15 <= last {
                let v1 = base.loadUnaligned(fromByteOffset: p + nd.o1, as: SIMD16<UInt8>.self) | fold1
                let v2 = base.loadUnaligned(fromByteOffset: p + nd.o2, as: SIMD16<UInt8>.self) | fold2
                let hit = (v1 .== a1) .& (v2 .== a2)
                if any(hit) {
                    for k in 0..<16 where hit[k] && equal(needle, nd.fold, base + p + k) { return true }
                }
                p += 16
            }
            while p <= last {
                if equal(needle, nd.fold, base + p) { return true }
                p += 1
            }
            return false
        }
    }

    @inline(__always)
    static func equal(_ needle: UnsafeBufferPointer<UInt8>, _ fold: Bool, _ at: UnsafeRawPointer) -> Bool {
        if !fold { return memcmp(needle.baseAddress!, at, needle.count) == 0 }
        for k in 0..<needle.count {
            var c = at.load(fromByteOffset: k, as: UInt8.self)
            if c >= 0x41 && c <= 0x5A { c += 0x20 }
            if c != needle[k] { return false }
        }
        return true
    }
}
