import Foundation
import Logging

/// Log files: plain text or JSON lines, plain or gzip (rotations), matched on token boundaries.
package struct LogConnector: SettingsConnector {
    package let config: ConnectorConfig
    /// The kind's settings (``LogSettings``).
    package let settings: LogSettings

    /// A connector of `config` with its kind's `settings`.
    package init(config: ConnectorConfig, settings: LogSettings) {
        self.config = config
        self.settings = settings
    }

    package func retains(table: String) -> Bool { settings.rules.erase == .retain }

    /// Types searched as text: the configured `match:` list, else every type of the batch.
    var textTypes: Set<String>? { settings.textTypes.map(Set.init) }

    /// The regular expressions of a text log, compiled once per file: `patterns:` (the whole match is
    /// the identifier) and context patterns of `match:` (capture group 1 is the identifier).
    struct LinePatterns {
        var items: [(type: String, rx: NSRegularExpression, group: Int, literal: [UInt8])] = []

        init(_ settings: LogSettings) {
            for p in settings.patterns {
                if let rx = try? NSRegularExpression(pattern: p.regex) {
                    items.append((p.type, rx, 0, LinePatterns.literalPrefix(p.regex)))
                }
            }
            for p in settings.contextPatterns {
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
                let plain =
                    (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7A)
                    || Array("/_=:&-@#%,;<>'\" ~".utf8).contains(c)
                if !plain {
                    // An optional or repeated last character is not required.
                    if c == UInt8(ascii: "?") || c == UInt8(ascii: "*") || c == UInt8(ascii: "{") {
                        out.removeLast(min(1, out.count))
                    }
                    break
                }
                out.append(c)
            }
            return out.count >= 2 ? out : []
        }

        /// Appends the identifiers the expressions find in `line`, with the byte range of exactly the
        /// part compared (the whole match or the capture), which is what redaction replaces.
        func scan(
            _ line: UnsafeRawBufferPointer, table: IdentifierTable, scratch: inout [UInt8], into out: inout [TextMatch]
        ) {
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
                    let entries = table.matchField(
                        type: type, UnsafeRawBufferPointer(rebasing: line[lo..<hi]), scratch: &scratch)
                    for e in entries
                    where table.entryType(e) == code && !out.contains(where: { $0.entry == e && $0.range == lo..<hi }) {
                        out.append(TextMatch(entry: e, range: lo..<hi))
                    }
                }
            }
        }
    }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        try await scan(batch, logger: logger, onlySource: nil)
    }

    /// Searches every source (or only `onlySource`) once for the whole batch.
    /// Several files (a log and its rotations) are read in parallel, two at a time; their findings
    /// are merged in file order, so the result is the same as reading them one after the other.
    /// A path that is not a regular file is not read: it is a gap (``CoverageGap/Kind/unreadable``) for every job.
    func scan(_ batch: ScanBatch, logger: Logger, onlySource: String?) async throws -> [String: ConnectorFindings] {
        let entries =
            onlySource.map { [SourceFile.inspect($0, options: config.sourceOptions)] } ?? config.inspectSources()
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
    func scanSource(
        _ src: String, _ batch: ScanBatch, range: Range<Int64>? = nil, options: SourceFile.Options? = nil
    ) throws -> (FindingsCollector, Int64) {
        var collector = FindingsCollector(batch: batch)
        var textTypesForPlain: Set<String>? =
            settings.logFormat == .jsonl ? (textTypes ?? Set(settings.rules.match.map(\.type))) : textTypes
        // A type scoped to a context is never matched bare.
        if !settings.contextPatterns.isEmpty {
            textTypesForPlain = (textTypesForPlain ?? Set(batch.table.types)).subtracting(
                settings.contextPatterns.map(\.type))
        }
        let text = TextMatcher(table: batch.table, types: textTypesForPlain)
        let linePatterns = LinePatterns(settings)
        var hits: [TextMatch] = []
        var scratch: [UInt8] = []
        // JSON lines: a validating pass without building the object rules out most lines cheaply.
        let extractor =
            settings.logFormat == .jsonl ? JSONFieldExtractor(paths: settings.rules.match.map(\.column)) : nil
        var extractScratch = JSONFieldExtractor.Scratch()
        do {
            try Task.checkCancellation()
            var reader = try LineReader(path: src, options: options ?? config.sourceOptions)
            reader.range = range
            // The whole file's size and hash come from this read (``FindingsCollector/cover``).
            reader.keepsDigest = range == nil
            let table = FindingsWriter.tableName(forFile: src)
            var records = 0
            var unparsed: [Int] = []
            // The string fields of a JSON line other than the matched ones, as of the last line
            // (lines of one log share their shape, so the list is rebuilt only when it changes).
            let matchKeys = Set(settings.rules.match.map { String($0.column.prefix { $0 != "." }) })
            var jsonTextFields: [String] = []
            try reader.forEachLine { line, number, offset, terminator in
                records += 1
                var jobs: [Int: [String]] = [:]
                var fields: [JSONMember]?
                if let extractor, line.first == UInt8(ascii: "{"), extractor.extract(line, &extractScratch) {
                    var any = false
                    for (k, rule) in settings.rules.match.enumerated() {
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
                if settings.logFormat == .jsonl, line.first == UInt8(ascii: "{") {
                    parsed = try? JSONParser.parse(Array(line))
                    if parsed == nil { unparsed.append(number) }
                }
                if let obj = parsed, case .object(let members) = obj {
                    for rule in settings.rules.match {
                        guard let v = LogConnector.lookup(obj, path: rule.column) else { continue }
                        let entries = v.withUnsafeBytes {
                            batch.table.matchField(type: rule.type, $0, scratch: &scratch)
                        }
                        for e in entries {
                            for j in batch.table.hit(e).jobs {
                                jobs[j, default: []].append("\(rule.type) (\(rule.column))")
                            }
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
                        for j in h.jobs where !(jobs[j] ?? []).contains(h.identifier.type) {
                            jobs[j, default: []].append(h.identifier.type)
                        }
                    }
                    if jobs.isEmpty { return }
                }
                let bytesOfLine = Array(line)
                let recordFields = fields ?? [JSONMember(key: "line", value: jsonText(bytesOfLine))]
                if let fields { LogConnector.textFields(fields, except: matchKeys, into: &jsonTextFields) }
                for (j, how) in jobs {
                    collector.add(
                        j,
                        FoundRecord(
                            table: table, source: src, line: number,
                            range: offset..<(offset + Int64(line.count + terminator)),
                            fields: recordFields, matchedOn: how,
                            textFields: fields == nil ? FoundRecord.lineField : jsonTextFields))
                }
            }
            // A text log's scan already is a raw token search of every line; JSON lines are also
            // searched raw, for identifiers in fields the rules do not name. (Not for a part of a
            // file: the tail an erasure processes is no coverage claim.)
            if range == nil {
                try collector.cover(
                    src, connector: name, records: records, unparsedLines: unparsed,
                    rawSearch: settings.logFormat == .jsonl, digest: reader.digest,
                    options: config.sourceOptions)
            }
            return (collector, reader.bytesRead)
        }
    }

    /// The keys of the string, object and array members of a JSON log line other than `except` (the
    /// matched fields), the fields whose strings are masked at any depth, in `out`, which is left as it
    /// is (no allocation) when the line has the same shape as the last.
    package static func textFields(_ members: [JSONMember], except: Set<String>, into out: inout [String]) {
        func text(_ v: JSONValue) -> Bool {
            switch v {
            case .string, .object, .array: true
            case .null, .bool, .number: false
            }
        }
        var k = 0
        var same = true
        for m in members {
            guard text(m.value), !except.contains(m.key) else { continue }
            if k >= out.count || out[k] != m.key {
                same = false
                break
            }
            k += 1
        }
        if same && k == out.count { return }
        out = members.compactMap { m in
            guard text(m.value), !except.contains(m.key) else { return nil }
            return m.key
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
