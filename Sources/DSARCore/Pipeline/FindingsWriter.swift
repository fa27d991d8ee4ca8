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

    /// Writes the files; returns their paths relative to `workDir`, sorted. Streams: each record is
    /// encoded into a 1 MiB buffer that is flushed to the file, so memory does not grow with the export.
    @discardableResult
    public static func write(_ outcomes: [ConnectorOutcome], workDir: String) throws -> [String] {
        var written: [String] = []
        for o in outcomes where !o.findings.found.isEmpty {
            let dir = "data/" + safeName(o.name)
            try FileSystem.makeDirectory(workDir + "/data", mode: 0o700)
            try FileSystem.makeDirectory(workDir + "/" + dir, mode: 0o700)
            var groups: [String: [Int]] = [:]
            var order: [String] = []
            for (k, r) in o.findings.found.enumerated() {
                if groups[r.table] == nil { order.append(r.table) }
                groups[r.table, default: []].append(k)
            }
            let writer = JSONWriter(indent: 2)
            for table in order {
                let indices = groups[table]!
                let rel = dir + "/" + safeName(table) + ".json"
                var out = try ScratchFile(workDir + "/" + rel)
                out.append("[")
                for (n, k) in indices.enumerated() {
                    let r = o.findings.found[k]
                    out.append(n == 0 ? "\n  {\n    " : ",\n  {\n    ")
                    out.append("\"source\": ")
                    JSONWriter.writeString(r.source, into: &out.buffer)
                    out.append(",\n    \"location\": ")
                    var loc: [JSONMember] = [JSONMember(key: "line", value: .int(r.line))]
                    if let range = r.range {
                        loc.append(JSONMember(key: "offset", value: .int(range.lowerBound)))
                        loc.append(JSONMember(key: "length", value: .int(range.upperBound - range.lowerBound)))
                    }
                    writer.write(.object(loc), into: &out.buffer, level: 2)
                    out.append(",\n    \"matched_on\": ")
                    writer.write(.array(r.matchedOn.map { .string($0) }), into: &out.buffer, level: 2)
                    out.append(",\n    \"record\": ")
                    out.buffer += r.recordJSON
                    out.append("\n  }")
                    try out.flushIfFull()
                }
                out.append(indices.isEmpty ? "]\n" : "\n]\n")
                try out.close()
                written.append(rel)
                if let header = o.findings.found[indices[0]].rawHeader {
                    let crel = dir + "/" + safeName(table) + ".csv"
                    var csv = try ScratchFile(workDir + "/" + crel)
                    csv.buffer += header
                    if header.last != 0x0A { csv.buffer += [0x0D, 0x0A] }
                    for k in indices {
                        guard let raw = o.findings.found[k].raw else { continue }
                        csv.buffer += raw
                        if raw.last != 0x0A { csv.buffer += [0x0D, 0x0A] }
                        try csv.flushIfFull()
                    }
                    try csv.close()
                    written.append(crel)
                }
            }
        }
        return written.sorted()
    }
}

/// A file in a job's work dir written through a 1 MiB buffer (no fsync: `tmp/` is scratch).
struct ScratchFile {
    let path: String
    let fd: Int32
    var buffer: [UInt8] = []

    init(_ path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw DSARError.syscall("cannot create", path: path) }
        buffer.reserveCapacity(1 << 20 + 64 << 10)
    }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    mutating func flushIfFull() throws {
        if buffer.count >= 1 << 20 { try flush() }
    }

    mutating func flush() throws {
        try buffer.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: path) }
        buffer.removeAll(keepingCapacity: true)
    }

    mutating func close() throws {
        defer { Glibc.close(fd) }
        try flush()
    }
}
