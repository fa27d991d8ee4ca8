import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `type: spark`: tables of Parquet, CSV or JSON files in a data lake, searched and erased by a
/// PySpark program dsar ships (``SparkJob``), run with `spark-submit` where the data is.
package enum SparkKind: ConnectorKind {
    package static let type = "spark"
    package static let keys = ["master", "spark_submit", "python", "conf", "tables"]
    package static var readsFiles: Bool { false }

    /// The keys of one table besides the rule keys (``ConnectorCatalog/ruleKeys``).
    static let tableKeys = ["path", "format", "options"]

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> SparkSettings {
        var s = SparkSettings()
        if let m = y.string("master") {
            if m.trimmingCharacters(in: .whitespaces).isEmpty {
                y.problem(
                    "master", "is empty: give local[*], local[2], spark://host:7077, yarn or k8s://https://host:443")
            } else {
                s.master = m
            }
        }
        if let p = y.string("spark_submit") {
            if p.isEmpty {
                y.problem("spark_submit", "is empty: give the path of spark-submit, or leave the key out to find it")
            } else {
                s.sparkSubmit =
                    p.contains("/") && !p.hasPrefix("/") ? (context.dir + "/" + p as NSString).standardizingPath : p
                if context.checks.sources, let exe = s.sparkSubmit, exe.contains("/"), access(exe, X_OK) != 0 {
                    y.problem("spark_submit", "\(exe) is not an executable file")
                }
            }
        }
        if let p = y.string("python") {
            if p.isEmpty {
                y.problem("python", "is empty: give the python3 that has pyspark, or leave the key out")
            } else {
                s.python = p
            }
        }
        if let conf = y.map("conf") {
            for k in conf.keys {
                if k.isEmpty || k.contains("=") || k.contains(where: \.isWhitespace) {
                    conf.problem(k, "is not a Spark property name (expected e.g. spark.executor.memory)")
                } else if let v = conf.string(k) {
                    s.conf.append((k, v))
                }
            }
        }
        (s.tables, s.tableOrder) = tables(y, dir: context.dir)
        return s
    }

    /// The `tables:` section: each table's files (`path`, `format`, `options`) and its rules.
    static func tables(_ y: YAMLMap, dir: String) -> ([String: SparkTable], [String]) {
        var out: [String: SparkTable] = [:]
        var order: [String] = []
        guard let t = y.map("tables", required: true) else { return (out, order) }
        for name in t.keys {
            guard let m = t.map(name) else {
                t.problem(name, "expected a table: { path: /lake/\(name), format: parquet, match: { column: type } }")
                continue
            }
            m.knownTypes = y.knownTypes
            var table = SparkTable(name: name)
            if let p = m.string("path", required: true) {
                if p.trimmingCharacters(in: .whitespaces).isEmpty {
                    m.problem("path", "is empty: give the table's directory or file (/lake/\(name), hdfs://…, s3a://…)")
                } else {
                    table.path = SparkTable.absolute(p, relativeTo: dir)
                }
            }
            if let f = m.string("format", required: true) {
                if let v = SparkTable.Format(rawValue: f) {
                    table.format = v
                } else {
                    m.problem("format", "\"\(f)\" is not a lake format; expected parquet, csv or json")
                }
            }
            if let o = m.map("options") {
                for k in o.keys {
                    if let v = o.string(k) { table.options.append((k, v)) }
                }
            }
            table.rules = ConnectorCatalog.rules(m, matchKey: "match", allowRetainOnly: true)
            if table.format == .parquet,
                let bad = table.options.first(where: { $0.0 == "header" || $0.0 == "sep" || $0.0 == "delimiter" })
            {
                m.problem("options", "\(bad.0) is a csv option; a parquet table takes none of it")
            }
            m.rejectUnknownKeys(allowed: ConnectorCatalog.ruleKeys + tableKeys)
            out[name] = table
            order.append(name)
        }
        if t.keys.isEmpty { y.problem("tables", "list at least one table") }
        return (out, order)
    }

    package static func check(
        _ settings: SparkSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        guard checks.sources && y.problems.isEmpty else { return }
        let lines = SparkCheck.run(settings, config, y)
        SparkCheck.remember(config, lines)
    }
}

