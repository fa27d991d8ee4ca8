import Foundation

/// The pushdown search of one table for a whole batch: one parameterised query per `match:`
/// column over all the batch's values of its identifier type (`= ANY($1)` or chunked `IN (?, …)`),
/// one per `text:` column with a case-insensitive prefilter; every row the server returns is then
/// confirmed by ``RowMatcher`` exactly as a dump's row would be (near misses never count).
struct LiveSearch {
    let db: any LiveDatabase
    let batch: ScanBatch
    /// Append the engine's row lock (erasure).
    let lockRows: Bool

    /// A table's rows the server returned (each distinct row once), with what the catalog says.
    struct Rows {
        var columns: [LiveColumn]
        var primaryKey: [String]
        var rows: [[LiveValue]]
        /// How often each row occurs (rows without a primary key may repeat).
        var multiplicity: [Int]
    }

    /// The batch's normalised values per identifier type (e-mails in every spelling).
    static func values(_ batch: ScanBatch) -> [String: [String]] {
        var out: [String: Set<String>] = [:]
        for j in batch.jobs {
            for id in j.identifiers {
                if id.type == "email" {
                    for f in IDNA.emailForms(id.value) { out[id.type, default: []].insert(f) }
                } else {
                    out[id.type, default: []].insert(id.value)
                }
            }
        }
        return out.mapValues { $0.sorted() }
    }

    /// The text every spelling of `id` that ``TextMatcher`` accepts contains (case aside): the
    /// longest run of ASCII letters and digits of its value (URL-encoding, case and punycode keep
    /// such runs). Nil where there is none that is safe (phone numbers may be written with
    /// separators anywhere, IP addresses in several forms): the column is then read unfiltered.
    static func needle(_ id: Identifier) -> String? {
        switch IdentifierKind(type: id.type) {
        case .phone, .ip: return nil
        case .email, .other:
            var best: ArraySlice<UInt8> = []
            let b = Array(id.value.utf8)
            var i = 0
            while i < b.count {
                guard isAlnum(b[i]) else {
                    i += 1
                    continue
                }
                var e = i
                while e < b.count && isAlnum(b[e]) { e += 1 }
                if e - i > best.count { best = b[i..<e] }
                i = e
            }
            return best.isEmpty ? nil : String(decoding: best, as: UTF8.self)
        }
    }

