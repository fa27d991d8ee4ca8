import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

extension SparkConnector: ErasingConnector {
    /// One strategy per configured table, in the order of the YAML file.
    package var eraseStrategies: [EraseStrategyEntry] {
        tables.map { EraseStrategyEntry(table: $0.name, strategy: $0.rules.erase, reason: $0.rules.reason) }
    }

    /// The state of a file before its rewrite, compared again just before the swap.
    struct FileState: Equatable {
        var inode: UInt64
        var device: UInt64
        var size: Int64
        var mtimeNanos: Int64
        var sha256: String
    }

    /// The (inode, size, mtime, sha256) of a local file.
    static func state(_ path: String) throws -> FileState {
        guard let st = try FileSystem.status(path), st.kind == .regular else {
            throw DSARError(.processing, "\(path) is not a regular file; it was left untouched", path: path)
        }
        return FileState(
            inode: st.inode, device: st.device, size: st.size, mtimeNanos: st.mtimeNanos,
            sha256: try AtomicRewrite.hash(path: path))
    }

    /// Removes `.dsar-stage-*` directories a crashed earlier rewrite left in `dir`.
    static func removeStaleStages(in dir: String) {
        for n in (try? FileSystem.list(dir)) ?? [] where n.hasPrefix(".dsar-stage-") {
            try? FileSystem.removeTree(dir + "/" + n)
        }
    }

