import Foundation
import Logging

/// Builds connectors from their configs.
public enum ConnectorFactory {
    /// One live connector per config.
    public static func make(_ configs: [ConnectorConfig]) -> [any Connector] {
        configs.map { c in
            switch c.type {
            case .csv: CSVConnector(config: c)
            case .sqldump: SQLDumpConnector(config: c)
            case .log: LogConnector(config: c)
            case .exec:
                ExecConnector(
                    name: c.name, metadata: c.metadata, command: c.command, environment: c.environment, timeoutSeconds: c.timeoutSeconds)
            }
        }
    }
}

/// Converts bytes to a JSON string, or `{"base64": …}` when they are not valid UTF-8 (exported without loss).
func jsonText(_ bytes: [UInt8]) -> JSONValue {
    if let s = String(validating: bytes, as: UTF8.self) { return .string(s) }
    return .obj(["base64": .string(Data(bytes).base64EncodedString())])
}

extension ConnectorConfig {
    /// Sum of the sizes of the files a scan reads (compressed sizes for gzip).
    func totalSourceBytes() -> Int64 {
        sources().reduce(Int64(0)) { sum, p in sum + (((try? FileSystem.status(p)) ?? nil)?.size ?? 0) }
    }
}

/// Accumulates per-job findings during one pass over a source.
struct FindingsCollector: Sendable {
    var byJob: [Int: ConnectorFindings] = [:]
    let batch: ScanBatch
    var known: [Set<Identifier>]
    /// Every source read, in order.
    var coverage: [SourceCoverage] = []
    /// Gaps per batch job index.
    var gaps: [Int: [CoverageGap]] = [:]
    /// Gaps that concern every job (truncation, missing columns, no sources).
    var sourceGaps: [CoverageGap] = []

    init(batch: ScanBatch) {
        self.batch = batch
        known = batch.jobs.map { Set($0.identifiers) }
    }

    mutating func add(_ job: Int, _ record: FoundRecord, derived: [(Identifier, String)] = []) {
        byJob[job, default: ConnectorFindings()].found.append(record)
        byJob[job]!.records += 1
        for d in derived where known[job].insert(d.0).inserted { byJob[job]!.derived.append(d) }
    }

    /// Appends what another pass over the same batch found (a later file), keeping derived identifiers unique.
    mutating func merge(_ other: FindingsCollector) {
        for job in other.byJob.keys.sorted() {
            let f = other.byJob[job]!
            byJob[job, default: ConnectorFindings()].found += f.found
            byJob[job]!.records += f.records
            for d in f.derived where known[job].insert(d.0).inserted { byJob[job]!.derived.append(d) }
        }
        coverage += other.coverage
        sourceGaps += other.sourceGaps
        for (j, g) in other.gaps { gaps[j, default: []] += g }
    }

    /// Records what the scan of `src` established: size and hash as stored, records parsed and
    /// unparsed, truncation; with `rawSearch`, searches the raw bytes (``RawVerifier``) for hits
    /// outside the records matched so far for each job.
    mutating func cover(
        _ src: String, connector: String, records: Int, unparsedLines: [Int] = [], unparsedCount: Int? = nil,
        truncated: String? = nil, truncatedLine: Int? = nil, truncationAllowed: Bool = false, rawSearch: Bool,
        options: SourceFile.Options = SourceFile.Options()
    ) throws {
        // The second read is not scan progress (the bar counts each source once).
        let (size, sha, endsWithNewline) = try ProgressCounter.$current.withValue(nil) { try RawVerifier.hash(src, options: options) }
        var c = SourceCoverage(file: src, bytes: size, sha256: sha, records: records, truncated: truncated, rawSearched: rawSearch)
        for l in unparsedLines { c.addUnparsed(line: l) }
        if let unparsedCount { c.unparsed = unparsedCount }
        // A cut source that ends mid-line ends with a partial record, whether the cut is accepted or not.
        let cutTail = truncated != nil && !endsWithNewline && size > 0
        if cutTail { c.unparsed += 1 }
        coverage.append(c)
        if let truncated, !truncationAllowed {
            sourceGaps.append(
                CoverageGap(
                    kind: .truncated, connector: connector, file: src, line: truncatedLine,
                    message: truncated + " (if that is expected, set allow_truncated: true on the connector)"))
        }
        guard rawSearch else { return }
        var accounted: [Int: [Range<Int64>]] = [:]
        for (j, f) in byJob {
            for r in f.found where r.source == src {
                if let range = r.range { accounted[j, default: []].append(range) }
            }
        }
        let found = try ProgressCounter.$current.withValue(nil) {
            try RawVerifier.search(
                path: src, connector: connector, batch: batch, accounted: accounted, unparsedLines: Set(unparsedLines), cutTail: cutTail,
                options: options)
        }
        for (j, g) in found { gaps[j, default: []] += g }
    }

