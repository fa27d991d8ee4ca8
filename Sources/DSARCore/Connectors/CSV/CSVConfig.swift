import Foundation

/// `type: csv`: CSV exports (RFC 4180), one record per row.
package enum CSVKind: ConnectorKind {
    package static let type = "csv"
    package static let keys = ["delimiter", "header", "columns"] + ConnectorCatalog.ruleKeys

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> CSVSettings {
        var c = CSVSettings()
        if let d = y.string("delimiter") {
            switch d {
            case ",": c.delimiter = UInt8(ascii: ",")
            case ";": c.delimiter = UInt8(ascii: ";")
            case "\t", "tab", "\\t": c.delimiter = 0x09
            case "|": c.delimiter = UInt8(ascii: "|")
            default: y.problem("delimiter", "expected one of , ; tab |")
            }
        }
        if let h = y.bool("header") { c.header = h }
        c.matchKey = y.has("columns") ? "columns" : "match"
        c.rules = ConnectorCatalog.rules(y, matchKey: c.matchKey, allowRetainOnly: false)
        if c.rules.match.isEmpty && c.rules.text.isEmpty {
            y.problemHere("a csv connector needs `columns:` (column: identifier type) or `text:` columns to search")
        }
        return c
    }

    package static func check(
        _ settings: CSVSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        if checks.headers && settings.header && y.problems.isEmpty {
            checkHeaders(settings, config, y, reportUnreadable: checks.sources)
        }
    }

    /// Checks that every source's header has the configured columns (`columns`, `text`, `redact`;
    /// case-sensitive, with a did-you-mean).
    /// A source that cannot be read is a problem only with `reportUnreadable` (`connectors check`); at
    /// run time the scan reports it for the jobs (the connector fails, the jobs are PARTIAL).
    static func checkHeaders(_ s: CSVSettings, _ c: ConnectorConfig, _ y: YAMLMap, reportUnreadable: Bool) {
        let matchKey = s.matchKey
        for src in c.sources() {
            let header: [String]?
            do {
                // A FIFO or device is never opened (``SourceFile``); with `reportUnreadable` it is reported above.
                if SourceFile.inspect(src, options: c.sourceOptions).problem != nil { continue }
                let delimiter = try s.delimiter ?? CSVReader.detectDelimiter(path: src, options: c.sourceOptions)
                header = try CSVReader(path: src, delimiter: delimiter, hasHeader: true, options: c.sourceOptions)
                    .header
            } catch {
                if reportUnreadable { y.problem("paths", "cannot read the header of \(src): \(error)") }
                continue
            }
            guard let header else { continue }  // an empty file
            let have = Set(header)
            let keys: [(String, [String])] = [
                (matchKey, s.rules.match.map(\.column)), ("text", s.rules.text), ("redact", s.rules.redact),
            ]
            for (key, names) in keys {
                for name in names where !have.contains(name) {
                    let rest = CSVConnector.describeHeader(header, missing: name)
                    y.problem(
                        key,
                        "the header of \(src) has no column \"\(name)\"\(rest)\(rest.hasPrefix("; its first row") ? "" : " (names are case-sensitive)")"
                    )
                }
            }
        }
    }

}

/// The settings of a `type: csv` connector.
package struct CSVSettings: ConnectorSettings {
    package static var kind: any ConnectorKind.Type { CSVKind.self }
    /// `delimiter:` (nil: detected per file).
    package var delimiter: UInt8?
    /// `header:` whether the first record names the columns.
    package var header: Bool = true
    /// The rules for every record of the file.
    package var rules = RecordRules()
    /// The key the columns were given under (`columns` or `match`), for messages.
    package var matchKey = "columns"

    /// Defaults: delimiter detected, a header row, no rules.
    package init() {}

    package func connector(_ config: ConnectorConfig) -> any Connector { CSVConnector(config: config, settings: self) }
}