/// One lake table of a `type: spark` connector.
package struct SparkTable: Sendable, Equatable {
    /// The file formats Spark reads for dsar.
    package enum Format: String, Sendable, CaseIterable { case parquet, csv, json }

    package var name: String
    /// The table's directory (partitioned `dt=…/` directories allowed) or file: a local path (bare
    /// or `file:`) or any URI Spark reads (`hdfs://…`, `s3a://…`).
    package var path: String = ""
    package var format: Format = .parquet
    /// `options:` passed to Spark's reader (and writer, when a file is rewritten), in YAML order.
    package var options: [(String, String)] = []
    /// `match`/`text`/`erase`/`redact`/`reason`.
    package var rules = RecordRules()

    /// An empty table called `name`.
    package init(name: String) { self.name = name }

    package static func == (a: SparkTable, b: SparkTable) -> Bool {
        a.name == b.name && a.path == b.path && a.format == b.format && a.rules == b.rules
            && a.options.map { $0.0 + "=" + $0.1 } == b.options.map { $0.0 + "=" + $0.1 }
    }

    /// `p` as Spark is given it: URIs as they are, a relative path relative to `dir`.
    static func absolute(_ p: String, relativeTo dir: String) -> String {
        if p.hasPrefix("/") || scheme(p) != nil { return p }
        return (dir + "/" + p as NSString).standardizingPath
    }

    /// The URI scheme of `p` (`file`, `hdfs`, `s3a`…), nil for a bare path.
    static func scheme(_ p: String) -> String? {
        guard let colon = p.firstIndex(of: ":") else { return nil }
        let s = p[..<colon]
        guard !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "+" || $0 == "-" || $0 == "." }) else {
            return nil
        }
        return s.lowercased()
    }

    /// The local filesystem path of a path or `file:` URI as Spark reports it
    /// (`file:/lake/x`, `file:///lake/x`, `/lake/x`), percent-decoded; nil for any other scheme.
    package static func localPath(_ p: String) -> String? {
        guard let s = scheme(p) else { return p }
        guard s == "file" else { return nil }
        var rest = String(p.dropFirst(5))
        if rest.hasPrefix("//") {
            rest = String(rest.dropFirst(2))
            // file://host/path: only the local host.
            if let slash = rest.firstIndex(of: "/") {
                let host = rest[..<slash]
                guard host.isEmpty || host == "localhost" else { return nil }
                rest = String(rest[slash...])
            }
        }
        return rest.removingPercentEncoding ?? rest
    }
}

/// The settings of a `type: spark` connector.
package struct SparkSettings: ConnectorSettings {
    package static var kind: any ConnectorKind.Type { SparkKind.self }
    /// `master:` (default `local[*]`).
    package var master = "local[*]"
    /// `spark_submit:` (nil: `spark-submit` on PATH, else the one of the pyspark package).
    package var sparkSubmit: String?
    /// `python:` (PYSPARK_PYTHON; nil: /usr/bin/python3, else python3 on PATH).
    package var python: String?
    /// `conf:`, in YAML order (`--conf k=v`).
    package var conf: [(String, String)] = []
    /// The tables by name.
    package var tables: [String: SparkTable] = [:]
    /// The tables in the order of the YAML file.
    package var tableOrder: [String] = []

    /// Defaults: `local[*]`, spark-submit and python found when the job runs, no tables.
    package init() {}

    package func connector(_ config: ConnectorConfig) -> any Connector {
        SparkConnector(config: config, settings: self)
    }

    package var summary: [String] {
        ["spark-submit --master \(master)"]
            + tableOrder.compactMap { t in tables[t].map { "table \(t): \($0.format.rawValue) \($0.path)" } }
    }

    package func describe(_ config: ConnectorConfig) -> [String] {
        SparkCheck.remembered(config) ?? summary
    }

    /// The python3 that runs the job (PYSPARK_PYTHON).
    package func resolvedPython() -> String {
        if let python { return python }
        if access("/usr/bin/python3", X_OK) == 0 { return "/usr/bin/python3" }
        return SparkSettings.onPath("python3") ?? "python3"
    }

    /// The spark-submit to run: `spark_submit:`, else `spark-submit` on PATH, else
    /// `<pyspark package>/bin/spark-submit` of ``resolvedPython()``.
    package func resolvedSparkSubmit() throws -> String {
        if let sparkSubmit { return sparkSubmit }
        if let p = SparkSettings.onPath("spark-submit") { return p }
        let py = resolvedPython()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: py.contains("/") ? py : (SparkSettings.onPath(py) ?? py))
        p.arguments = ["-c", "import os, pyspark; print(os.path.dirname(pyspark.__file__))"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw DSARError(
                .config,
                "no spark-submit: none on PATH, and \(py) cannot be run to find pyspark's (set `spark_submit:` or install pyspark)"
            )
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let dir = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let exe = dir + "/bin/spark-submit"
        guard p.terminationStatus == 0, !dir.isEmpty, access(exe, X_OK) == 0 else {
            throw DSARError(
                .config,
                "no spark-submit: none on PATH and \(py) has no pyspark (pip install pyspark, or set `spark_submit:`)")
        }
        return exe
    }

    /// The executable `name` in a directory of PATH.
    static func onPath(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}
