import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One run of dsar's PySpark program (`dsar_spark_job.py`, embedded) with `spark-submit`: the
/// program and its spec (the issue-19 contract: tables, rules, the batch's candidate
/// keys) are written mode 0600 into a fresh 0700 directory, the program writes JSON lines to an
/// output file there, and the directory is removed afterwards, also on failure.
///
/// The program only proposes candidates (a superset); dsar confirms every row with ``RowMatcher``.
package struct SparkJob: Sendable {
    /// What the program does.
    package enum Mode: String, Sendable { case scan, check, rewrite }

    /// A file the program rewrites (mode `rewrite`): the rows to remove or redact, by fingerprint.
    package struct Rewrite: Sendable, Equatable {
        package var table: String
        /// The file as Spark names it (`input_file_name()`).
        package var file: String
        /// The confirmed rows' fingerprints (`sha2(to_json(struct(*)), 256)`).
        package var rows: [String]
        /// The directory the program writes the new file into (a sibling `.dsar-stage-…`).
        package var stage: String
        /// Rows that only mention the subject in a text column (someone else's record): never
        /// deleted; the listed text columns are overwritten, whatever the table's strategy.
        package var mentions: [Mention] = []
    }

    /// A row of ``Rewrite/mentions``: its fingerprint and the text columns that mention the subject.
    package struct Mention: Sendable, Equatable {
        package var fp: String
        package var columns: [String]
    }

    /// A candidate key or text needle of the spec.
    package struct Key: Sendable, Hashable, Comparable {
        package var kind: String
        package var value: String
        package init(_ kind: String, _ value: String) {
            self.kind = kind
            self.value = value
        }
        package static func < (a: Key, b: Key) -> Bool { (a.kind, a.value) < (b.kind, b.value) }
    }

    /// The connector's name (messages, the Spark application name).
    package let connector: String
    package let settings: SparkSettings
    /// Seconds one spark-submit may run before its process group is killed.
    package let timeout: Double
    /// The replacement text of `erase: redact`.
    package let placeholder: String

    /// The embedded program.
    static var program: [UInt8] { PackageResources.dsar_spark_job_py }

    // MARK: - Keys and needles

    /// The spec's `keys`: every identifier of the batch as the program compares `match` columns
    /// (e-mails in every IDNA form, lower-cased; phones' last 7 digits; IPv4 addresses; one
    /// non-zero group of an IPv6 address; anything else as it is), sorted, each once.
    package static func keys(_ identifiers: [Identifier]) -> [Key] {
        var out = Set<Key>()
        for id in identifiers {
            switch IdentifierKind(type: id.type) {
            case .email:
                for f in IDNA.emailForms(id.value) { out.insert(Key("lower", f.lowercased())) }
            case .phone:
                if let d = digits7(id.value) { out.insert(Key("digits7", d)) }
            case .ip:
                if let k = ipKey(id.value) { out.insert(k) }
            case .other:
                let v = id.value.trimmingCharacters(in: .whitespaces)
                if !v.isEmpty { out.insert(Key("exact", v)) }
            }
        }
        return out.sorted()
    }

    /// The spec's `needles` for `text:` columns: an e-mail's first ASCII letter/digit run of its
    /// local part, another identifier's longest such run (both lower-cased), a phone's last 7
    /// digits, an IP address as for ``keys(_:)``; sorted, each once.
    package static func needles(_ identifiers: [Identifier]) -> [Key] {
        var out = Set<Key>()
        for id in identifiers {
            switch IdentifierKind(type: id.type) {
            case .email:
                let b = Array(id.value.utf8)
                let at = b.lastIndex(of: UInt8(ascii: "@")) ?? b.count
                if let r = runs(b[0..<at]).first {
                    out.insert(Key("run", String(decoding: r, as: UTF8.self).lowercased()))
                } else {
                    // No ASCII run in the local part: the top-level domain's, which the Unicode and
                    // the punycode spelling of the domain share (an IDN top-level domain has none).
                    let tld = b[min(at + 1, b.count)...].split(separator: UInt8(ascii: ".")).last ?? []
                    if let r = runs(tld).last {
                        out.insert(Key("run", String(decoding: r, as: UTF8.self).lowercased()))
                    }
                }
            case .phone:
                if let d = digits7(id.value) { out.insert(Key("digits7", d)) }
            case .ip:
                if let k = ipKey(id.value) { out.insert(k) }
            case .other:
                if let r = longestRun(Array(id.value.utf8)) { out.insert(Key("run", r.lowercased())) }
            }
        }
        return out.sorted()
    }

    /// The key kinds a `match` column of identifier type `type` is compared with.
    package static func keyKinds(type: String) -> [String] {
        switch IdentifierKind(type: type) {
        case .email: ["lower"]
        case .phone: ["digits7"]
        case .ip: ["ipv4", "ipv6group"]
        case .other: ["exact"]
        }
    }

    /// The last 7 digits of `v` (all of them if fewer), nil when it has none.
    static func digits7(_ v: String) -> String? {
        let d = v.utf8.filter { $0 >= 0x30 && $0 <= 0x39 }
        guard !d.isEmpty else { return nil }
        return String(decoding: d.suffix(7), as: UTF8.self)
    }

    /// An IPv4 address as it is; for IPv6 its longest non-zero group without leading zeros.
    static func ipKey(_ v: String) -> Key? {
        let s = v.lowercased().trimmingCharacters(in: .whitespaces)
        guard s.contains(":") else { return s.isEmpty ? nil : Key("ipv4", s) }
        var best = ""
        for g in s.split(whereSeparator: { !$0.isHexDigit }) {
            let t = String(g.drop { $0 == "0" })
            if t.count > best.count { best = t }
        }
        return best.isEmpty ? nil : Key("ipv6group", best)
    }

    /// The runs of ASCII letters and digits of `b`, in order.
    static func runs(_ b: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var i = b.startIndex
        while i < b.endIndex {
            guard LiveSearch.isAlnum(b[i]) else {
                i += 1
                continue
            }
            var e = i
            while e < b.endIndex && LiveSearch.isAlnum(b[e]) { e += 1 }
            out.append(b[i..<e])
            i = e
        }
        return out
    }

    /// The longest run of ASCII letters and digits (the first of equal ones), nil when none.
    static func longestRun(_ b: [UInt8]) -> String? {
        var best: ArraySlice<UInt8> = []
        for r in runs(b[...]) where r.count > best.count { best = r }
        return best.isEmpty ? nil : String(decoding: best, as: UTF8.self)
    }

    // MARK: - Spec

    /// The spec document for `mode` over `tables` (identifiers only for scan and rewrite).
    package func spec(
        mode: Mode, tables: [SparkTable], identifiers: [Identifier], rewrite: [Rewrite] = [], output: String
    ) -> JSONValue {
        let carriesIDs = mode != .check
        let tablesJSON: [JSONValue] = tables.map { t in
            var options = t.options
            if t.format == .csv && !options.contains(where: { $0.0 == "header" }) { options.append(("header", "true")) }
            var match: [JSONValue] = []
            for r in t.rules.match {
                for k in SparkJob.keyKinds(type: r.type) {
                    match.append(.obj(["column": .string(r.column), "type": .string(r.type), "key": .string(k)]))
                }
            }
            return .obj([
                "name": .string(t.name), "path": .string(t.path), "format": .string(t.format.rawValue),
                "options": .object(options.map { JSONMember(key: $0.0, value: .string($0.1)) }),
                "match": .array(match), "text": .array(t.rules.text.map { .string($0) }),
                "redact": .array(t.rules.redact.map { .string($0) }), "erase": .string(t.rules.erase.rawValue),
                "placeholder": .string(placeholder),
            ])
        }
        func list(_ keys: [Key]) -> JSONValue {
            .array(keys.map { .obj(["kind": .string($0.kind), "value": .string($0.value)]) })
        }
        return .obj([
            "version": .int(1), "mode": .string(mode.rawValue), "output": .string(output),
            "app_name": .string("dsar-\(connector)"), "tables": .array(tablesJSON),
            "keys": list(carriesIDs ? SparkJob.keys(identifiers) : []),
            "needles": list(carriesIDs ? SparkJob.needles(identifiers) : []),
            "rewrite": .array(
                rewrite.map {
                    .obj([
                        "table": .string($0.table), "file": .string($0.file),
                        "rows": .array($0.rows.map { .string($0) }),
                        "mentions": .array(
                            $0.mentions.map {
                                .obj(["fp": .string($0.fp), "columns": .array($0.columns.map { .string($0) })])
                            }
                        ),
                        "stage": .string($0.stage),
                    ])
                }),
        ])
    }

    // MARK: - Running

    /// Runs the program in `mode` and returns its output lines (the final `done` line excluded).
    /// `baseDir` is where the job's private directory is made (the batch's work directory in the
    /// spool's `tmp/`); `identifiers` are the batch's (keys, and what stderr is scrubbed of).
    package func run(
        _ mode: Mode, tables: [SparkTable], identifiers: [Identifier], rewrite: [Rewrite] = [], baseDir: String,
        logger: Logger
    ) async throws -> [JSONValue] {
        let submit = try settings.resolvedSparkSubmit()
        try FileSystem.makeDirectory(baseDir, mode: 0o700)
        let dir = baseDir + "/spark-\(connector)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(dir, mode: 0o700)
        defer { try? FileSystem.removeTree(dir) }
        let programPath = dir + "/dsar_spark_job.py"
        let specPath = dir + "/spec.json"
        let output = dir + "/out.jsonl"
        try FileSystem.writeScratch(programPath, SparkJob.program, mode: 0o600)
        let spec = spec(mode: mode, tables: tables, identifiers: identifiers, rewrite: rewrite, output: output)
        try FileSystem.writeScratch(specPath, JSONWriter().encode(spec) + [0x0A], mode: 0o600)
        var argv = [submit, "--master", settings.master]
        for (k, v) in settings.conf { argv += ["--conf", "\(k)=\(v)"] }
        // Spark spills broadcast blocks (the batch's keys) and shuffle files to its local directory,
        // /tmp by default, and a killed job leaves them there. In local mode they go into this job's
        // private directory instead, which is removed whatever happens.
        var env = ["PYSPARK_PYTHON": settings.resolvedPython()]
        if settings.master.hasPrefix("local"), !settings.conf.contains(where: { $0.0 == "spark.local.dir" }) {
            let local = dir + "/local"
            try FileSystem.makeDirectory(local, mode: 0o700)
            argv += ["--conf", "spark.local.dir=\(local)"]
            env["TMPDIR"] = local
        }
        argv += [programPath, specPath]
        if ProcessInfo.processInfo.environment["SPARK_LOCAL_IP"] == nil { env["SPARK_LOCAL_IP"] = "127.0.0.1" }
        let r = try await Subprocess.run(argv, stdin: [], environment: env, timeout: timeout, scratchDir: dir)
        let scrubber = IdentifierScrubber(identifiers)
        // spark-submit runs the Python driver with its stderr merged into its stdout, so the
        // program's lines (`DSAR-ERROR: …`) arrive on spark-submit's stdout, Spark's log on stderr.
        let stdout = String(decoding: r.stdout, as: UTF8.self).split(whereSeparator: \.isNewline)
        let lines = String(decoding: r.stderr, as: UTF8.self).split(whereSeparator: \.isNewline)
        for (stream, text) in [("stdout", stdout), ("stderr", lines)] {
            for line in text.suffix(500) {
                logger.info(
                    "spark \(stream)",
                    metadata: [
                        "connector": "\(connector)", "mode": "\(mode.rawValue)",
                        "line": "\(scrubber.scrub(String(line)))",
                    ])
            }
        }
        if r.timedOut {
            throw DSARError(
                .processing, "spark job of connector \(connector) timed out after \(Int(timeout)) s and was killed")
        }
        if r.status != 0 || r.signal != nil {
            let reason = (stdout + lines).last { $0.hasPrefix("DSAR-ERROR: ") }.map { String($0.dropFirst(12)) }
            let why =
                reason ?? lines.last.map(String.init) ?? r.signal.map { "killed by signal \($0)" }
                ?? "exit status \(r.status)"
            throw DSARError(
                .processing,
                "spark job of connector \(connector) (\(mode.rawValue)) failed (exit \(r.status)): \(scrubber.scrub(String(why.prefix(500))))"
            )
        }
        let bytes = try FileSystem.readFile(output)
        var out: [JSONValue] = []
        var done = false
        var n = 0
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true) {
            n += 1
            let v: JSONValue
            do { v = try JSONParser.parse(Array(line)) } catch {
                throw DSARError(
                    .processing, "spark job of connector \(connector): output line \(n) is not JSON: \(error)",
                    cause: error)
            }
            guard case .object = v, case .string(let t)? = v["t"] else {
                throw DSARError(
                    .processing, "spark job of connector \(connector): output line \(n) is not an object with \"t\"")
            }
            if t == "done" {
                done = true
                continue
            }
            if done {
                throw DSARError(
                    .processing, "spark job of connector \(connector): output line \(n) comes after the done line")
            }
            out.append(v)
        }
        guard done else {
            throw DSARError(
                .processing,
                "spark job of connector \(connector) (\(mode.rawValue)) exited 0 but its output has no final done line (\(n) lines): its results are incomplete"
            )
        }
        return out
    }
}

extension JSONValue {
    /// The string of a `.string`, nil otherwise.
    var sparkString: String? { if case .string(let s) = self { s } else { nil } }

    /// The integer of a `.number`, nil otherwise.
    var sparkInt: Int? { if case .number(let n) = self { Int(n) ?? Double(n).map { Int($0) } } else { nil } }
}
