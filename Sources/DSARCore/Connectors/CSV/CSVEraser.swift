import Foundation
import Logging

extension CSVConnector: ErasingConnector {
    /// One strategy for every row (`erase:`).
    package var eraseStrategies: [EraseStrategyEntry] {
        [EraseStrategyEntry(strategy: settings.rules.erase, reason: settings.rules.reason)]
    }

    /// CSV erasure: `delete` drops the rows, `redact` overwrites the listed columns with the
    /// placeholder, `retain` changes nothing. Header, quoting and every untouched row stay byte-identical.
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        let batch = ScanBatch(erasing: jobs)
        var out: [String: [FileErasure]] = [:]
        let strategy = settings.rules.erase
        let options = config.sourceOptions
        for src in try config.erasableSources() {
            try Task.checkCancellation()
            var results = jobs.map { _ in FileErasure(connector: name, file: src, strategy: strategy) }
            let delimiter = try settings.delimiter ?? CSVReader.detectDelimiter(path: src, options: options)
            var edits: [(range: Range<Int64>, bytes: [UInt8])] = []
            let redactNames = settings.rules.redact
            try scan(src, delimiter: delimiter, batch: batch) { rec, hits, columns in
                // A row that matched only through free text is someone else's record mentioning the
                // subject: never delete it; overwrite the text columns that mention them instead.
                let textOnly = !hits.contains { $0.structured }
                var effective = strategy
                var redactIdx = Set(redactNames.compactMap { columns.firstIndex(of: $0) })
                if textOnly && strategy != .retain {
                    effective = .redact
                    redactIdx = Set(hits.flatMap { $0.textRanges.map(\.column) })
                }
                switch effective {
                case .retain, .plugin:  // (.plugin is never configured for this kind: change nothing)
                    for h in hits { results[h.job].retained += 1 }
                case .delete, .dropLine:
                    edits.append((rec.range.start..<rec.range.end, []))
                    for h in hits { results[h.job].deleted += 1 }
                case .redact:
                    var fields: [[UInt8]] = []
                    for (k, f) in rec.fields.enumerated() {
                        if redactIdx.contains(k) {
                            let p = CSVWriter.field(Array(config.placeholder.utf8), delimiter: delimiter)
                            fields.append(rec.wasQuoted[k] && p.first != 0x22 ? [0x22] + p + [0x22] : p)
                        } else if rec.wasQuoted[k] {
                            var q: [UInt8] = [0x22]
                            for b in f {
                                q.append(b)
                                if b == 0x22 { q.append(0x22) }
                            }
                            fields.append(q + [0x22])
                        } else {
                            fields.append(f)
                        }
                    }
                    let termLen = Int(rec.range.end - (rec.fieldRanges.last?.end ?? rec.range.end))
                    let term: [UInt8] = termLen == 2 ? [0x0D, 0x0A] : termLen == 1 ? [0x0A] : []
                    var bytes: [UInt8] = []
                    for (k, f) in fields.enumerated() {
                        if k > 0 { bytes.append(delimiter) }
                        bytes += f
                    }
                    edits.append((rec.range.start..<rec.range.end, bytes + term))
                    for h in hits { results[h.job].redacted += 1 }
                }
            }
            if strategy == .retain {
                for k in results.indices {
                    results[k].reason = settings.rules.reason
                    results[k].remaining = results[k].retained
                }
            } else if !edits.isEmpty {
                let r = try AtomicRewrite.rewrite(SourceFile.rewriteTarget(src, options: options)) { inFD, outFD, tmp in
                    try AtomicRewrite.splice(from: inFD, path: src, edits: edits) {
                        try FileSystem.writeAll(outFD, $0, path: tmp)
                    }
                }
                // Verify: search the new file for every identifier of every job again.
                try scan(src, delimiter: delimiter, batch: batch) { _, hits, _ in
                    for h in hits { results[h.job].remaining += 1 }
                }
                FileErasure.stampHashes(&results, before: r.before, after: r.after)
            }
            FileErasure.collect(results, for: jobs, into: &out)
        }
        return out
    }

    /// Every record of `src` that matches a job, with the hits and the column names.
    func scan(
        _ src: String, delimiter: UInt8, batch: ScanBatch,
        _ body: (CSVRecord, [RowMatcher.JobHit], [String]) throws -> Void
    ) throws {
        var reader = try CSVReader(
            path: src, delimiter: delimiter, hasHeader: settings.header, options: config.sourceOptions)
        let header = reader.header
        var matcher = RowMatcher(rules: settings.rules, table: batch.table, origin: name)
        var columns: [String] = []
        var failure: Error?
        try reader.forEachRecord(
            { rec in
                if columns.isEmpty || columns.count != rec.fields.count {
                    columns = header ?? (1...max(1, rec.fields.count)).map(String.init)
                    matcher.bind(columns: columns)
                }
                let hits = matcher.match(rec.fields)
                if !hits.isEmpty {
                    do { try body(rec, hits, columns) } catch { failure = error }
                }
            }, onProblem: { _ in })
        if let failure { throw failure }
    }
}
