#if canImport(Glibc)
import Glibc
#endif

/// Finds the values of a few dotted paths (`user.email`) in one JSON-lines record without building
/// the document: a validating, allocation-free pass over the bytes.
///
/// It answers only when it is sure to agree with ``JSONParser`` followed by ``LogConnector/lookup(_:path:)``:
/// the text is valid RFC 8259 JSON (UTF-8 checked, no duplicate member names, bounded depth) and
/// every path resolves to a string without escapes, a number, something else (nil), or nothing.
/// Anything it is unsure of — escapes in a member name or in a wanted string, a non-ASCII member
/// name (Swift compares names by canonical equivalence), deep nesting, a lone surrogate escape —
/// makes it return nil, and the caller uses the full parser. Lines with no match are thus skipped
/// at the cost of one pass; matching lines are still parsed fully to export them.
struct JSONFieldExtractor {
    /// Each path split at dots (empty parts dropped, as `lookup` does).
    let paths: [[[UInt8]]]

    /// Nil when a path cannot be handled (non-ASCII): the caller must always parse fully.
    init?(paths: [String]) {
        var out: [[[UInt8]]] = []
        for p in paths {
            let parts = p.split(separator: ".").map { Array($0.utf8) }
            if parts.isEmpty || parts.contains(where: { $0.contains { $0 >= 0x80 } }) { return nil }
            out.append(parts)
        }
        self.paths = out
        self.all = Array(0..<out.count)
    }

    let all: [Int]

    /// A path's value: the byte range of a string's content or a number's text, or `none`.
    enum Value: Equatable {
        case none
        case bytes(Range<Int>)
    }

    static let maxDepth = 48

    /// Reusable buffers, so that a line costs no allocation.
    struct Scratch {
        var values: [Value] = []
        var keys: [Range<Int>] = []
        init() {}
    }

    /// Fills `scratch.values` with every path's value; false when not sure (use the full parser).
    func extract(_ p: UnsafeRawBufferPointer, _ scratch: inout Scratch) -> Bool {
        var s = Scan(p: p.bindMemory(to: UInt8.self), paths: paths)
        swap(&s.values, &scratch.values)
        swap(&s.keys, &scratch.keys)
        defer {
            swap(&s.values, &scratch.values)
            swap(&s.keys, &scratch.keys)
        }
        s.values.removeAll(keepingCapacity: true)
        s.values.append(contentsOf: repeatElement(.none, count: paths.count))
        s.keys.removeAll(keepingCapacity: true)
        s.skipWhitespace()
        guard s.value(depth: 0, active: all) else { return false }
        s.skipWhitespace()
        return s.i == s.p.count
    }

    struct Scan {
        let p: UnsafeBufferPointer<UInt8>
        let paths: [[[UInt8]]]
        var i = 0
        var values: [Value] = []
        /// Member-name ranges of the objects being scanned (for the duplicate check), a stack.
        var keys: [Range<Int>] = []

        init(p: UnsafeBufferPointer<UInt8>, paths: [[[UInt8]]]) {
            self.p = p
            self.paths = paths
        }

        mutating func skipWhitespace() {
            while i < p.count, p[i] == 0x20 || p[i] == 0x09 || p[i] == 0x0D || p[i] == 0x0A { i += 1 }
        }

        /// A value; `active` are the paths whose first `depth` parts led here (only objects use them).
        mutating func value(depth: Int, active: [Int]) -> Bool {
            guard i < p.count, depth <= JSONFieldExtractor.maxDepth else { return false }
            switch p[i] {
            case UInt8(ascii: "{"): return object(depth: depth, active: active)
            case UInt8(ascii: "["): return array(depth: depth)
            case UInt8(ascii: "\""): return string(escapes: nil) != nil
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return number()
            default: return false
            }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard p.count - i >= n else { return false }
            for k in 0..<n where p[i + k] != word.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func number() -> Bool {
            func digit(_ k: Int) -> Bool { k < p.count && p[k] >= 0x30 && p[k] <= 0x39 }
            if p[i] == UInt8(ascii: "-") { i += 1 }
            guard i < p.count else { return false }
            if p[i] == UInt8(ascii: "0") {
                i += 1
            } else if digit(i) {
                while digit(i) { i += 1 }
            } else {
                return false
            }
            if i < p.count && p[i] == UInt8(ascii: ".") {
                i += 1
                guard digit(i) else { return false }
                while digit(i) { i += 1 }
            }
            if i < p.count && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
                i += 1
                if i < p.count && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
                guard digit(i) else { return false }
                while digit(i) { i += 1 }
            }
            return true
        }

