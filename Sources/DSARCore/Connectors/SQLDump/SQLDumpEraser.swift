import Foundation
import Logging

extension SQLDumpConnector: ErasingConnector {
    /// One strategy per configured table, in the order of the YAML file.
    package var eraseStrategies: [EraseStrategyEntry] {
        settings.tableOrder.compactMap { t in
            settings.tables[t].map { EraseStrategyEntry(table: t, strategy: $0.erase, reason: $0.reason) }
        }
    }

    /// SQL dump erasure per table: `delete` removes the rows (COPY lines, INSERT tuples; an INSERT
    /// that loses all its rows disappears), `redact` rewrites the listed columns (placeholder for
    /// text, NULL otherwise), `retain` changes nothing. A row that matched only through a `text:`
    /// column is someone else's row mentioning the subject: only those text columns are redacted.
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        let batch = ScanBatch(erasing: jobs)
        var out: [String: [FileErasure]] = [:]
        let options = config.sourceOptions
        for src in try config.erasableSources() {
            try Task.checkCancellation()
            var results: [String: [FileErasure]] = [:]  // table → per job
            func result(_ table: String) -> [FileErasure] {
                results[table]
                    ?? jobs.map { _ in
                        FileErasure(
                            connector: name, file: src, table: table, strategy: settings.tables[table]?.erase ?? .delete
                        )
                    }
            }
            var plan = SQLRewritePlan()
            var reader = try SQLDumpReader(path: src, dialect: settings.dialect, options: options)
            let dialect = reader.dialect
            var matchers: [String: RowMatcher] = [:]
            for (t, rules) in settings.tables {
                matchers[t] = RowMatcher(rules: rules, table: batch.table, origin: "\(name).\(t)")
            }
            try reader.forEachRow { row in
                guard var matcher = matchers[row.table], let rules = settings.tables[row.table] else { return }
                matcher.bind(columns: row.columns)
                let hits = matcher.match(row.values.map(SQLDumpConnector.bytes))
                matchers[row.table] = matcher
                guard !hits.isEmpty else { return }
                var r = result(row.table)
                let textOnly = !hits.contains { $0.structured }
                switch rules.erase {
                case .retain, .plugin:  // (.plugin is never configured for this kind: change nothing)
                    for h in hits {
                        r[h.job].retained += 1
                        r[h.job].reason = rules.reason
                    }
                case .delete, .dropLine:
                    if textOnly {
                        let cols = Array(Set(hits.flatMap { $0.textRanges.map(\.column) })).sorted()
                        plan.add(row, .redact(columns: cols, placeholder: config.placeholder))
                        for h in hits { r[h.job].redacted += 1 }
                    } else {
                        plan.add(row, .delete)
                        for h in hits { r[h.job].deleted += 1 }
                    }
                case .redact:
                    let cols =
                        textOnly
                        ? Array(Set(hits.flatMap { $0.textRanges.map(\.column) })).sorted()
                        : rules.redact.compactMap { row.columns.firstIndex(of: $0) }
                    plan.add(row, .redact(columns: cols, placeholder: config.placeholder))
                    for h in hits { r[h.job].redacted += 1 }
                }
                results[row.table] = r
            }
            if !plan.isEmpty {
                let target = SourceFile.rewriteTarget(src, options: options)
                let rw = try AtomicRewrite.rewrite(target) { _, outFD, tmp in
                    _ = try SQLRewriter.rewrite(
                        source: target, dialect: dialect, plan: plan, output: outFD, outputPath: tmp)
                }
                // Verify: search the rewritten dump again for every identifier of every job.
                let again = try await scan(batch, logger: logger)
                var remaining: [String: [Int]] = [:]
                for (k, job) in jobs.enumerated() {
                    for rec in again[job.jobID]?.found ?? [] where rec.source == src {
                        remaining[rec.table, default: Array(repeating: 0, count: jobs.count)][k] += 1
                    }
                }
                for (t, var r) in results {
                    for k in r.indices { r[k].remaining = remaining[t]?[k] ?? 0 }
                    FileErasure.stampHashes(&r, before: rw.before, after: rw.after)
                    results[t] = r
                }
            } else {
                for (t, var r) in results {
                    for k in r.indices { r[k].remaining = r[k].retained }
                    results[t] = r
                }
            }
            for t in results.keys.sorted() { FileErasure.collect(results[t]!, for: jobs, into: &out) }
        }
        return out
    }
}
