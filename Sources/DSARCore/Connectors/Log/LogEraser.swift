import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

extension LogConnector: ErasingConnector {
    /// One strategy for every line (`erase:`).
    package var eraseStrategies: [EraseStrategyEntry] {
        [EraseStrategyEntry(strategy: settings.rules.erase, reason: settings.rules.reason)]
    }

    /// Log erasure: `redact` replaces every matched identifier token (every form that matched,
    /// URL-encoded too) with the placeholder and keeps the rest of the line (JSON lines stay valid
    /// JSON); `drop_line` removes the line; `retain` changes nothing. `.gz` files are rewritten as gzip.
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        let batch = ScanBatch(erasing: jobs)
        let strategy = settings.rules.erase
        var out: [String: [FileErasure]] = [:]
        // Everything of the subject is searched as text on redaction, whatever the configured types,
        // except types scoped to a context: of those exactly the capture is redacted.
        let scoped = Set(settings.contextPatterns.map(\.type))
        let text = TextMatcher(
            table: batch.table, types: scoped.isEmpty ? nil : Set(batch.table.types).subtracting(scoped))
        let linePatterns = LinePatterns(settings)
        var scratch: [UInt8] = []
        let placeholder = Array(config.placeholder.utf8)
        let options = config.sourceOptions
        for src in try config.erasableSources() {
            try Task.checkCancellation()
            var results = jobs.map { _ in FileErasure(connector: name, file: src, strategy: strategy) }
            // Which lines match which jobs (the same matching as the search).
            let (prescan, scannedBytes) = try scanSource(src, batch)
            let matched = LogConnector.matchedLines(prescan, jobs: jobs.count)
            if strategy == .retain || matched.isEmpty {
                for (line, ks) in matched {
                    _ = line
                    for k in ks { results[k].retained += 1 }
                }
                for k in results.indices {
                    results[k].remaining = results[k].retained
                    if strategy == .retain { results[k].reason = settings.rules.reason }
                }
            } else {
                var counts = Array(repeating: (deleted: 0, redacted: 0), count: jobs.count)
                /// Writes the new form of the lines of `reader` (`matched`: line number → jobs) to `out`.
                func rewriteLines(
                    _ reader: inout LineReader, _ matched: [Int: [Int]], to out: Int32, path outPath: String,
                    gzip: GzipWriter?
                ) throws {
                    var buffer: [UInt8] = []
                    buffer.reserveCapacity(1 << 20)
                    func flush() throws {
                        guard !buffer.isEmpty else { return }
                        if let gzip {
                            try buffer.withUnsafeBytes { try gzip.write($0) }
                        } else {
                            try buffer.withUnsafeBytes { try FileSystem.writeAll(out, $0, path: outPath) }
                        }
                        buffer.removeAll(keepingCapacity: true)
                    }
                    var hits: [TextMatch] = []
                    try reader.forEachLine { line, number, _, terminator in
                        // Whole lines per write: an O_APPEND rescue never splits a line of ours.
                        if buffer.count >= 1 << 20 { try flush() }
                        func term() {
                            if terminator == 2 {
                                buffer += [0x0D, 0x0A]
                            } else if terminator == 1 {
                                buffer.append(0x0A)
                            }
                        }
                        guard let ks = matched[number] else {
                            buffer += line
                            term()
                            return
                        }
                        if strategy == .dropLine || strategy == .delete {
                            for k in ks { counts[k].deleted += 1 }
                            return
                        }
                        hits.removeAll(keepingCapacity: true)
                        text.scan(line, into: &hits)
                        linePatterns.scan(line, table: batch.table, scratch: &scratch, into: &hits)
                        let isJSON = settings.logFormat == .jsonl && line.first == UInt8(ascii: "{")
                        let inString = isJSON ? LogConnector.stringMask(line) : []
                        var pos = 0
                        for h in hits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound })
                        where h.range.lowerBound >= pos {
                            buffer += line[pos..<h.range.lowerBound]
                            if isJSON && !inString[h.range.lowerBound] {
                                buffer += [0x22] + placeholder + [0x22]  // a bare JSON number becomes a string
                            } else {
                                buffer += placeholder
                            }
                            pos = h.range.upperBound
                        }
                        buffer += line[pos...]
                        term()
                        for k in ks { counts[k].redacted += 1 }
                    }
                    try flush()
                }
                /// The bytes `range` of the (plain) source (read through `source`, the open descriptor's
                /// /proc path: the old inode, also after the rename), matched and rewritten with the same rules.
                func rewriteRange(
                    _ range: Range<Int64>, of source: String, to out: Int32, path outPath: String,
                    known: [Int: [Int]]? = nil
                ) throws {
                    guard !range.isEmpty else { return }
                    // The descriptor's /proc link is ours to follow (it names the file already opened).
                    let viaFD = SourceFile.Options(followSymlinks: true)
                    let m =
                        try known
                        ?? LogConnector.matchedLines(
                            scanSource(source, batch, range: range, options: viaFD).0, jobs: jobs.count)
                    var reader = try LineReader(path: source, options: viaFD)
                    reader.range = range
                    try rewriteLines(&reader, m, to: out, path: outPath, gzip: nil)
                }
                // With follow_symlinks, the link's target is rewritten and the link stays.
                let target = SourceFile.rewriteTarget(src, options: options)
                var reader = try LineReader(path: src, options: options)
                var failure: String?
                var r: AtomicRewrite.Result?
                if reader.isGzip {
                    // Not append-only: any change during the rewrite leaves it untouched (an error).
                    do {
                        r = try AtomicRewrite.rewrite(target) { _, outFD, tmp in
                            let gz = try GzipWriter(fd: outFD, path: tmp)
                            try rewriteLines(&reader, matched, to: outFD, path: tmp, gzip: gz)
                            try gz.finish()
                        }
                    } catch { failure = "\(error)" }
                } else {
                    let inFD = open(target, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
                    if inFD < 0 { throw DSARError.syscall("cannot open", path: target) }
                    defer { close(inFD) }
                    let old = "/proc/self/fd/\(inFD)"
                    do {
                        let a = try AtomicRewrite.rewriteAppendOnly(target, sourceFD: inFD) {
                            outFD, tmp, range, first in
                            if first {
                                // What the search read, with its matches; then whatever came after it.
                                let known = min(range.upperBound, scannedBytes)
                                try rewriteRange(0..<known, of: old, to: outFD, path: tmp, known: matched)
                                try rewriteRange(known..<range.upperBound, of: old, to: outFD, path: tmp)
                            } else {
                                try rewriteRange(range, of: old, to: outFD, path: tmp)
                            }
                        }
                        r = a.result
                        if a.rounds > 1 {
                            logger.info(
                                "lines appended during the rewrite were processed too",
                                metadata: ["file": "\(src)", "rounds": "\(a.rounds)"])
                        }
                        if a.result.changed {
                            failure = await reopen(src)
                            // Writers that kept the old file open until the reopen wrote into the old inode.
                            let rescue = try AtomicRewrite.rescueTail(
                                target, sourceFD: inFD, consumed: a.consumed,
                                settle: settings.reopenCommand.isEmpty ? 0.05 : 0.3
                            ) { out, path, range in
                                try rewriteRange(range, of: old, to: out, path: path)
                            }
                            if rescue.bytes > 0 {
                                logger.info(
                                    "lines written into the replaced file were appended to the new one",
                                    metadata: ["file": "\(src)", "bytes": "\(rescue.bytes)"])
                            }
                            let holders = AtomicRewrite.otherHolders(of: inFD)
                            if rescue.stillGrowing || !holders.isEmpty {
                                let who =
                                    holders.isEmpty
                                    ? "a process"
                                    : "process\(holders.count == 1 ? "" : "es") \(holders.prefix(5).joined(separator: ", "))"
                                let why =
                                    "\(src) was rewritten, but \(who) still \(rescue.stillGrowing ? "writes into" : "has open") the replaced file\(settings.reopenCommand.isEmpty ? " (set `reopen:` on the connector)" : " after the reopen command"): lines it writes there from now on are not in the log"
                                failure = [failure, why].compactMap { $0 }.joined(separator: "; ")
                            }
                        }
                    } catch {
                        // Before the rename: the file is untouched. After it: the rescue of the old inode failed.
                        failure =
                            r == nil
                            ? "\(error)"
                            : [
                                failure,
                                "\(src) was rewritten, but lines written into the replaced file could not be taken over: \(error)",
                            ].compactMap { $0 }.joined(separator: "; ")
                    }
                }
                if let r {
                    for k in results.indices {
                        results[k].deleted = counts[k].deleted
                        results[k].redacted = counts[k].redacted
                    }
                    FileErasure.stampHashes(&results, before: r.before, after: r.after)
                }
                // Verify.
                let again = try await scan(batch, logger: logger, onlySource: src)
                for (k, job) in jobs.enumerated() {
                    results[k].remaining = again[job.jobID]?.found.count ?? 0
                    if let failure, matched.values.contains(where: { $0.contains(k) }) { results[k].error = failure }
                }
            }
            FileErasure.collect(results, for: jobs, into: &out)
        }
        return out
    }

    /// Line number → indices of the jobs whose subject the line is about.
    static func matchedLines(_ c: FindingsCollector, jobs: Int) -> [Int: [Int]] {
        var matched: [Int: [Int]] = [:]
        for k in 0..<jobs {
            for r in c.byJob[k]?.found ?? [] { matched[r.line, default: []].append(k) }
        }
        return matched
    }

    /// Runs the `reopen:` command after `src` was replaced; nil, or why it failed.
    func reopen(_ src: String) async -> String? {
        guard !settings.reopenCommand.isEmpty else { return nil }
        let scratch = NSTemporaryDirectory() + "dsar-reopen-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileSystem.makeDirectory(scratch, mode: 0o700)
            defer { try? FileSystem.removeTree(scratch) }
            let r = try await Subprocess.run(
                settings.reopenCommand, stdin: [],
                environment: [
                    "DSAR_CONNECTOR_DIR": (config.file as NSString).deletingLastPathComponent, "DSAR_FILE": src,
                ],
                timeout: settings.reopenTimeout, scratchDir: scratch)
            if let why = r.failure(timeout: settings.reopenTimeout) {
                return
                    "\(src) was rewritten, but its reopen command failed (\(why)): writers that keep it open may still write into the replaced file"
            }
            return nil
        } catch {
            return
                "\(src) was rewritten, but its reopen command could not run (\(error)): writers that keep it open may still write into the replaced file"
        }
    }

    /// For each byte of a JSON line: is it inside a string literal?
    static func stringMask(_ line: UnsafeRawBufferPointer) -> [Bool] {
        var mask = [Bool](repeating: false, count: line.count)
        var inString = false
        var escaped = false
        for (k, b) in line.enumerated() {
            if inString {
                if escaped {
                    escaped = false
                } else if b == 0x5C {
                    escaped = true
                } else if b == 0x22 {
                    inString = false
                    continue
                }
                mask[k] = true
            } else if b == 0x22 {
                inString = true
            }
        }
        return mask
    }
}
