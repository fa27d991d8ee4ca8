import Foundation

/// `type: sqldump`: SQL dumps (pg_dump plain, mysqldump, sqlite3 .dump), matched per table.
package enum SQLDumpKind: ConnectorKind {
    package static let type = "sqldump"
    package static let keys = ["dialect", "tables", "allow_truncated"]

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> SQLDumpSettings {
        var c = SQLDumpSettings()
        if let a = y.bool("allow_truncated") { c.allowTruncated = a }
        if let d = y.string("dialect") {
            if let v = SQLDialect(rawValue: d) {
                c.dialect = v
            } else {
                y.problem("dialect", "expected one of: \(SQLDialect.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        (c.tables, c.tableOrder) = ConnectorCatalog.tables(y)
        return c
    }

    package static func check(
        _ settings: SQLDumpSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        if checks.sources && y.problems.isEmpty { checkTables(settings, config, y) }
    }

    /// Checks that every configured table occurs in the dumps (reads their CREATE TABLE / COPY / INSERT),
    /// and that every dump can be read to its end and is complete (unless `allow_truncated`).
    static func checkTables(_ s: SQLDumpSettings, _ c: ConnectorConfig, _ y: YAMLMap) {
        var seen = Set<String>()
        var columns: [String: Set<String>] = [:]
        for src in c.sources() {
            guard var reader = try? SQLDumpReader(path: src, dialect: s.dialect, options: c.sourceOptions) else {
                continue
            }
            do {
                try reader.forEachRow { _ in }
                if let t = reader.truncation, !s.allowTruncated {
                    y.problem(
                        "paths",
                        "\(src):\(t.line): \(t.message) (set `allow_truncated: true` on this connector to accept it)")
                }
            } catch let e as DSARError {
                y.problem("paths", e.message.hasPrefix(src) ? e.message : "\(src): \(e.message)")
            } catch {
                y.problem("paths", "cannot read \(src) to its end: \(error)")
            }
            for t in reader.tables {
                seen.insert(t.name)
                columns[t.name, default: []].formUnion(t.columns)
            }
        }
        guard !c.sources().isEmpty, let tables = y.map("tables") else { return }
        for t in s.tableOrder {
            if !seen.contains(t) {
                tables.problem(
                    t, "the dump does not contain table \"\(t)\" (it has: \(seen.sorted().joined(separator: ", ")))")
                continue
            }
            let cols = columns[t] ?? []
            guard !cols.isEmpty, let r = s.tables[t] else { continue }
            for name in r.match.map(\.column) + r.text + r.redact where !cols.contains(name) {
                tables.problem(
                    t, "table \"\(t)\" has no column \"\(name)\" (it has: \(cols.sorted().joined(separator: ", ")))")
            }
        }
    }
}

/// The settings of a `type: sqldump` connector.
package struct SQLDumpSettings: ConnectorSettings {
    package static var kind: any ConnectorKind.Type { SQLDumpKind.self }
    /// `dialect:` (nil: detected per dump).
    package var dialect: SQLDialect?
    /// The rules per table (`tables:`).
    package var tables: [String: RecordRules] = [:]
    /// The tables in the order of the YAML file.
    package var tableOrder: [String] = []
    /// `allow_truncated: true`: a dump that is cut off (``SQLDumpReader/truncation``) is read as it is
    /// instead of making the job PARTIAL, and `connectors check` does not report it.
    package var allowTruncated: Bool = false

    /// Defaults: dialect detected, no tables.
    package init() {}

    package func connector(_ config: ConnectorConfig) -> any Connector {
        SQLDumpConnector(config: config, settings: self)
    }
}