        /// A string at `i` (a quote); returns the content range. `escapes` is set when it had any.
        mutating func string(escapes: UnsafeMutablePointer<Bool>?) -> Range<Int>? {
            i += 1
            let start = i
            while i < p.count {
                let b = p[i]
                if b == 0x22 {
                    let r = start..<i
                    i += 1
                    return r
                } else if b == 0x5C {
                    escapes?.pointee = true
                    guard i + 1 < p.count else { return nil }
                    let e = p[i + 1]
                    switch e {
                    case 0x22, 0x5C, 0x2F, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"),
                        UInt8(ascii: "t"):
                        i += 2
                    case UInt8(ascii: "u"):
                        guard let cp = hex4(i + 2) else { return nil }
                        i += 6
                        if cp >= 0xD800 && cp < 0xDC00 {
                            guard i + 1 < p.count, p[i] == 0x5C, p[i + 1] == UInt8(ascii: "u"), let lo = hex4(i + 2),
                                lo >= 0xDC00 && lo < 0xE000
                            else { return nil }
                            i += 6
                        } else if cp >= 0xDC00 && cp < 0xE000 {
                            return nil  // a lone low surrogate: leave it to the full parser
                        }
                    default: return nil
                    }
                } else if b < 0x20 {
                    return nil
                } else if b < 0x80 {
                    i += 1
                } else {
                    guard utf8(at: i) else { return nil }
                }
            }
            return nil
        }

        func hex4(_ at: Int) -> UInt32? {
            guard at + 4 <= p.count else { return nil }
            var v: UInt32 = 0
            for k in at..<(at + 4) {
                guard let d = JSONParser.hexDigit(p[k]) else { return nil }
                v = v << 4 | d
            }
            return v
        }

        /// One strictly valid multi-byte UTF-8 sequence at `k` (no overlongs, no surrogates, ≤ U+10FFFF); advances `i`.
        mutating func utf8(at k: Int) -> Bool {
            guard let (need, lo, hi) = JSONParser.utf8Lead(p[k]) else { return false }
            guard k + need < p.count else { return false }
            let b1 = p[k + 1]
            guard b1 >= lo && b1 <= hi else { return false }
            for n in 2..<(need + 1) where p[k + n] < 0x80 || p[k + n] > 0xBF { return false }
            i = k + need + 1
            return true
        }

        mutating func array(depth: Int) -> Bool {
            i += 1
            skipWhitespace()
            if i < p.count && p[i] == UInt8(ascii: "]") {
                i += 1
                return true
            }
            while true {
                skipWhitespace()
                guard value(depth: depth + 1, active: []) else { return false }
                skipWhitespace()
                guard i < p.count else { return false }
                if p[i] == UInt8(ascii: ",") {
                    i += 1
                } else if p[i] == UInt8(ascii: "]") {
                    i += 1
                    return true
                } else {
                    return false
                }
            }
        }

        mutating func object(depth: Int, active: [Int]) -> Bool {
            i += 1
            let keyBase = keys.count
            defer { keys.removeSubrange(keyBase...) }
            skipWhitespace()
            if i < p.count && p[i] == UInt8(ascii: "}") {
                i += 1
                return true
            }
            while true {
                skipWhitespace()
                guard i < p.count, p[i] == 0x22 else { return false }
                var escaped = false
                guard let key = string(escapes: &escaped), !escaped else { return false }
                // Non-ASCII names compare by canonical equivalence in JSONParser: leave them to it.
                for k in key where p[k] >= 0x80 { return false }
                for other in keys[keyBase...] where other.count == key.count {
                    if memcmp(p.baseAddress! + other.lowerBound, p.baseAddress! + key.lowerBound, key.count) == 0 {
                        return false  // a duplicate member: invalid for JSONParser
                    }
                }
                keys.append(key)
                skipWhitespace()
                guard i < p.count, p[i] == UInt8(ascii: ":") else { return false }
                i += 1
                skipWhitespace()
                // Paths continuing through this member, and those ending at it.
                var deeper: [Int] = []
                var ending: [Int] = []
                for a in active where depth < paths[a].count {
                    let part = paths[a][depth]
                    guard part.count == key.count,
                        part.withUnsafeBytes({ memcmp($0.baseAddress!, p.baseAddress! + key.lowerBound, key.count) })
                            == 0
                    else { continue }
                    if depth + 1 == paths[a].count { ending.append(a) } else { deeper.append(a) }
                }
                guard i < p.count else { return false }
                if !ending.isEmpty {
                    let start = i
                    switch p[i] {
                    case 0x22:
                        var esc = false
                        guard let r = string(escapes: &esc), !esc else { return false }
                        for a in ending { values[a] = .bytes(r) }
                    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                        guard number() else { return false }
                        for a in ending { values[a] = .bytes(start..<i) }
                    default:
                        guard value(depth: depth + 1, active: deeper) else { return false }
                    }
                } else {
                    guard value(depth: depth + 1, active: deeper) else { return false }
                }
                skipWhitespace()
                guard i < p.count else { return false }
                if p[i] == UInt8(ascii: ",") {
                    i += 1
                } else if p[i] == UInt8(ascii: "}") {
                    i += 1
                    return true
                } else {
                    return false
                }
            }
        }
    }
}