    /// A gap for every job: a path the globs match is not a regular file (or is over
    /// `max_file_bytes`), so it was not searched.
    mutating func unreadable(_ entry: SourceFile.Entry, connector: String) {
        sourceGaps.append(
            CoverageGap(kind: .unreadable, connector: connector, file: entry.path, message: "not read: \(entry.problem ?? "not a regular file")"))
    }

    /// A gap for every job: the connector's paths match no file.
    mutating func noSources(connector: String, paths: [String]) {
        sourceGaps.append(
            CoverageGap(
                kind: .noSources, connector: connector, file: nil,
                message: "no file matches its paths (\(paths.joined(separator: ", "))): nothing was searched"))
    }

    func result(bytesScanned: Int64, extra: [String: String] = [:]) -> [String: ConnectorFindings] {
        var out: [String: ConnectorFindings] = [:]
        for (k, job) in batch.jobs.enumerated() {
            var f = byJob[k] ?? ConnectorFindings()
            f.coverage = coverage
            f.gaps = sourceGaps + (gaps[k] ?? [])
            f.details["bytes_scanned"] = String(bytesScanned)
            for (key, v) in extra { f.details[key] = v }
            out[job.jobID] = f
        }
        return out
    }
}

/// CSV exports (RFC 4180, streaming).
public struct CSVConnector: Connector {
    public let config: ConnectorConfig
    public var name: String { config.name }
    public func sourceBytes() -> Int64? { config.totalSourceBytes() }
    public var metadata: SourceMetadata { config.metadata }
    public var timeoutSeconds: Double? { config.timeoutSeconds }
    public var retries: Int? { config.retries }

    public init(config: ConnectorConfig) { self.config = config }

    public func retains(table: String) -> Bool { config.rules.erase == .retain }

    /// The configured columns (`columns`, `text`, `redact`) that `header` lacks (names are case-sensitive).
    static func missingColumns(_ config: ConnectorConfig, header: [String], connector: String, file: String) -> [CoverageGap] {
        let have = Set(header)
        var out: [CoverageGap] = []
        var seen = Set<String>()
        for col in config.rules.match.map(\.column) + config.rules.text + config.rules.redact where !have.contains(col) && seen.insert(col).inserted {
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
            return "; its first row looks like data, not column names (a file without a header row needs header: false, columns are then 1, 2, …)"
        }
        let hint = ConfigSuggest.didYouMean(missing, among: header).map { " (did you mean \"\($0)\"?)" } ?? ""
        return "\(hint); it has: \(header.joined(separator: ", "))"
    }

    public func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
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
            let delimiter = try config.delimiter ?? CSVReader.detectDelimiter(path: src, options: options)
            var reader = try CSVReader(path: src, delimiter: delimiter, hasHeader: config.header, options: options)
            let table = FindingsWriter.tableName(forFile: src)
            var matcher = RowMatcher(rules: config.rules, table: batch.table, origin: "\(name).\(table)")
            let header = reader.header
            if let header {
                for gap in CSVConnector.missingColumns(config, header: header, connector: name, file: src) {
                    collector.sourceGaps.append(gap)
                }
            }
            let rawHeader = reader.headerFields.map { CSVWriter.record($0, delimiter: delimiter) }
            var columns: [String] = []
            var records = 0
            var unparsed: [Int] = []
            try reader.forEachRecord({ rec in
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
                    fields.append(JSONMember(key: k < columns.count ? columns[k] : String(k + 1), value: jsonText(v)))
                }
                for h in hits {
                    let r = FoundRecord(
                        table: table, source: src, line: rec.line, range: rec.range.start..<rec.range.end, fields: fields,
                        raw: CSVWriter.record(rec.fields, delimiter: delimiter), matchedOn: h.matchedOn, rawHeader: rawHeader)
                    collector.add(h.job, r, derived: matcher.derived(values, hit: h, known: collector.known[h.job]))
                }
            }, onProblem: { p in
                malformed += 1
                unparsed.append(p.line)
                logger.warning("malformed CSV record", metadata: ["connector": "\(name)", "file": "\(src)", "line": "\(p.line)", "problem": "\(p.message)"])
            })
            bytes += reader.bytesRead
            try collector.cover(src, connector: name, records: records, unparsedLines: unparsed, rawSearch: true, options: options)
        }
        return collector.result(bytesScanned: bytes, extra: malformed > 0 ? ["malformed_rows": String(malformed)] : [:])
    }
}

