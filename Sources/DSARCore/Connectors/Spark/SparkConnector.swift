import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Lake tables searched on Apache Spark: the PySpark program (``SparkJob``) joins every table
/// against the batch's keys (broadcast, not an `IN` list) and returns candidate rows; each is
/// confirmed by ``RowMatcher`` exactly like a dump's row, so near misses never count.
///
/// Coverage: one entry per file Spark read (size and rows; no hash: lakes are not hashed whole, and
/// not searched raw); rows Spark could not parse and tables whose path matches no file make the
/// job PARTIAL.
package struct SparkConnector: SettingsConnector {
    package let config: ConnectorConfig
    /// The kind's settings (``SparkSettings``).
    package let settings: SparkSettings

    /// A connector of `config` with its kind's `settings`.
    package init(config: ConnectorConfig, settings: SparkSettings) {
        self.config = config
        self.settings = settings
    }

    /// The spark-submit's own timeout (`timeout:`) kills the job and names it; the runner's is later.
    package var timeoutSeconds: Double? { config.timeoutSeconds + 120 }
    /// Unknown before Spark lists the files.
    package func sourceBytes() -> Int64? { nil }
    package func retains(table: String) -> Bool { settings.tables[table]?.rules.erase == .retain }
    /// The eraser runs the verifying search on Spark itself and reports what remains per file.
    package var searchedAgainAfterErasure: Bool { false }

    /// The job runner of this connector.
    var job: SparkJob {
        SparkJob(connector: name, settings: settings, timeout: config.timeoutSeconds, placeholder: config.placeholder)
    }

    /// The configured tables in YAML order.
    var tables: [SparkTable] { settings.tableOrder.compactMap { settings.tables[$0] } }

    /// Where a job's private directory is made: the batch's work directory (in the spool's `tmp/`),
    /// else (a search after erasure, which has none) a private directory of the system's temp dir.
    static func workBase(_ batch: ScanBatch) throws -> String {
        // The spec holds the batch's identifiers: it is only ever written into the spool's tmp/.
        guard let w = batch.jobs.first?.workDir, !w.isEmpty else {
            throw DSARError(.processing, "no batch directory in the spool's tmp/ for the spark job's spec")
        }
        return w
    }

    /// A row Spark proposed that dsar's matcher confirmed for at least one job.
    struct ConfirmedRow {
        var table: String
        /// The file as Spark names it (`file:/…`).
        var file: String
        var fp: String
        var hits: [RowMatcher.JobHit]
    }

    /// One file Spark read.
    struct FileRead {
        var table: String
        var file: String
        var rows: Int
        var corrupt: Int
        var bytes: Int64
    }

    /// What one search established.
    struct Search {
        var collector: FindingsCollector
        var rows: [ConfirmedRow] = []
        var files: [FileRead] = []
        var bytes: Int64 = 0
    }

    /// The column names the matcher of `rules` is bound to (match columns, then text columns).
    static func columns(_ rules: RecordRules) -> [String] {
        var out: [String] = []
        for c in rules.match.map(\.column) + rules.text where !out.contains(c) { out.append(c) }
        return out
    }

    /// Runs the scan on Spark and confirms every candidate row.
    func search(_ batch: ScanBatch, logger: Logger) async throws -> Search {
        var ids: [Identifier] = []
        var seen = Set<Identifier>()
        for j in batch.jobs { for id in j.identifiers where seen.insert(id).inserted { ids.append(id) } }
        let lines = try await job.run(
            .scan, tables: tables, identifiers: ids, baseDir: try SparkConnector.workBase(batch), logger: logger)
        var s = Search(collector: FindingsCollector(batch: batch))
        var matchers: [String: RowMatcher] = [:]
        var names: [String: [String]] = [:]
        for t in tables {
            var m = RowMatcher(rules: t.rules, table: batch.table, origin: "\(name).\(t.name)")
            let cols = SparkConnector.columns(t.rules)
            m.bind(columns: cols)
            matchers[t.name] = m
            names[t.name] = cols
        }
        var reported = Set<String>()
        for v in lines {
            guard let kind = v["t"]?.sparkString, let table = v["table"]?.sparkString,
                let spec = settings.tables[table]
            else { continue }
            reported.insert(table)
            switch kind {
            case "row":
                guard let file = v["file"]?.sparkString, let fp = v["fp"]?.sparkString, var m = matchers[table],
                    let cols = names[table]
                else {
                    throw DSARError(
                        .processing, "spark job of connector \(name): a row of table \(table) lacks file, fp or values")
                }
                let values: [[UInt8]?] = cols.map { c in
                    switch v["values"]?[c] {
                    case .string(let s)?: Array(s.utf8)
                    case .number(let n)?: Array(n.utf8)
                    case .bool(let b)?: Array((b ? "true" : "false").utf8)
                    default: nil
                    }
                }
                let hits = m.match(values)
                defer { matchers[table] = m }
                guard !hits.isEmpty else { continue }
                var fields: [JSONMember] = []
                if case .object(let members)? = v["row"] { fields = members }
                let source = SparkTable.localPath(file) ?? file
                for h in hits {
                    let r = FoundRecord(
                        table: table, source: source, line: 0, fields: fields, matchedOn: h.matchedOn,
                        mention: h.mention, textFields: h.textFields { cols[$0] })
                    s.collector.add(h.job, r, derived: m.derived(values, hit: h, known: s.collector.known[h.job]))
                }
                s.rows.append(ConfirmedRow(table: table, file: file, fp: fp, hits: hits))
            case "file":
                guard let file = v["file"]?.sparkString else { continue }
                let f = FileRead(
                    table: table, file: file, rows: v["rows"]?.sparkInt ?? 0, corrupt: v["corrupt"]?.sparkInt ?? 0,
                    bytes: Int64(v["bytes"]?.sparkInt ?? 0))
                s.files.append(f)
                s.bytes += f.bytes
                let source = SparkTable.localPath(file) ?? file
                s.collector.coverage.append(
                    SourceCoverage(
                        file: source, bytes: f.bytes, sha256: nil, records: f.rows - f.corrupt, unparsed: f.corrupt))
                if f.corrupt > 0 {
                    s.collector.sourceGaps.append(
                        CoverageGap(
                            kind: .unparsedRecord, connector: name, file: source,
                            message:
                                "\(f.corrupt) of its \(f.rows) rows of table \(table) (\(spec.format.rawValue)) could not be parsed by Spark and were not searched"
                        ))
                }
            case "table":
                if (v["files"]?.sparkInt ?? 0) == 0 {
                    s.collector.sourceGaps.append(
                        CoverageGap(
                            kind: .noSources, connector: name, file: spec.path,
                            message: "table \(table): no file matches \(spec.path): nothing was searched"))
                }
            default: continue
            }
        }
        for t in tables where !reported.contains(t.name) {
            s.collector.sourceGaps.append(
                CoverageGap(
                    kind: .noSources, connector: name, file: t.path,
                    message: "table \(t.name): the spark job reported no file of it: nothing is known to be searched"))
        }
        return s
    }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        let s = try await search(batch, logger: logger)
        return s.collector.result(
            bytesScanned: s.bytes,
            extra: [
                "engine": "spark", "master": settings.master, "files": String(s.files.count),
                "raw_search": "none: lake files are read through Spark only, not searched raw",
            ])
    }
}

