import Foundation

/// Writes what the connectors found for one job into its work dir, ready for the bundler:
/// `data/<connector>/<table>.json` (a JSON array of objects, each with its source file and
/// location) and, for CSV sources, `data/<connector>/<table>.csv` with the original rows.
public enum FindingsWriter {
    /// A file or folder name made safe: no `/`, no leading `.`, only `[A-Za-z0-9._-]`.
    public static func safeName(_ s: String) -> String {
        var out = String(s.unicodeScalars.map { c -> Character in
            let ok = (c.value >= 0x30 && c.value <= 0x39) || (c.value | 0x20 >= 0x61 && c.value | 0x20 <= 0x7A) || c == "-" || c == "_" || c == "."
            return ok ? Character(c) : "_"
        })
        while out.hasPrefix(".") { out = "_" + out.dropFirst() }
        if out.isEmpty { out = "_" }
        return String(out.prefix(100))
    }

    /// The output group name of a source file: its base name (`shop-2026.csv` → `shop-2026`).
    public static func tableName(forFile path: String) -> String {
        var base = (path as NSString).lastPathComponent
        for ext in [".gz", ".csv", ".tsv", ".txt"] where base.hasSuffix(ext) && base.count > ext.count { base = String(base.dropLast(ext.count)) }
        return base
    }

    /// Writes the files; returns their paths relative to `workDir`, sorted.
    @discardableResult
    public static func write(_ outcomes: [ConnectorOutcome], workDir: String) throws -> [String] {
        var written: [String] = []
        for o in outcomes where !o.findings.found.isEmpty {
            let dir = "data/" + safeName(o.name)
            try FileSystem.makeDirectory(workDir + "/data", mode: 0o700)
            try FileSystem.makeDirectory(workDir + "/" + dir, mode: 0o700)
            var groups: [String: [FoundRecord]] = [:]
            var order: [String] = []
            for r in o.findings.found {
                if groups[r.table] == nil { order.append(r.table) }
                groups[r.table, default: []].append(r)
            }
            for table in order {
                let records = groups[table]!
                let items: [JSONValue] = records.map { r in
                    var loc: [JSONMember] = [JSONMember(key: "line", value: .int(r.line))]
                    if let range = r.range {
                        loc.append(JSONMember(key: "offset", value: .int(range.lowerBound)))
                        loc.append(JSONMember(key: "length", value: .int(range.upperBound - range.lowerBound)))
                    }
                    return .obj([
                        "source": .string(r.source), "location": .object(loc),
                        "matched_on": .array(r.matchedOn.map { .string($0) }), "record": .object(r.fields),
                    ])
                }
                let rel = dir + "/" + safeName(table) + ".json"
                try FileSystem.writeAtomically(workDir + "/" + rel, JSONWriter(indent: 2).encode(.array(items)) + [0x0A], mode: 0o600)
                written.append(rel)
                if let header = records.first?.rawHeader {
                    var csv = header
                    if csv.last != 0x0A { csv += [0x0D, 0x0A] }
                    for r in records {
                        guard var raw = r.raw else { continue }
                        if raw.last != 0x0A { raw += [0x0D, 0x0A] }
                        csv += raw
                    }
                    let crel = dir + "/" + safeName(table) + ".csv"
                    try FileSystem.writeAtomically(workDir + "/" + crel, csv, mode: 0o600)
                    written.append(crel)
                }
            }
        }
        return written.sorted()
    }
}