/// SQL dumps (pg_dump plain, mysqldump, sqlite3 .dump), streaming.
public struct SQLDumpConnector: Connector {
    public let config: ConnectorConfig
    public var name: String { config.name }
    public func sourceBytes() -> Int64? { config.totalSourceBytes() }
    public var metadata: SourceMetadata { config.metadata }
    public var timeoutSeconds: Double? { config.timeoutSeconds }
    public var retries: Int? { config.retries }

    public init(config: ConnectorConfig) { self.config = config }

    public func retains(table: String) -> Bool { config.tables[table]?.erase == .retain }

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

    public func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
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
            var reader = try SQLDumpReader(path: src, dialect: config.dialect, options: options)
            var records = 0
            // Matchers mutated in place (a copy per row would cost more than the match); rows come
            // in long runs of one table, so the last lookup is remembered.
            var matchers: [RowMatcher] = []
            var matcherIndex: [String: Int] = [:]
            for (t, rules) in config.tables {
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
                        fields.append(JSONMember(key: k < row.columns.count ? row.columns[k] : "column\(k + 1)", value: SQLDumpConnector.json(v)))
                    }
                    for h in hits {
                        let r = FoundRecord(
                            table: row.table, source: src, line: row.line, range: row.rowRange.start..<row.rowRange.end, fields: fields,
                            matchedOn: h.matchedOn)
                        collector.add(h.job, r, derived: matchers[m].derived(values, hit: h, known: collector.known[h.job]))
                    }
                }
            }
            bytes += reader.bytesRead
            collector.sourceGaps += SQLDumpConnector.missingTables(config, reader.tables, connector: name, file: src)
            try collector.cover(
                src, connector: name, records: records, truncated: reader.truncation?.message, truncatedLine: reader.truncation?.line,
                truncationAllowed: config.allowTruncated, rawSearch: true, options: options)
        }
        return collector.result(bytesScanned: bytes)
    }

    /// Configured tables the dump lacks, and configured columns a table lacks.
    static func missingTables(_ config: ConnectorConfig, _ tables: [(name: String, columns: [String])], connector: String, file: String) -> [CoverageGap] {
        var columns: [String: Set<String>] = [:]
        for t in tables { columns[t.name, default: []].formUnion(t.columns) }
        var out: [CoverageGap] = []
        for t in config.tableOrder {
            guard let have = columns[t] else {
                let hint = ConfigSuggest.didYouMean(t, among: Array(columns.keys)).map { " (did you mean \"\($0)\"?)" } ?? ""
                out.append(
                    CoverageGap(
                        kind: .missingColumn, connector: connector, file: file,
                        message: "the dump has no table \"\(t)\"\(hint); it has: \(columns.keys.sorted().joined(separator: ", "))"))
                continue
            }
            guard !have.isEmpty, let r = config.tables[t] else { continue }
            for col in Set(r.match.map(\.column) + r.text + r.redact).sorted() where !have.contains(col) {
                let hint = ConfigSuggest.didYouMean(col, among: Array(have)).map { " (did you mean \"\($0)\"?)" } ?? ""
                out.append(
                    CoverageGap(
                        kind: .missingColumn, connector: connector, file: file,
                        message: "table \"\(t)\" has no column \"\(col)\"\(hint); it has: \(have.sorted().joined(separator: ", "))"))
            }
        }
        return out
    }
}