    /// Lake erasure, file by file: Spark writes a filtered (`delete`) or redacted (`redact`) copy of
    /// every file that holds confirmed rows of the batch into a sibling `.dsar-stage-…` directory;
    /// dsar checks the copy (the rows it confirmed and no others were matched), fsyncs it, checks
    /// that the original is unchanged since the search, gives it the original's owner, group, mode
    /// and extended attributes and renames it over the original (one file: wholly old or wholly
    /// new), then searches again on Spark and reports what remains. Only local files (bare paths or
    /// `file:`) are rewritten; a table elsewhere is an error for that table (the job PARTIAL).
    /// A row that matched only through a `text:` column (someone else's row mentioning the subject)
    /// is never deleted: the text columns that mention the subject are overwritten instead, in a
    /// `delete` table as in a `redact` one (as the CSV eraser does).
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        let live = jobs.filter { !$0.dryRun }
        guard !live.isEmpty else { return [:] }
        let batch = ScanBatch(erasing: live)
        let base = try SparkConnector.workBase(batch)
        let before = try await search(batch, logger: logger)
        // Confirmed rows per (table, file), in the order Spark reported them.
        var order: [String] = []
        var byFile: [String: [ConfirmedRow]] = [:]
        for r in before.rows {
            let k = r.table + "\u{0}" + r.file
            if byFile[k] == nil { order.append(k) }
            byFile[k, default: []].append(r)
        }
        // Stage directories a killed earlier rewrite left next to any file of an erasing table.
        var dirs = Set<String>()
        for f in before.files where settings.tables[f.table].map({ $0.rules.erase != .retain }) ?? false {
            if let p = SparkTable.localPath(f.file) { dirs.insert(AtomicRewrite.directory(of: p)) }
        }
        for d in dirs.sorted() { SparkConnector.removeStaleStages(in: d) }
        var results: [String: [FileErasure]] = [:]  // key → per job
        var rewrites: [SparkJob.Rewrite] = []
        var states: [String: FileState] = [:]
        var expected: [String: Int] = [:]
        for k in order {
            let rows = byFile[k]!
            let table = rows[0].table
            let file = rows[0].file
            guard let t = settings.tables[table] else { continue }
            let local = SparkTable.localPath(file)
            var r = live.map { _ in
                FileErasure(connector: name, file: local ?? file, table: table, strategy: t.rules.erase)
            }
            var targeted: [ConfirmedRow] = []
            var mentions: [SparkJob.Mention] = []
            var mentionRows = 0
            let bound = SparkConnector.columns(t.rules)
            for row in rows {
                let textOnly = !row.hits.contains { $0.structured }
                if textOnly && t.rules.erase != .retain && t.rules.erase != .plugin {
                    var cols: [String] = []
                    for h in row.hits {
                        for tr in h.textRanges where tr.column < bound.count && !cols.contains(bound[tr.column]) {
                            cols.append(bound[tr.column])
                        }
                    }
                    if let m = mentions.firstIndex(where: { $0.fp == row.fp }) {
                        for c in cols where !mentions[m].columns.contains(c) { mentions[m].columns.append(c) }
                    } else {
                        mentions.append(SparkJob.Mention(fp: row.fp, columns: cols))
                    }
                    mentionRows += 1
                    for h in row.hits { r[h.job].redacted += 1 }
                    continue
                }
                switch t.rules.erase {
                case .retain, .plugin:
                    for h in row.hits {
                        r[h.job].retained += 1
                        r[h.job].reason = t.rules.reason
                    }
                case .delete, .dropLine:
                    targeted.append(row)
                    for h in row.hits { r[h.job].deleted += 1 }
                case .redact:
                    targeted.append(row)
                    for h in row.hits { r[h.job].redacted += 1 }
                }
            }
            if !targeted.isEmpty || !mentions.isEmpty {
                if let local {
                    do {
                        let dir = AtomicRewrite.directory(of: local)
                        SparkConnector.removeStaleStages(in: dir)
                        states[k] = try SparkConnector.state(local)
                        var fps: [String] = []
                        for row in targeted where !fps.contains(row.fp) { fps.append(row.fp) }
                        let token = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
                        rewrites.append(
                            SparkJob.Rewrite(
                                table: table, file: file, rows: fps, stage: dir + "/.dsar-stage-\(token)",
                                mentions: mentions))
                        expected[k] = targeted.count + mentionRows
                    } catch {
                        for j in r.indices { r[j].error = (error as? DSARError)?.message ?? "\(error)" }
                    }
                } else {
                    for j in r.indices {
                        r[j].error =
                            "table \(table) is at \(t.path): dsar rewrites only local files (a path or file:), so nothing of \(file) was erased"
                    }
                }
            }
            results[k] = r
        }
        if !rewrites.isEmpty {
            let staged: [JSONValue]
            do {
                staged = try await job.run(
                    .rewrite, tables: tables, identifiers: live.flatMap(\.identifiers), rewrite: rewrites,
                    baseDir: base, logger: logger)
            } catch {
                for w in rewrites {
                    try? FileSystem.removeTree(w.stage)
                    let k = w.table + "\u{0}" + w.file
                    for j in results[k]!.indices {
                        results[k]![j].error = (error as? DSARError)?.message ?? "\(error)"
                    }
                }
                staged = []
            }
            for w in rewrites {
                let k = w.table + "\u{0}" + w.file
                let line = staged.first { $0["t"]?.sparkString == "staged" && $0["file"]?.sparkString == w.file }
                defer { try? FileSystem.removeTree(w.stage) }
                guard results[k]![0].error == nil else { continue }
                do {
                    let (b, a) = try swap(w, line, state: states[k]!, expected: expected[k]!)
                    for j in results[k]!.indices {
                        results[k]![j].sha256Before = b
                        results[k]![j].sha256After = a
                    }
                } catch {
                    for j in results[k]!.indices {
                        results[k]![j].error = (error as? DSARError)?.message ?? "\(error)"
                    }
                }
            }
        }
        // Verify: search again on Spark for every identifier of every job.
        var verified = false
        var remaining: [String: [Int]] = [:]
        do {
            let after = try await search(batch, logger: logger)
            verified = true
            for row in after.rows where !retains(table: row.table) {
                let k = row.table + "\u{0}" + row.file
                if results[k] == nil {
                    let local = SparkTable.localPath(row.file)
                    results[k] = live.map { _ in
                        FileErasure(
                            connector: name, file: local ?? row.file, table: row.table,
                            strategy: settings.tables[row.table]?.rules.erase ?? .delete)
                    }
                }
                for h in row.hits { remaining[k, default: Array(repeating: 0, count: live.count)][h.job] += 1 }
            }
        } catch {
            let why = (error as? DSARError)?.message ?? "\(error)"
            for k in results.keys {
                for j in results[k]!.indices where results[k]![j].error == nil {
                    results[k]![j].error = "the search after erasure failed: \(why)"
                }
            }
        }
        var out: [String: [FileErasure]] = [:]
        for k in results.keys.sorted() {
            var r = results[k]!
            for j in r.indices {
                if verified {
                    r[j].remaining = (remaining[k]?[j] ?? 0) + r[j].retained
                }
            }
            FileErasure.collect(r, for: live, into: &out)
        }
        return out
    }

    /// Replaces the original of `w` by the file Spark staged, after every check; returns the
    /// hashes before and after.
    func swap(_ w: SparkJob.Rewrite, _ line: JSONValue?, state: FileState, expected: Int) throws -> (String, String) {
        guard let path = SparkTable.localPath(w.file) else {
            throw DSARError(.processing, "\(w.file) is not a local file; it was left untouched")
        }
        guard let line, let part = line["part"]?.sparkString else {
            throw DSARError(
                .processing, "the spark job staged no new copy of \(path); it was left untouched (rerun to erase)",
                path: path)
        }
        let matched = line["matched"]?.sparkInt ?? -1
        guard matched == expected else {
            throw DSARError(
                .processing,
                "the spark job matched \(matched) rows of \(path) but dsar confirmed \(expected); it was left untouched (rerun to erase)",
                path: path)
        }
        let partPath = SparkTable.localPath(part) ?? part
        guard partPath.hasPrefix(w.stage + "/") else {
            throw DSARError(
                .processing, "the spark job staged \(part) outside \(w.stage); \(path) was left untouched", path: path)
        }
        let partFD = open(partPath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard partFD >= 0 else { throw DSARError.syscall("cannot open the staged copy", path: partPath) }
        defer { close(partFD) }
        if fsync(partFD) != 0 { throw DSARError.syscall("cannot fsync", path: partPath) }
        let origFD = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard origFD >= 0 else { throw DSARError.syscall("cannot open", path: path) }
        defer { close(origFD) }
        let st = try AtomicRewrite.regularStatus(origFD, path: path)
        // Never replace blindly: the original must be exactly what Spark read.
        let now = try SparkConnector.state(path)
        guard now == state, UInt64(st.st_ino) == state.inode else {
            throw DSARError(
                .processing, "\(path) changed while it was being rewritten; it was left untouched (rerun to erase)",
                path: path)
        }
        try AtomicRewrite.copyMetadata(from: origFD, st, to: partFD, path: path)
        let after = try AtomicRewrite.hash(fd: partFD, path: partPath)
        // Hadoop's local filesystem checks a file against its `.<name>.crc` sidecar when there is
        // one: the old sidecar goes first (a file without one is read unchecked), then the new file,
        // then the new sidecar; a crash between any two steps leaves a readable file, old or new.
        let dir = AtomicRewrite.directory(of: path)
        let crc = dir + "/." + (path as NSString).lastPathComponent + ".crc"
        let newCRC = w.stage + "/." + (partPath as NSString).lastPathComponent + ".crc"
        if FileSystem.exists(crc) {
            try FileSystem.remove(crc)
            try FileSystem.syncDirectory(dir)
        }
        try FileSystem.rename(partPath, to: path)
        if FileSystem.exists(newCRC) { try FileSystem.rename(newCRC, to: crc) }
        try FileSystem.syncDirectory(dir)
        try? FileSystem.removeTree(w.stage)
        CrashPoint.hit("spark.swapped")
        return (state.sha256, after)
    }
}
