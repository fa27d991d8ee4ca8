import Foundation

/// Turns what the connectors found for one job into the files of its bundle:
/// `data/<connector>/<table>.json` (a JSON array of objects, each with its source file and
/// location) and, for CSV sources, `data/<connector>/<table>.csv` with the original rows.
/// Records of other people that only mention the subject, and log lines, are written as their
/// ``ExportView`` (GDPR Art. 15(4)); the `.csv` holds only the subject's own rows, unchanged.
package enum FindingsWriter {
    /// A file or folder name made safe: no `/`, no leading `.`, only `[A-Za-z0-9._-]`.
    package static func safeName(_ s: String) -> String {
        var out = String(
            s.unicodeScalars.map { c -> Character in
                let ok =
                    (c.value >= 0x30 && c.value <= 0x39) || (c.value | 0x20 >= 0x61 && c.value | 0x20 <= 0x7A)
                    || c == "-" || c == "_" || c == "."
                return ok ? Character(c) : "_"
            })
        while out.hasPrefix(".") { out = "_" + out.dropFirst() }
        if out.isEmpty { out = "_" }
        return String(out.prefix(100))
    }

    /// The output group name of a source file: its base name (`shop-2026.csv` → `shop-2026`).
    package static func tableName(forFile path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for ext in [".gz", ".csv", ".tsv", ".txt"] where base.hasSuffix(ext) && base.count > ext.count {
            base = String(base.dropLast(ext.count))
        }
        return base
    }

    /// A record's source as the data subject sees it (data/*.json, the report): the file's base
    /// name, no server path. `sqlite:/var/lib/app.db` → `app.db`; a live database
    /// (`postgres://user@db:5432/shop`, `mysql://localhost/shop?socket=/run/mysqld.sock`, a
    /// `dbname=shop host=…` DSN) → its database name, without host, port or user; `exec:<name>` stays.
    package static func subjectSource(_ source: String) -> String {
        var s = Substring(source)
        if let r = s.range(of: "://") {
            // URL: the path after the authority (host, port, user), without query or fragment.
            s = s[r.upperBound...]
            s = s.firstIndex(of: "/").map { s[s.index(after: $0)...] } ?? ""
            if let q = s.firstIndex(where: { $0 == "?" || $0 == "#" }) { s = s[..<q] }
            while s.hasSuffix("/") { s = s.dropLast() }
            let scheme = source[..<r.lowerBound]
            let db = s.split(separator: "/").last.map(String.init) ?? ""
            return db.isEmpty ? String(scheme) : db
        }
        if source.contains("dbname=") {
            // key=value DSN: only the database name.
            for part in source.split(whereSeparator: { $0 == " " || $0 == ";" })
            where part.lowercased().hasPrefix("dbname=") {
                let v = part.dropFirst("dbname=".count).trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
                if !v.isEmpty { return v }
            }
            return "database"
        }
        // `scheme:/path` (sqlite:/…) or a plain path: the base name.
        if let c = s.firstIndex(of: ":"), s[s.index(after: c)...].hasPrefix("/"),
            s[..<c].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." })
        {
            s = s[s.index(after: c)...]
        }
        guard s.contains("/") else { return String(s) }
        return (String(s) as NSString).lastPathComponent
    }

    /// ``subjectSource(_:)`` remembered for the last source seen: consecutive records almost always
    /// share their source file, so a large export pays for the path parsing once per file, not per row.
    package struct SubjectSourceCache {
        private var key: String?
        private var value = ""

        package init() {}

        /// `subjectSource(source)`.
        package mutating func name(_ source: String) -> String {
            if source != key {
                key = source
                value = FindingsWriter.subjectSource(source)
            }
            return value
        }
    }

    /// One output file of a job's findings: `data/<connector>/<table>.json`, or `.csv` with the
    /// original rows for CSV sources.
    package struct File: Sendable {
        /// Path inside the bundle.
        package var name: String
        let outcome: Int
        let records: [Int]
        let csv: Bool
        /// The subject's identifiers, for the masking of ``ExportView``.
        let subject: ExportView.Subject
    }

    /// The files a job's findings make, in bytewise name order (the order of the ZIP); `subject`
    /// is every identifier of the subject (request and derived), whose own stay unmasked.
    package static func plan(_ outcomes: [ConnectorOutcome], subject: [Identifier]) -> [File] {
        let subject = ExportView.Subject(subject)
        var files: [File] = []
        for (oi, o) in outcomes.enumerated() where !o.findings.found.isEmpty {
            let dir = "data/" + safeName(o.name)
            var groups: [String: [Int]] = [:]
            var order: [String] = []
            for (k, r) in o.findings.found.enumerated() {
                if groups[r.table] == nil { order.append(r.table) }
                groups[r.table, default: []].append(k)
            }
            for table in order {
                let indices = groups[table]!
                files.append(
                    File(
                        name: dir + "/" + safeName(table) + ".json", outcome: oi, records: indices, csv: false,
                        subject: subject))
                // The raw rows are the subject's own only: a mention (or a row to mask) is in the JSON alone.
                let own = indices.filter { !ExportView.needsView(o.findings.found[$0]) }
                if let first = own.first, o.findings.found[first].rawHeader != nil {
                    files.append(
                        File(
                            name: dir + "/" + safeName(table) + ".csv", outcome: oi, records: own, csv: true,
                            subject: subject))
                }
            }
        }
        return files.sorted { Array($0.name.utf8).lexicographicallyPrecedes(Array($1.name.utf8)) }
    }

    /// Produces a file's bytes in chunks of about 1 MiB (`emit` gets each chunk), never the whole file at once.
    package static func produce(_ f: File, _ outcomes: [ConnectorOutcome], emit: ([UInt8]) throws -> Void) throws {
        let found = outcomes[f.outcome].findings.found
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20 + 64 << 10)
        func flushIfFull() throws {
            if out.count >= 1 << 20 {
                try emit(out)
                out.removeAll(keepingCapacity: true)
            }
        }
        if f.csv {
            let header = found[f.records[0]].rawHeader ?? []
            out += header
            if header.last != 0x0A { out += [0x0D, 0x0A] }
            for k in f.records {
                guard let raw = found[k].raw else { continue }
                out += raw
                if raw.last != 0x0A { out += [0x0D, 0x0A] }
                try flushIfFull()
            }
        } else {
            let writer = JSONWriter(indent: 2)
            func lit(_ s: StaticString) { s.withUTF8Buffer { out.append(contentsOf: $0) } }
            var names = SubjectSourceCache()
            lit("[")
            for (n, k) in f.records.enumerated() {
                let r = found[k]
                if n == 0 { lit("\n  {\n    \"source\": ") } else { lit(",\n  {\n    \"source\": ") }
                // The subject's copy: the base name only (the team's manifest has the full paths).
                JSONWriter.writeString(names.name(r.source), into: &out)
                lit(",\n    \"location\": ")
                let loc = JSONValue.obj(omittingNil: [
                    "line": .int(r.line), "offset": r.range.map { .int($0.lowerBound) },
                    "length": r.range.map { .int($0.upperBound - $0.lowerBound) },
                ])
                writer.write(loc, into: &out, level: 2)
                lit(",\n    \"matched_on\": ")
                writer.write(.array(r.matchedOn.map { .string($0) }), into: &out, level: 2)
                if ExportView.needsView(r) {
                    let v = ExportView.view(r, subject: f.subject)
                    if v.mention { lit(",\n    \"mention\": true") }
                    if v.masked > 0 {
                        lit(",\n    \"masked\": ")
                        out += String(v.masked).utf8
                    }
                    lit(",\n    \"record\": ")
                    if v.masked == 0 && !v.mention {
                        out += r.recordJSON
                    } else {
                        writer.write(.object(v.fields), into: &out, level: FoundRecord.recordLevel)
                    }
                } else {
                    lit(",\n    \"record\": ")
                    out += r.recordJSON
                }
                lit("\n  }")
                try flushIfFull()
            }
            lit(f.records.isEmpty ? "]\n" : "\n]\n")
        }
        if !out.isEmpty { try emit(out) }
    }

    /// An upper bound of a file's size that costs no encoding (chooses between in-memory and streamed).
    package static func estimatedSize(_ f: File, _ outcomes: [ConnectorOutcome]) -> Int {
        let found = outcomes[f.outcome].findings.found
        var n = 64
        for k in f.records {
            let r = found[k]
            // A masked value can grow: a marker (at most 33 bytes) replaces at least 3.
            let record = ExportView.needsView(r) ? r.recordJSON.count * 11 + 64 : r.recordJSON.count
            n +=
                f.csv
                ? (r.raw?.count ?? 0) + 2
                : record + 2 * r.source.utf8.count + r.matchedOn.reduce(0) { $0 + 2 * $1.utf8.count + 16 }
                    + 160
        }
        return n
    }

    /// The exact size of a file (it is produced once without keeping the bytes).
    package static func size(_ f: File, _ outcomes: [ConnectorOutcome]) throws -> Int64 {
        var n: Int64 = 0
        try produce(f, outcomes) { n += Int64($0.count) }
        return n
    }
}