/// Log files: plain text or JSON lines, plain or gzip (rotations), matched on token boundaries.
public struct LogConnector: Connector {
    public let config: ConnectorConfig
    public var name: String { config.name }
    public func sourceBytes() -> Int64? { config.totalSourceBytes() }
    public var metadata: SourceMetadata { config.metadata }
    public var timeoutSeconds: Double? { config.timeoutSeconds }
    public var retries: Int? { config.retries }

    public init(config: ConnectorConfig) { self.config = config }

    public func retains(table: String) -> Bool { config.rules.erase == .retain }

    /// Types searched as text: the configured `match:` list, else every type of the batch.
    var textTypes: Set<String>? { config.textTypes.map(Set.init) }

    /// The regular expressions of a text log, compiled once per file: `patterns:` (the whole match is
    /// the identifier) and context patterns of `match:` (capture group 1 is the identifier).
    struct LinePatterns {
        var items: [(type: String, rx: NSRegularExpression, group: Int, literal: [UInt8])] = []

        init(_ config: ConnectorConfig) {
            for p in config.patterns {
                if let rx = try? NSRegularExpression(pattern: p.regex) { items.append((p.type, rx, 0, LinePatterns.literalPrefix(p.regex))) }
            }
            for p in config.contextPatterns {
                if let rx = try? NSRegularExpression(pattern: p.regex), rx.numberOfCaptureGroups >= 1 {
                    items.append((p.type, rx, 1, LinePatterns.literalPrefix(p.regex)))
                }
            }
        }

        /// Whether two adjacent bytes are both digits or both ASCII letters.
        @inline(__always)
        static func sameRun(_ a: UInt8, _ b: UInt8) -> Bool {
            func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
            func letter(_ c: UInt8) -> Bool { c | 0x20 >= 0x61 && c | 0x20 <= 0x7A }
            return (digit(a) && digit(b)) || (letter(a) && letter(b))
        }

        /// Whether `needle` occurs in `line` (memchr for its first byte, then memcmp).
        static func contains(_ line: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
            let n = line.count
            let m = needle.count
            guard m > 0, n >= m, let base = line.baseAddress else { return m == 0 }
            return needle.withUnsafeBytes { nd in
                var i = 0
                while i <= n - m, let hit = memchr(base + i, Int32(nd[0]), n - m + 1 - i) {
                    let k = base.distance(to: UnsafeRawPointer(hit))
                    if memcmp(base + k, nd.baseAddress!, m) == 0 { return true }
                    i = k + 1
                }
                return false
            }
        }

        /// Bytes every match must contain (the pattern's leading plain characters, e.g. `/users/`),
        /// so most lines are ruled out by a byte search instead of the regex engine; empty when unsure
        /// (an alternation, a flag, a leading metacharacter).
        static func literalPrefix(_ regex: String) -> [UInt8] {
            let b = Array(regex.utf8)
            guard !b.contains(UInt8(ascii: "|")) else { return [] }
            var out: [UInt8] = []
            for c in b {
                let plain = (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A) || Array("/_=:&-@#%,;<>'\" ~".utf8).contains(c)
                if !plain {
                    // An optional or repeated last character is not required.
                    if c == UInt8(ascii: "?") || c == UInt8(ascii: "*") || c == UInt8(ascii: "{") { out.removeLast(min(1, out.count)) }
                    break
                }
                out.append(c)
            }
            return out.count >= 2 ? out : []
        }

