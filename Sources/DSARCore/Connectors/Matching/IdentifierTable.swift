import Foundation

/// Every identifier of every job in a batch in one open-addressing hash table over bytes, so a
/// source is read once for all requests and a lookup allocates nothing.
package final class IdentifierTable: @unchecked Sendable {
    /// The identifier types present (index = type code).
    package let types: [String]
    let kinds: [IdentifierKind]
    private var pool: [UInt8] = []
    private var entries: [Entry] = []
    private var jobsFlat: [Int32] = []
    private var slots: [Int32]
    private let mask: Int
    /// Distinct lengths of values present, per kind, for a cheap pre-check before hashing.
    private var lengthBits = [UInt64](repeating: 0, count: 9)  // lengths 0..<576

    struct Entry {
        var hash: UInt64
        var start: Int32
        var length: Int32
        var type: Int32
        var jobsStart: Int32
        var jobsCount: Int32
        /// The identifier's own value in the pool (differs from start/length for an alias spelling).
        var idStart: Int32
        var idLength: Int32
    }

    /// A hit: the identifier and the batch indexes of the jobs that asked for it.
    package struct Hit: Sendable {
        package var identifier: Identifier
        package var jobs: [Int]
    }

    /// Builds the table from each job's identifiers (`jobs[k]` belongs to batch index k).
    package init(jobs: [[Identifier]]) {
        var byKey: [Identifier: [Int32]] = [:]
        for (k, ids) in jobs.enumerated() {
            for id in ids { byKey[id, default: []].append(Int32(k)) }
        }
        var typeList: [String] = []
        for id in byKey.keys.sorted() where !typeList.contains(id.type) { typeList.append(id.type) }
        types = typeList
        kinds = typeList.map(IdentifierKind.init(type:))
        // An internationalised e-mail is also found under its other spellings (xn-- / Unicode):
        // alias entries that report the identifier as requested.
        let sorted = byKey.sorted(by: { $0.key < $1.key })
        let allForms = sorted.map { $0.key.type == "email" ? IDNA.emailForms($0.key.value) : [$0.key.value] }
        let formCount = allForms.reduce(0) { $0 + $1.count }
        var cap = 16
        while cap < formCount * 2 { cap <<= 1 }
        slots = [Int32](repeating: -1, count: cap)
        mask = cap - 1
        for ((id, jobList), forms) in zip(sorted, allForms) {
            let type = Int32(typeList.firstIndex(of: id.type)!)
            let jobsStart = Int32(jobsFlat.count)
            jobsFlat += jobList
            let idStart = Int32(pool.count)
            let idLength = Int32(id.value.utf8.count)
            for form in forms {
                let bytes = Array(form.utf8)
                let h = IdentifierTable.hash(bytes)
                let e = Entry(
                    hash: h, start: Int32(pool.count), length: Int32(bytes.count), type: type,
                    jobsStart: jobsStart, jobsCount: Int32(jobList.count), idStart: idStart, idLength: idLength)
                pool += bytes
                var slot = Int(truncatingIfNeeded: h) & mask
                while slots[slot] >= 0 { slot = (slot + 1) & mask }
                slots[slot] = Int32(entries.count)
                entries.append(e)
                if bytes.count < 576 { lengthBits[bytes.count >> 6] |= 1 << UInt64(bytes.count & 63) }
            }
        }
    }

    /// Whether the batch has no identifiers.
    package var isEmpty: Bool { entries.isEmpty }

    /// The type code of a type name, if present in the batch.
    package func code(of type: String) -> Int? { types.firstIndex(of: type) }

    /// FNV-1a, 64-bit.
    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p {
            h ^= UInt64(b)
            h &*= 0x100_0000_01b3
        }
        return h
    }

    static func hash(_ a: [UInt8]) -> UInt64 { a.withUnsafeBytes { hash($0) } }

    @inline(__always)
    func lengthPresent(_ n: Int) -> Bool { n < 576 && lengthBits[n >> 6] & (1 << UInt64(n & 63)) != 0 }

    /// Calls `body(entryIndex)` for each identifier whose value equals `value` (of any type when
    /// `type` is nil, else only that type code).
    @inline(__always)
    func lookup(_ value: UnsafeRawBufferPointer, type: Int?, _ body: (Int) -> Void) {
        guard lengthPresent(value.count) else { return }
        let h = IdentifierTable.hash(value)
        var slot = Int(truncatingIfNeeded: h) & mask
        while true {
            let idx = slots[slot]
            if idx < 0 { return }
            let e = entries[Int(idx)]
            if e.hash == h && Int(e.length) == value.count && (type == nil || Int(e.type) == type!) {
                let equal = pool.withUnsafeBytes { p in
                    memcmp(p.baseAddress! + Int(e.start), value.baseAddress!, value.count) == 0
                }
                if equal { body(Int(idx)) }
            }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    func entries(_ k: Int) -> Entry { entries[k] }

    /// The number of entries (every spelling of every identifier).
    var entryCount: Int { entries.count }

    /// Calls `body(bytes, type code)` for each entry's spelling, in entry order.
    func forEachEntry(_ body: ([UInt8], Int) -> Void) {
        for e in entries { body(Array(pool[Int(e.start)..<Int(e.start + e.length)]), Int(e.type)) }
    }

    /// The identifier and jobs of an entry.
    package func hit(_ entryIndex: Int) -> Hit {
        let e = entries[entryIndex]
        let value = String(decoding: pool[Int(e.idStart)..<Int(e.idStart + e.idLength)], as: UTF8.self)
        let jobs = jobsFlat[Int(e.jobsStart)..<Int(e.jobsStart + e.jobsCount)].map(Int.init)
        return Hit(identifier: Identifier(type: types[Int(e.type)], value: value), jobs: jobs)
    }

    /// Matches a structured value (a column mapped to `type`): normalised per type, then looked up.
    package func matchField(type: String, _ raw: UnsafeRawBufferPointer, scratch: inout [UInt8]) -> [Int] {
        guard let code = code(of: type) else { return [] }
        guard ByteNormalizer.normalize(type: kinds[code], raw, into: &scratch) else { return [] }
        var out: [Int] = []
        scratch.withUnsafeBytes { v in lookup(v, type: code) { out.append($0) } }
        return out
    }
}
