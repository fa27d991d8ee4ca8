import Foundation

/// The JSON a job is shown as outside the spool: `dsar status JOB --json`, `dsar events JOB --json`
/// and `dsar serve` (`GET /dsar/{jobId}`, `GET /dsar/{jobId}/events`) print the same bytes. Job
/// records and journal entries hold pseudonyms only, never personal data.
package enum JobJSON {
    static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }

    /// One job record, as `dsar status JOB --json` prints it.
    package static func record(_ r: JobRecord) throws -> String { withNumbers(try encoder.encode(r)) }

    /// Job records, as `dsar status --json` prints them.
    package static func records(_ rs: [JobRecord]) throws -> String { withNumbers(try encoder.encode(rs)) }

    /// The journal entries of one job in order, each line exactly as journaled (`dsar events JOB --json`).
    package static func eventLines(jobID: String, journal: Journal) throws -> [[UInt8]] {
        try journal.entries().filter { $0.entry.jobID == jobID }.map(\.entry.line)
    }

    /// The job's timeline as one JSON document: `{"jobId": …, "events": [entry, …]}`.
    package static func timeline(jobID: String, journal: Journal) throws -> [UInt8] {
        var out = Array("{\"jobId\":\"\(jobID)\",\"events\":[".utf8)
        for (k, line) in try eventLines(jobID: jobID, journal: journal).enumerated() {
            if k > 0 { out.append(0x2C) }
            out += line
        }
        out += Array("]}\n".utf8)
        return out
    }

    /// The encoded records with the connectors' `details` (stored as strings) as JSON numbers where
    /// they are numbers (`"bytes_scanned": 603`), so that `jq '.bytes_scanned > 0'` works.
    package static func withNumbers(_ data: Data) -> String {
        guard let root = try? JSONParser.parse(Array(data)) else { return String(decoding: data, as: UTF8.self) }
        func isNumber(_ s: String) -> Bool {
            let b = Array(s.utf8)
            var i = 0
            if i < b.count && b[i] == 0x2D { i += 1 }
            let start = i
            while i < b.count && b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
            guard i > start, i - start == 1 || b[start] != 0x30 else { return false }
            if i < b.count && b[i] == 0x2E {
                i += 1
                let f = i
                while i < b.count && b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
                guard i > f else { return false }
            }
            return i == b.count && b.count <= 20
        }
        func walk(_ v: JSONValue) -> JSONValue {
            switch v {
            case .object(let members):
                return .object(
                    members.map { m in
                        var m = m
                        if m.key == "details", case .object(let details) = m.value {
                            m.value = .object(
                                details.map { d in
                                    var d = d
                                    if case .string(let s) = d.value, isNumber(s) { d.value = .number(s) }
                                    return d
                                })
                        } else {
                            m.value = walk(m.value)
                        }
                        return m
                    })
            case .array(let items): return .array(items.map(walk))
            default: return v
            }
        }
        return JSONWriter(indent: 2).string(walk(root))
    }
}