    static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
    }

    /// The rows of `table` that may belong to a job of the batch (a superset, confirmed later), or
    /// nil when the table does not exist; `missing` gets configured columns the table lacks.
    func rows(of table: String, rules: RecordRules, missing: inout [String]) throws -> Rows? {
        guard let columns = try db.columns(of: table) else { return nil }
        let names = columns.map(\.name)
        for c in Set(rules.match.map(\.column) + rules.text + rules.redact).sorted() where !names.contains(c) {
            missing.append(c)
        }
        let pk = try db.primaryKey(of: table)
        let keyIdx = pk.isEmpty ? Array(columns.indices) : pk.compactMap { names.firstIndex(of: $0) }
        var out = Rows(columns: columns, primaryKey: pk, rows: [], multiplicity: [])
        var seen: [[UInt8]: Int] = [:]
        let select =
            "SELECT " + names.map(db.quote).joined(separator: ", ") + " FROM " + db.quote(table) + " WHERE "
        let values = LiveSearch.values(batch)
        func run(_ predicate: String, _ params: [LiveParam]) throws {
            // A row found through several columns counts once; identical rows of a table without a
            // primary key are as many as one query returns.
            var counts: [Int: Int] = [:]
            try db.query(select + predicate + (lockRows ? db.rowLockClause : ""), params) { row in
                let key = LiveSearch.key(keyIdx.map { row[$0] })
                let k: Int
                if let known = seen[key] {
                    k = known
                } else {
                    k = out.rows.count
                    seen[key] = k
                    out.rows.append(row)
                    out.multiplicity.append(1)
                }
                counts[k, default: 0] += 1
            }
            for (k, n) in counts where pk.isEmpty && n > out.multiplicity[k] { out.multiplicity[k] = n }
        }
        for rule in rules.match {
            guard let col = columns.first(where: { $0.name == rule.column }), let vals = values[rule.type] else {
                continue
            }
            let q = db.quote(col.name)
            switch IdentifierKind(type: rule.type) {
            case .phone, .ip:
                try run("\(q) IS NOT NULL", [])
                continue
            default: break
            }
            if col.kind == .integer {
                let ints = vals.compactMap { Int64($0) }
                if ints.isEmpty { continue }
                if db.supportsArrayParameters {
                    try run("\(q) = ANY(\(db.placeholder(1)))", [.integerArray(ints)])
                } else {
                    try chunked(ints.map { .integer($0) }) { try run("\(q) IN (\($0))", $1) }
                }
                continue
            }
            var lhs = col.kind == .text || !db.supportsArrayParameters ? q : "CAST(\(q) AS text)"
            if rule.type == "email" { lhs = "lower(\(lhs))" }
            if db.supportsArrayParameters {
                try run("\(lhs) = ANY(\(db.placeholder(1)))", [.textArray(vals)])
            } else {
                try chunked(vals.map { .text($0) }) { try run("\(lhs) IN (\($0))", $1) }
            }
        }
        if !rules.text.isEmpty && !batch.table.isEmpty {
            var needles: Set<String> = []
            var unfiltered = false
            for j in batch.jobs {
                for id in j.identifiers {
                    if let n = LiveSearch.needle(id) { needles.insert(n.lowercased()) } else { unfiltered = true }
                }
            }
            for name in rules.text where names.contains(name) {
                let q = db.quote(name)
                if unfiltered {
                    try run("\(q) IS NOT NULL", [])
                    continue
                }
                let patterns = needles.sorted().map { LiveParam.text(db.likePattern($0)) }
                try chunked(patterns) { _, params in
                    let ors = params.indices.map { db.containsCaseInsensitive(q, db.placeholder($0 + 1)) }
                    try run("(" + ors.joined(separator: " OR ") + ")", params)
                }
            }
        }
        return out
    }

    /// Calls `body` with `IN` list placeholders and their parameters, at most `maxParameters` at once.
    func chunked(_ params: [LiveParam], _ body: (String, [LiveParam]) throws -> Void) throws {
        let size = max(1, min(db.maxParameters, 10_000))
        var start = 0
        while start < params.count {
            let chunk = Array(params[start..<min(params.count, start + size)])
            try body(chunk.indices.map { db.placeholder($0 + 1) }.joined(separator: ", "), chunk)
            start += size
        }
    }

    /// A row's identity for de-duplication (type-tagged, length-prefixed bytes).
    static func key(_ values: [LiveValue]) -> [UInt8] {
        var out: [UInt8] = []
        func add(_ tag: UInt8, _ bytes: [UInt8]) {
            out.append(tag)
            withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { out += $0 }
            out += bytes
        }
        for v in values {
            switch v {
            case .null: add(0, [])
            case .integer(let i): add(1, Array(String(i).utf8))
            case .decimal(let s): add(2, Array(s.utf8))
            case .bool(let b): add(3, [b ? 1 : 0])
            case .text(let s): add(4, Array(s.utf8))
            case .bytes(let b): add(5, b)
            case .timestamp(let s): add(6, Array(s.utf8))
            case .json(let s): add(7, Array(s.utf8))
            }
        }
        return out
    }

    /// A value as the matcher compares it (nil: NULL or binary).
    static func matchBytes(_ v: LiveValue) -> [UInt8]? {
        switch v {
        case .null, .bytes: nil
        case .integer(let i): Array(String(i).utf8)
        case .decimal(let s), .text(let s), .timestamp(let s), .json(let s): Array(s.utf8)
        case .bool(let b): Array((b ? "true" : "false").utf8)
        }
    }

    /// A value as the findings hold it: numbers as numbers, NULL as null, bytes as base64,
    /// timestamps as RFC 3339 strings, JSON as JSON.
    static func json(_ v: LiveValue) -> JSONValue {
        switch v {
        case .null: return .null
        case .integer(let i): return .number(String(i))
        case .decimal(let s):
            return (try? JSONParser.parse(Array(s.utf8))).flatMap { if case .number = $0 { $0 } else { nil } }
                ?? .string(s)
        case .bool(let b): return .bool(b)
        case .text(let s), .timestamp(let s): return .string(s)
        case .bytes(let b): return .string(Data(b).base64EncodedString())
        case .json(let s): return (try? JSONParser.parse(Array(s.utf8))) ?? .string(s)
        }
    }
}
