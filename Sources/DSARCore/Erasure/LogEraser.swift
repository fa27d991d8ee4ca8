import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

extension LogConnector: ErasingConnector {
    /// Log erasure: `redact` replaces every matched identifier token (every form that matched,
    /// URL-encoded too) with the placeholder and keeps the rest of the line (JSON lines stay valid
    /// JSON); `drop_line` removes the line; `retain` changes nothing. `.gz` files are rewritten as gzip.
    public func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        let batch = ScanBatch(jobs: jobs.map { ScanJob(jobID: $0.jobID, action: .delete, identifiers: $0.identifiers, dryRun: false, workDir: "") })
        let strategy = config.rules.erase
        var out: [String: [FileErasure]] = [:]
        // Everything of the subject is searched as text on redaction, whatever the configured types,
        // except types scoped to a context: of those exactly the capture is redacted.
        let scoped = Set(config.contextPatterns.map(\.type))
        let text = TextMatcher(table: batch.table, types: scoped.isEmpty ? nil : Set(batch.table.types).subtracting(scoped))
        let linePatterns = LinePatterns(config)
        var scratch: [UInt8] = []
        let placeholder = Array(config.placeholder.utf8)
        let options = config.sourceOptions
        for src in try config.erasableSources() {
            try Task.checkCancellation()
            var results = jobs.map { _ in FileErasure(connector: name, file: src, strategy: strategy.rawValue) }
            // Which lines match which jobs (the same matching as the search).
            var matched: [Int: [Int]] = [:]
            let found = try await scan(batch, logger: logger, onlySource: src)
            for (k, job) in jobs.enumerated() {
                for r in found[job.jobID]?.found ?? [] { matched[r.line, default: []].append(k) }
            }
            if strategy == .retain || matched.isEmpty {
                for (line, ks) in matched { _ = line; for k in ks { results[k].retained += 1 } }
                for k in results.indices {
                    results[k].remaining = results[k].retained
                    if strategy == .retain { results[k].reason = config.rules.reason }
                }
            } else {
                var reader = try LineReader(path: src, options: options)
                let gzip = reader.isGzip
                var hits: [TextMatch] = []
                let r = try AtomicRewrite.rewrite(SourceFile.rewriteTarget(src, options: options)) { _, outFD, tmp in
                    let gz = gzip ? try GzipWriter(fd: outFD, path: tmp) : nil
                    func emit(_ p: UnsafeRawBufferPointer) throws {
                        if let gz { try gz.write(p) } else { try FileSystem.writeAll(outFD, p, path: tmp) }
                    }
                    try reader.forEachLine { line, number, _, terminator in
                        let termBytes: [UInt8] = terminator == 2 ? [0x0D, 0x0A] : terminator == 1 ? [0x0A] : []
                        guard let ks = matched[number] else {
                            try emit(line)
                            try termBytes.withUnsafeBytes { try emit($0) }
                            return
                        }
                        if strategy == .dropLine || strategy == .delete {
                            for k in ks { results[k].deleted += 1 }
                            return
                        }
                        hits.removeAll(keepingCapacity: true)
                        text.scan(line, into: &hits)
                        linePatterns.scan(line, table: batch.table, scratch: &scratch, into: &hits)
                        let isJSON = config.logFormat == .jsonl && line.first == UInt8(ascii: "{")
                        let inString = isJSON ? LogConnector.stringMask(line) : []
                        var newLine: [UInt8] = []
                        var pos = 0
                        for h in hits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) where h.range.lowerBound >= pos {
                            newLine += line[pos..<h.range.lowerBound]
                            if isJSON && !inString[h.range.lowerBound] {
                                newLine += [0x22] + placeholder + [0x22]  // a bare JSON number becomes a string
                            } else {
                                newLine += placeholder
                            }
                            pos = h.range.upperBound
                        }
                        newLine += line[pos...]
                        for k in ks { results[k].redacted += 1 }
                        try (newLine + termBytes).withUnsafeBytes { try emit($0) }
                    }
                    try gz?.finish()
                }
                // Verify.
                let again = try await scan(batch, logger: logger, onlySource: src)
                for (k, job) in jobs.enumerated() { results[k].remaining = again[job.jobID]?.found.count ?? 0 }
                FileErasure.stampHashes(&results, before: r.before, after: r.after)
            }
            FileErasure.collect(results, for: jobs, into: &out)
        }
        return out
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
