import Foundation
import Logging

extension LiveDBConnector {
    /// Where the connector connects (receipts, coverage, findings' `source`); never a password.
    package var target: String { settings.target }

    /// Seconds connecting may take.
    var connectSeconds: Double { min(config.timeoutSeconds, 30) }

    /// Sets `lock_timeout` (default 10 s) and `statement_timeout` (default: the connector's `timeout`).
    func applyTimeouts(_ db: any LiveDatabase) throws {
        let lock = settings.live.lockTimeoutSeconds ?? 10
        let statement = settings.live.statementTimeoutSeconds ?? config.timeoutSeconds
        try db.setTimeouts(
            lockMilliseconds: Int((lock * 1000).rounded(.up)),
            statementMilliseconds: Int((statement * 1000).rounded(.up)))
    }

    /// One table's candidate rows and, per row, how the batch's jobs matched it.
    struct TableMatch {
        var rows: LiveSearch.Rows
        var hits: [(row: Int, hits: [RowMatcher.JobHit], values: [[UInt8]?])]
        var missing: [String]
        var names: [String] { rows.columns.map(\.name) }
    }

    /// Searches `table` for the batch (pushdown, then exact confirmation); nil: no such table.
    func match(_ db: any LiveDatabase, _ batch: ScanBatch, table: String, lockRows: Bool) throws -> TableMatch? {
        guard let rules = settings.live.tables[table] else { return nil }
        var missing: [String] = []
        let search = LiveSearch(db: db, batch: batch, lockRows: lockRows)
        guard let rows = try search.rows(of: table, rules: rules, missing: &missing) else { return nil }
        var m = TableMatch(rows: rows, hits: [], missing: missing)
        var matcher = RowMatcher(rules: rules, table: batch.table, origin: "\(name).\(table)")
        matcher.bind(columns: m.names)
        for (k, row) in rows.rows.enumerated() {
            let values = row.map(LiveSearch.matchBytes)
            let hits = matcher.match(values)
            if !hits.isEmpty { m.hits.append((k, hits, values)) }
        }
        return m
    }

    /// Searches the live database once for every job of the batch: one read-only transaction,
    /// `statement_timeout`/`lock_timeout` set; one coverage entry per table.
    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        let this = self
        return try await LiveThread.run(
            settings, connector: name, readOnly: true, timeoutSeconds: connectSeconds, logger: logger
        ) { db in
            try this.applyTimeouts(db)
            try db.begin(readOnly: true)
            do {
                let result = try this.search(db, batch)
                try db.commit()
                return result
            } catch {
                try? db.rollback()
                throw this.failure(error, "the search", batch.jobs.flatMap(\.identifiers))
            }
        }
    }

    /// The search on an open transaction (also the second search inside an erasure).
    func search(_ db: any LiveDatabase, _ batch: ScanBatch) throws -> [String: ConnectorFindings] {
        var collector = FindingsCollector(batch: batch)
        for t in settings.live.tableOrder {
            guard let rules = settings.live.tables[t] else { continue }
            guard let m = try match(db, batch, table: t, lockRows: false) else {
                collector.sourceGaps.append(
                    CoverageGap(
                        kind: .missingColumn, connector: name, file: target,
                        message: "table \"\(t)\" does not exist in \(target)"))
                continue
            }
            for c in m.missing {
                let hint = ConfigSuggest.didYouMean(c, among: m.names).map { " (did you mean \"\($0)\"?)" } ?? ""
                collector.sourceGaps.append(
                    CoverageGap(
                        kind: .missingColumn, connector: name, file: target,
                        message:
                            "table \"\(t)\" has no column \"\(c)\"\(hint); it has: \(m.names.joined(separator: ", "))"))
            }
            // Rows the role cannot see were not searched: no statement about this table is possible.
            if let why = try db.rowFilter(on: t) {
                collector.sourceGaps.append(
                    CoverageGap(kind: .unreadable, connector: name, file: target, message: "table \"\(t)\": \(why)"))
            }
            var matcher = RowMatcher(rules: rules, table: batch.table, origin: "\(name).\(t)")
            matcher.bind(columns: m.names)
            for (k, hits, values) in m.hits {
                let fields = zip(m.names, m.rows.rows[k]).map { JSONMember(key: $0, value: LiveSearch.json($1)) }
                for _ in 0..<m.rows.multiplicity[k] {
                    for h in hits {
                        let r = FoundRecord(
                            table: t, source: target, line: 0, fields: fields, matchedOn: h.matchedOn,
                            mention: h.mention, textFields: h.textFields { m.names[$0] })
                        collector.add(h.job, r, derived: matcher.derived(values, hit: h, known: collector.known[h.job]))
                    }
                }
            }
            collector.coverage.append(
                SourceCoverage(file: "\(target)#\(t)", bytes: 0, sha256: nil, records: m.rows.rows.count))
        }
        return collector.result(bytesScanned: 0, extra: ["target": target])
    }

    /// An error of the database as a ``DSARError`` naming the connector and what failed, the
    /// server's message scrubbed of the batch's identifiers (a server may echo a key value).
    func failure(_ error: any Error, _ what: String, _ ids: [Identifier]) -> any Error {
        if error is CancellationError { return error }
        let e = (error as? DSARError) ?? DSARError(.processing, "\(error)", cause: error)
        if e.message.hasPrefix("connector \(name):") { return e }
        let message = IdentifierScrubber(ids).scrub(e.message)
        return DSARError(e.code, "connector \(name): \(what) in \(target) failed: \(message)", path: e.path, cause: e)
    }
}

extension LiveDBConnector {
    /// The text the `text:` prefilter looks for on the server for `id` (nil: the column is read
    /// unfiltered); every spelling of `id` the exact matcher accepts contains it, case aside.
    package static func prefilterNeedle(_ id: Identifier) -> String? { LiveSearch.needle(id)?.lowercased() }
}
