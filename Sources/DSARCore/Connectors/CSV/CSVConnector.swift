import Foundation
import Logging

/// CSV exports (RFC 4180, streaming).
package struct CSVConnector: SettingsConnector {
    package let config: ConnectorConfig
    /// The kind's settings (``CSVSettings``).
    package let settings: CSVSettings

    /// A connector of `config` with its kind's `settings`.
    package init(config: ConnectorConfig, settings: CSVSettings) {
        self.config = config
        self.settings = settings
    }

    package func retains(table: String) -> Bool { settings.rules.erase == .retain }

    /// The configured columns (`columns`, `text`, `redact`) that `header` lacks (names are case-sensitive).
    static func missingColumns(
        _ settings: CSVSettings, header: [String], connector: String, file: String
    ) -> [CoverageGap] {
        let have = Set(header)
        var out: [CoverageGap] = []
        var seen = Set<String>()
        for col in settings.rules.match.map(\.column) + settings.rules.text + settings.rules.redact
        where !have.contains(col) && seen.insert(col).inserted {
            out.append(
                CoverageGap(
                    kind: .missingColumn, connector: connector, file: file, line: 1,
                    message: "the header has no column \"\(col)\"\(CSVConnector.describeHeader(header, missing: col))"))
        }
        return out
    }

    /// Whether a header field looks like a value rather than a column name (an address, a long
    /// number): the first row of a header-less file holds someone's personal data.
    static func looksLikeData(_ field: String) -> Bool {
        let u = field.utf8
        if u.contains(UInt8(ascii: "@")) || field.lowercased().contains("%40") { return true }
        return u.reduce(0) { $0 + ($1 >= 0x30 && $1 <= 0x39 ? 1 : 0) } >= 5
    }

    /// What follows "the header has no column X" in a message: a did-you-mean and the header's
    /// names, or, when the first row looks like data (a header-less file), a hint instead of the
    /// row, which would put personal data into logs, job records and manifests.
    static func describeHeader(_ header: [String], missing: String) -> String {
        if header.contains(where: CSVConnector.looksLikeData) {
            return
                "; its first row looks like data, not column names (a file without a header row needs header: false, columns are then 1, 2, …)"
        }
        let hint = ConfigSuggest.didYouMean(missing, among: header).map { " (did you mean \"\($0)\"?)" } ?? ""
        return "\(hint); it has: \(header.joined(separator: ", "))"
    }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        var collector = FindingsCollector(batch: batch)
        var bytes: Int64 = 0
        var malformed = 0
        let entries = config.inspectSources()
        if entries.isEmpty { collector.noSources(connector: name, paths: config.paths) }
        let options = config.sourceOptions
        for entry in entries {
            try Task.checkCancellation()
            let src = entry.path
            if entry.problem != nil {
                collector.unreadable(entry, connector: name)
                continue
            }
            let delimiter = try settings.delimiter ?? CSVReader.detectDelimiter(path: src, options: options)
            var reader = try CSVReader(path: src, delimiter: delimiter, hasHeader: settings.header, options: options)
            reader.keepsDigest = true  // the size and hash of the file come from the scan's read
            let table = FindingsWriter.tableName(forFile: src)
            var matcher = RowMatcher(rules: settings.rules, table: batch.table, origin: "\(name).\(table)")
            let header = reader.header
            if let header {
                for gap in CSVConnector.missingColumns(settings, header: header, connector: name, file: src) {
                    collector.sourceGaps.append(gap)
                }
            }
            let rawHeader = reader.headerFields.map { CSVWriter.record($0, delimiter: delimiter) }
            var columns: [String] = []
            var records = 0
            var unparsed: [Int] = []
            try reader.forEachRecord(
                { rec in
                    records += 1
                    if columns.isEmpty || columns.count != rec.fields.count {
                        columns = header ?? (1...max(1, rec.fields.count)).map(String.init)
                        matcher.bind(columns: columns)
                    }
                    let values: [[UInt8]?] = rec.fields
                    let hits = matcher.match(values)
                    guard !hits.isEmpty else { return }
                    var fields: [JSONMember] = []
                    for (k, v) in rec.fields.enumerated() {
                        fields.append(
                            JSONMember(key: k < columns.count ? columns[k] : String(k + 1), value: jsonText(v)))
                    }
                    for h in hits {
                        let r = FoundRecord(
                            table: table, source: src, line: rec.line, range: rec.range.start..<rec.range.end,
                            fields: fields,
                            raw: CSVWriter.record(rec.fields, delimiter: delimiter), matchedOn: h.matchedOn,
                            rawHeader: rawHeader, mention: h.mention,
                            textFields: h.textFields { $0 < columns.count ? columns[$0] : String($0 + 1) })
                        collector.add(h.job, r, derived: matcher.derived(values, hit: h, known: collector.known[h.job]))
                    }
                },
                onProblem: { p in
                    malformed += 1
                    unparsed.append(p.line)
                    logger.warning(
                        "malformed CSV record",
                        metadata: [
                            "connector": "\(name)", "file": "\(src)", "line": "\(p.line)", "problem": "\(p.message)",
                        ])
                })
            bytes += reader.bytesRead
            try collector.cover(
                src, connector: name, records: records, unparsedLines: unparsed, rawSearch: true,
                digest: reader.digest, options: options)
        }
        return collector.result(bytesScanned: bytes, extra: malformed > 0 ? ["malformed_rows": String(malformed)] : [:])
    }
}
