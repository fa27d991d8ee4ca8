import Foundation
import Logging

/// SQL dumps (pg_dump plain, mysqldump, sqlite3 .dump), streaming.
package struct SQLDumpConnector: SettingsConnector {
    package let config: ConnectorConfig
    /// The kind's settings (``SQLDumpSettings``).
    package let settings: SQLDumpSettings

    /// A connector of `config` with its kind's `settings`.
    package init(config: ConnectorConfig, settings: SQLDumpSettings) {
        self.config = config
        self.settings = settings
    }

    package func retains(table: String) -> Bool { settings.tables[table]?.erase == .retain }

    static func bytes(_ v: SQLValue) -> [UInt8]? {
        switch v {
        case .null, .blob: nil
        case .number(let s), .raw(let s): Array(s.utf8)
        case .string(let b): b
        case .bool(let b): Array((b ? "true" : "false").utf8)
        }
    }

    static func json(_ v: SQLValue) -> JSONValue {
        switch v {
        case .null: .null
        case .number(let s): .number(s)
        case .string(let b): jsonText(b)
        case .blob(let b): .obj(["base64": .string(Data(b).base64EncodedString())])
        case .bool(let b): .bool(b)
        case .raw(let s): .string(s)
        }
    }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        var collector = FindingsCollector(batch: batch)
        var bytes: Int64 = 0
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
            var reader = try SQLDumpReader(path: src, dialect: settings.dialect, options: options)
            reader.keepsDigest = true  // the size and hash of the file come from the scan's read
            var records = 0
            // Matchers mutated in place (a copy per row would cost more than the match); rows come
            // in long runs of one table, so the last lookup is remembered.
            var matchers: [RowMatcher] = []
            var matcherIndex: [String: Int] = [:]
            for (t, rules) in settings.tables {
                matcherIndex[t] = matchers.count
                matchers.append(RowMatcher(rules: rules, table: batch.table, origin: "\(name).\(t)"))
            }
            var lastTable = ""
            var lastIndex: Int?
            try reader.forEachRow { row in
                records += 1
                if row.table != lastTable {
                    lastTable = row.table
                    lastIndex = matcherIndex[row.table]
                }
                guard let m = lastIndex else { return }
                matchers[m].bind(columns: row.columns)
                let values = row.values.map(SQLDumpConnector.bytes)
                let hits = matchers[m].match(values)
                if !hits.isEmpty {
                    var fields: [JSONMember] = []
                    for (k, v) in row.values.enumerated() {
                        fields.append(
                            JSONMember(
                                key: k < row.columns.count ? row.columns[k] : "column\(k + 1)",
                                value: SQLDumpConnector.json(v)))
                    }
                    for h in hits {
                        let r = FoundRecord(
                            table: row.table, source: src, line: row.line, range: row.rowRange.start..<row.rowRange.end,
                            fields: fields,
                            matchedOn: h.matchedOn, mention: h.mention,
                            textFields: h.textFields { $0 < row.columns.count ? row.columns[$0] : "column\($0 + 1)" })
                        collector.add(
                            h.job, r, derived: matchers[m].derived(values, hit: h, known: collector.known[h.job]))
                    }
                }
            }
            bytes += reader.bytesRead
            collector.sourceGaps += SQLDumpConnector.missingTables(settings, reader.tables, connector: name, file: src)
            try collector.cover(
                src, connector: name, records: records, truncated: reader.truncation?.message,
                truncatedLine: reader.truncation?.line,
                truncationAllowed: settings.allowTruncated, rawSearch: true, digest: reader.digest, options: options)
        }
        return collector.result(bytesScanned: bytes)
    }

    /// Configured tables the dump lacks, and configured columns a table lacks.
    static func missingTables(
        _ settings: SQLDumpSettings, _ tables: [(name: String, columns: [String])], connector: String, file: String
    ) -> [CoverageGap] {
        var columns: [String: Set<String>] = [:]
        for t in tables { columns[t.name, default: []].formUnion(t.columns) }
        var out: [CoverageGap] = []
        for t in settings.tableOrder {
            guard let have = columns[t] else {
                let hint =
                    ConfigSuggest.didYouMean(t, among: Array(columns.keys)).map { " (did you mean \"\($0)\"?)" } ?? ""
                out.append(
                    CoverageGap(
                        kind: .missingColumn, connector: connector, file: file,
                        message:
                            "the dump has no table \"\(t)\"\(hint); it has: \(columns.keys.sorted().joined(separator: ", "))"
                    ))
                continue
            }
            guard !have.isEmpty, let r = settings.tables[t] else { continue }
            for col in Set(r.match.map(\.column) + r.text + r.redact).sorted() where !have.contains(col) {
                let hint = ConfigSuggest.didYouMean(col, among: Array(have)).map { " (did you mean \"\($0)\"?)" } ?? ""
                out.append(
                    CoverageGap(
                        kind: .missingColumn, connector: connector, file: file,
                        message:
                            "table \"\(t)\" has no column \"\(col)\"\(hint); it has: \(have.sorted().joined(separator: ", "))"
                    ))
            }
        }
        return out
    }
}
