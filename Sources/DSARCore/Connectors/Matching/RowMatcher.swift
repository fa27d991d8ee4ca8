import Foundation

/// Matches structured records (CSV rows, SQL rows, JSON objects) against a batch: `match` columns
/// by normalised equality, `text` columns by token search; collects identity expansion.
package struct RowMatcher {
    package let rules: RecordRules
    let table: IdentifierTable
    let text: TextMatcher
    /// Names used in provenance: "<connector>.<table>".
    let origin: String
    private var boundColumns: [String] = []
    private var matchIndex: [Int?] = []
    private var textIndex: [Int?] = []
    private var scratch: [UInt8] = []
    private var textHits: [TextMatch] = []
    /// Normalized identifiers of raw values already seen (a subject's rows repeat the same values),
    /// per `match` rule; cleared when it grows past `derivedCacheLimit`.
    private var derivedCache: [Int: [[UInt8]: Identifier?]] = [:]
    private var derivedCacheCount = 0
    static let derivedCacheLimit = 4096

    /// How one job matched one row.
    package struct JobHit: Sendable {
        package var job: Int
        package var matchedOn: [String]
        /// Matched through a `match` column (only such rows expand the identity).
        package var structured: Bool
        /// For text columns: the column and the byte ranges (within that value) that matched.
        package var textRanges: [(column: Int, range: Range<Int>)]
    }

    package init(rules: RecordRules, table: IdentifierTable, origin: String) {
        self.rules = rules
        self.table = table
        self.text = TextMatcher(table: table, types: nil)
        self.origin = origin
    }

    /// Resolves column names to positions (cached while the column list stays the same).
    package mutating func bind(columns: [String]) {
        if columns == boundColumns && !matchIndex.isEmpty { return }
        boundColumns = columns
        matchIndex = rules.match.map { columns.firstIndex(of: $0.column) }
        textIndex = rules.text.map { columns.firstIndex(of: $0) }
    }

    /// The position of a column in the bound column list.
    package func index(of column: String) -> Int? { boundColumns.firstIndex(of: column) }

    /// Matches one record; `values[k]` holds column k's bytes (nil for NULL / binary).
    package mutating func match(_ values: [[UInt8]?]) -> [JobHit] {
        var hits: [JobHit] = []
        func add(_ job: Int, _ how: String, structured: Bool, text: (Int, Range<Int>)? = nil) {
            if let k = hits.firstIndex(where: { $0.job == job }) {
                if !hits[k].matchedOn.contains(how) { hits[k].matchedOn.append(how) }
                hits[k].structured = hits[k].structured || structured
                if let text { hits[k].textRanges.append(text) }
            } else {
                hits.append(
                    JobHit(job: job, matchedOn: [how], structured: structured, textRanges: text.map { [$0] } ?? []))
            }
        }
        for (r, idx) in zip(rules.match, matchIndex) {
            guard let idx, idx < values.count, let v = values[idx] else { continue }
            let entries = v.withUnsafeBytes { table.matchField(type: r.type, $0, scratch: &scratch) }
            for entry in entries {
                let how = r.column == r.type ? r.type : "\(r.type) (\(r.column))"
                for j in table.hit(entry).jobs { add(j, how, structured: true) }
            }
        }
        if !text.isInert {
            for (name, idx) in zip(rules.text, textIndex) {
                guard let idx, idx < values.count, let v = values[idx] else { continue }
                textHits.removeAll(keepingCapacity: true)
                v.withUnsafeBytes { text.scan($0, into: &textHits) }
                for m in textHits {
                    let h = table.hit(m.entry)
                    for j in h.jobs {
                        add(j, "\(h.identifier.type) in \(name)", structured: false, text: (idx, m.range))
                    }
                }
            }
        }
        return hits
    }

    /// Identifiers this row adds to a job that matched it structurally (identity expansion).
    package mutating func derived(_ values: [[UInt8]?], hit: JobHit, known: Set<Identifier>) -> [(Identifier, String)] {
        guard hit.structured else { return [] }
        var out: [(Identifier, String)] = []
        let via = hit.matchedOn.first ?? "match"
        for (k, (r, idx)) in zip(rules.match, matchIndex).enumerated() where r.expand {
            guard let idx, idx < values.count, let v = values[idx] else { continue }
            let id: Identifier
            if let cached = derivedCache[k]?[v] {
                guard let c = cached else { continue }
                id = c
            } else {
                let str = String(decoding: v, as: UTF8.self)
                var normalized: Identifier?
                if case .success(let norm) = IdentifierNormalizer.normalize(type: r.type, str) {
                    normalized = Identifier(type: r.type, value: norm)
                }
                if derivedCacheCount >= RowMatcher.derivedCacheLimit {
                    derivedCache.removeAll(keepingCapacity: true)
                    derivedCacheCount = 0
                }
                derivedCache[k, default: [:]][v] = .some(normalized)
                derivedCacheCount += 1
                guard let n = normalized else { continue }
                id = n
            }
            if !known.contains(id) && !out.contains(where: { $0.0 == id }) {
                out.append((id, "\(r.type) derived from \(origin) via \(via)"))
            }
        }
        return out
    }
}

extension RowMatcher.JobHit {
    /// Matched only through free text: someone else's record that mentions the subject.
    package var mention: Bool { !structured }

    /// For a mention, the names (as the found record's field keys, by `key(column)`) of the text
    /// columns that matched; empty for a structured match.
    package func textFields(_ key: (Int) -> String) -> [String] {
        guard !structured else { return [] }
        var out: [String] = []
        for t in textRanges {
            let k = key(t.column)
            if !out.contains(k) { out.append(k) }
        }
        return out
    }
}