        /// Appends the identifiers the expressions find in `line`, with the byte range of exactly the
        /// part compared (the whole match or the capture), which is what redaction replaces.
        func scan(_ line: UnsafeRawBufferPointer, table: IdentifierTable, scratch: inout [UInt8], into out: inout [TextMatch]) {
            guard !items.isEmpty, line.count > 0 else { return }
            var text: (s: String, utf8: Bool)?
            for (type, rx, group, literal) in items {
                guard let code = table.code(of: type) else { continue }
                if !literal.isEmpty {
                    if !LinePatterns.contains(line, literal) { continue }
                }
                // Valid UTF-8 is searched as Unicode text; anything else byte for byte (Latin-1), so
                // offsets always map back to bytes.
                if text == nil {
                    let bytes = Array(line)
                    if let u = String(validating: bytes, as: UTF8.self) {
                        text = (u, true)
                    } else {
                        text = (String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })), false)
                    }
                }
                let (s, utf8) = text!
                let whole = NSRange(s.startIndex..., in: s)
                for m in rx.matches(in: s, range: whole) {
                    let nr = m.range(at: group)
                    guard nr.location != NSNotFound, let r = Range(nr, in: s) else { continue }
                    let lo: Int
                    let hi: Int
                    if utf8 {
                        lo = s.utf8.distance(from: s.startIndex, to: r.lowerBound)
                        hi = lo + s.utf8.distance(from: r.lowerBound, to: r.upperBound)
                    } else {
                        lo = s.unicodeScalars.distance(from: s.startIndex, to: r.lowerBound)
                        hi = lo + s.unicodeScalars.distance(from: r.lowerBound, to: r.upperBound)
                    }
                    guard lo < hi, hi <= line.count else { continue }
                    // Never a piece of a longer number or word: `LC-[0-9]{6}` is not in `LC-1234567`.
                    if lo > 0 && LinePatterns.sameRun(line[lo - 1], line[lo]) { continue }
                    if hi < line.count && LinePatterns.sameRun(line[hi - 1], line[hi]) { continue }
                    let entries = table.matchField(type: type, UnsafeRawBufferPointer(rebasing: line[lo..<hi]), scratch: &scratch)
                    for e in entries where table.entryType(e) == code && !out.contains(where: { $0.entry == e && $0.range == lo..<hi }) {
                        out.append(TextMatch(entry: e, range: lo..<hi))
                    }
                }
            }
        }
    }

    public func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        try await scan(batch, logger: logger, onlySource: nil)
    }

    /// Searches every source (or only `onlySource`) once for the whole batch.
    /// Several files (a log and its rotations) are read in parallel, two at a time; their findings
    /// are merged in file order, so the result is the same as reading them one after the other.
    /// A path that is not a regular file is not read: it is a gap (``CoverageGap/Kind/unreadable``) for every job.
    func scan(_ batch: ScanBatch, logger: Logger, onlySource: String?) async throws -> [String: ConnectorFindings] {
        let entries = onlySource.map { [SourceFile.inspect($0, options: config.sourceOptions)] } ?? config.inspectSources()
        let sources = entries.filter { $0.problem == nil }.map(\.path)
        var parts = [(collector: FindingsCollector, bytes: Int64)?](repeating: nil, count: sources.count)
        if sources.count <= 1 {
            for (k, src) in sources.enumerated() { parts[k] = try scanSource(src, batch) }
        } else {
            let connector = self
            try await withThrowingTaskGroup(of: (Int, FindingsCollector, Int64).self) { group in
                var next = 0
                func launch() {
                    let k = next
                    let src = sources[k]
                    next += 1
                    group.addTask {
                        let (c, b) = try connector.scanSource(src, batch)
                        return (k, c, b)
                    }
                }
                while next < sources.count && next < 2 { launch() }
                while let (k, c, b) = try await group.next() {
                    parts[k] = (c, b)
                    if next < sources.count { launch() }
                }
            }
        }
        var collector = FindingsCollector(batch: batch)
        if entries.isEmpty { collector.noSources(connector: name, paths: config.paths) }
        for e in entries where e.problem != nil { collector.unreadable(e, connector: name) }
        var bytes: Int64 = 0
        for part in parts {
            guard let part else { continue }
            collector.merge(part.collector)
            bytes += part.bytes
        }
        return collector.result(bytesScanned: bytes)
    }

    /// Reads one file (or only the bytes `range` of a plain file) for the whole batch.
    /// `options` overrides the connector's source options (the erasure reads the old inode through
    /// its `/proc/self/fd/N` link, which must be followed).
    func scanSource(_ src: String, _ batch: ScanBatch, range: Range<Int64>? = nil, options: SourceFile.Options? = nil) throws -> (FindingsCollector, Int64) {
        var collector = FindingsCollector(batch: batch)
        var textTypesForPlain: Set<String>? = config.logFormat == .jsonl ? (textTypes ?? Set(config.rules.match.map(\.type))) : textTypes
        // A type scoped to a context is never matched bare.
        if !config.contextPatterns.isEmpty {
            textTypesForPlain = (textTypesForPlain ?? Set(batch.table.types)).subtracting(config.contextPatterns.map(\.type))
        }
        let text = TextMatcher(table: batch.table, types: textTypesForPlain)
        let linePatterns = LinePatterns(config)
        var hits: [TextMatch] = []
        var scratch: [UInt8] = []
        // JSON lines: a validating pass without building the object rules out most lines cheaply.
        let extractor = config.logFormat == .jsonl ? JSONFieldExtractor(paths: config.rules.match.map(\.column)) : nil
        var extractScratch = JSONFieldExtractor.Scratch()
        do {
            try Task.checkCancellation()
            var reader = try LineReader(path: src, options: options ?? config.sourceOptions)
            reader.range = range
            let table = FindingsWriter.tableName(forFile: src)
            var records = 0
            var unparsed: [Int] = []
            try reader.forEachLine { line, number, offset, terminator in
                records += 1
                var jobs: [Int: [String]] = [:]
                var fields: [JSONMember]?
                if let extractor, line.first == UInt8(ascii: "{"), extractor.extract(line, &extractScratch) {
                    var any = false
                    for (k, rule) in config.rules.match.enumerated() {
                        guard case .bytes(let r) = extractScratch.values[k] else { continue }
                        let v = UnsafeRawBufferPointer(rebasing: line[r])
                        if !batch.table.matchField(type: rule.type, v, scratch: &scratch).isEmpty {
                            any = true
                            break
                        }
                    }
                    // Valid JSON and no field matches: exactly what the full parse below would conclude.
                    if !any { return }
                }
                var parsed: JSONValue?
                if config.logFormat == .jsonl, line.first == UInt8(ascii: "{") {
                    parsed = try? JSONParser.parse(Array(line))
                    if parsed == nil { unparsed.append(number) }
                }
                if let obj = parsed, case .object(let members) = obj {
                    for rule in config.rules.match {
                        guard let v = LogConnector.lookup(obj, path: rule.column) else { continue }
                        let entries = v.withUnsafeBytes { batch.table.matchField(type: rule.type, $0, scratch: &scratch) }
                        for e in entries {
                            for j in batch.table.hit(e).jobs { jobs[j, default: []].append("\(rule.type) (\(rule.column))") }
                        }
                    }
                    if jobs.isEmpty { return }
                    fields = members
                } else {
                    hits.removeAll(keepingCapacity: true)
                    text.scan(line, into: &hits)
                    linePatterns.scan(line, table: batch.table, scratch: &scratch, into: &hits)
                    for m in hits {
                        let h = batch.table.hit(m.entry)
                        for j in h.jobs where !(jobs[j] ?? []).contains(h.identifier.type) { jobs[j, default: []].append(h.identifier.type) }
                    }
                    if jobs.isEmpty { return }
                }
                let bytesOfLine = Array(line)
                let recordFields = fields ?? [JSONMember(key: "line", value: jsonText(bytesOfLine))]
                for (j, how) in jobs {
                    collector.add(
                        j,
                        FoundRecord(
                            table: table, source: src, line: number, range: offset..<(offset + Int64(line.count + terminator)),
                            fields: recordFields, matchedOn: how))
                }
            }
            // A text log's scan already is a raw token search of every line; JSON lines are also
            // searched raw, for identifiers in fields the rules do not name. (Not for a part of a
            // file: the tail an erasure processes is no coverage claim.)
            if range == nil {
                try collector.cover(
                    src, connector: name, records: records, unparsedLines: unparsed, rawSearch: config.logFormat == .jsonl,
                    options: config.sourceOptions)
            }
            return (collector, reader.bytesRead)
        }
    }

    /// A JSON field by dotted path ("user.email"), as bytes (strings and numbers only).
    static func lookup(_ v: JSONValue, path: String) -> [UInt8]? {
        var cur = v
        for part in path.split(separator: ".") {
            guard let next = cur[String(part)] else { return nil }
            cur = next
        }
        switch cur {
        case .string(let s): return Array(s.utf8)
        case .number(let n): return Array(n.utf8)
        default: return nil
        }
    }
}