/// `connectors check` of a `type: spark` connector: a Spark dry run (mode `check`).
enum SparkCheck {
    /// What the last check of each connector file printed (``SparkSettings/describe(_:)``).
    private final class Memory: @unchecked Sendable {
        let lock = NSLock()
        var lines: [String: [String]] = [:]
    }
    private static let memory = Memory()

    static func remember(_ config: ConnectorConfig, _ lines: [String]) {
        memory.lock.lock()
        memory.lines[config.file] = lines
        memory.lock.unlock()
    }

    static func remembered(_ config: ConnectorConfig) -> [String]? {
        memory.lock.lock()
        defer { memory.lock.unlock() }
        return memory.lines[config.file]
    }

    /// The result of an async body run from synchronous code.
    private final class Outcome: @unchecked Sendable {
        var result: Result<[JSONValue], any Error> = .success([])
    }

    /// Runs an async body to its end from synchronous code (the config checks are synchronous).
    static func blocking(_ body: @escaping @Sendable () async throws -> [JSONValue]) throws -> [JSONValue] {
        let box = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result.get()
    }

    /// Runs the check job, reports problems on `y` (`tables.X.match: table X (path) has no column …`)
    /// and returns the lines `connectors check` prints per table.
    static func run(_ s: SparkSettings, _ c: ConnectorConfig, _ y: YAMLMap) -> [String] {
        let job = SparkJob(connector: c.name, settings: s, timeout: c.timeoutSeconds, placeholder: c.placeholder)
        let tables = s.tableOrder.compactMap { s.tables[$0] }
        let base = NSTemporaryDirectory() + "dsar-spark-\(getuid())"
        let lines: [JSONValue]
        do {
            lines = try blocking {
                try await job.run(
                    .check, tables: tables, identifiers: [], baseDir: base, logger: Logger(label: "dsar.check"))
            }
        } catch {
            y.problem("tables", (error as? DSARError)?.message ?? "\(error)")
            return ["spark-submit --master \(s.master): the check failed"]
        }
        var out = ["spark-submit --master \(s.master)"]
        let section = y.map("tables")
        for v in lines where v["t"]?.sparkString == "check" {
            guard let name = v["table"]?.sparkString, let t = s.tables[name] else { continue }
            let m = section?.map(name)
            if let e = v["error"]?.sparkString {
                m?.problem("path", "table \(name) (\(t.path)) cannot be read: \(e)")
                out.append("table \(name): \(t.path): cannot be read: \(e)")
                continue
            }
            func list(_ k: String) -> [String] {
                if case .array(let a)? = v[k] { a.compactMap(\.sparkString) } else { [] }
            }
            let columns = list("columns")
            for missing in list("missing") {
                let key =
                    t.rules.match.contains { $0.column == missing }
                    ? "match" : t.rules.text.contains(missing) ? "text" : "redact"
                let hint =
                    ConfigSuggest.didYouMean(missing, among: columns).map { " (did you mean \"\($0)\"?)" } ?? ""
                m?.problem(
                    key,
                    "table \(name) (\(t.path)) has no column \"\(missing)\"\(hint) (columns: \(columns.joined(separator: ", ")))"
                )
            }
            let files = v["files"]?.sparkInt ?? 0
            if files == 0 { m?.problem("path", "table \(name): no file matches \(t.path)") }
            let partitions = list("partitions")
            out.append(
                "table \(name): \(t.format.rawValue) \(t.path): \(files) files, \(v["rows"]?.sparkInt ?? 0) rows"
                    + (partitions.isEmpty ? "" : ", partitioned by \(partitions.joined(separator: ", "))")
                    + "; erase: \(t.rules.erase.rawValue)")
        }
        return out
    }
}
