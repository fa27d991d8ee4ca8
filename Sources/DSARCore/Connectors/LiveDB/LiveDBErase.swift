import Foundation
import Logging

extension LiveDBConnector {
    /// Erases every delete job of the batch in ONE transaction: finds the rows again (locking
    /// them), deletes / redacts them by primary key children first, searches again inside the same
    /// transaction and commits only when nothing but retained rows remains; otherwise rolls back and
    /// every job gets a ``FileErasure`` with the reason (job PARTIAL). Dry-run jobs run the same
    /// statements in a transaction of their own that is always rolled back.
    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        var out: [String: [FileErasure]] = [:]
        for group in [jobs.filter { !$0.dryRun }, jobs.filter(\.dryRun)] where !group.isEmpty {
            let this = self
            let r = try await LiveThread.run(
                settings, connector: name, readOnly: false, timeoutSeconds: connectSeconds, logger: logger
            ) { db in
                try this.eraseTransaction(db, group, dryRun: group[0].dryRun, logger: logger)
            }
            for (k, v) in r { out[k, default: []] += v }
        }
        return out
    }

    /// The tables in erase order: `order:` first, else children before parents by the catalog's
    /// foreign keys (a cycle is an error naming its constraints).
    func eraseOrder(_ db: any LiveDatabase) throws -> [String] {
        let tables = settings.live.tableOrder
        if let o = settings.live.order { return o + tables.filter { !o.contains($0) } }
        let fks = try db.foreignKeys(among: tables).filter { $0.child != $0.parent }
        var done: [String] = []
        var left = tables
        while !left.isEmpty {
            // A table goes when every table referencing it has gone.
            guard
                let next = left.first(where: { t in
                    !fks.contains { $0.parent == t && $0.child != t && left.contains($0.child) }
                })
            else {
                let cycle = fks.filter { left.contains($0.child) && left.contains($0.parent) }
                throw DSARError(
                    .config,
                    "connector \(name): the foreign keys of \(left.joined(separator: ", ")) form a cycle (\(cycle.map { "\($0.constraint): \($0.child) → \($0.parent)" }.joined(separator: ", "))); set `order:` on the connector (children first)"
                )
            }
            done.append(next)
            left.removeAll { $0 == next }
        }
        return done
    }

    /// One erasure transaction on `db` (see ``erase(_:logger:)``).
    func eraseTransaction(
        _ db: any LiveDatabase, _ jobs: [EraseJob], dryRun: Bool, logger: Logger
    ) throws -> [String:
        [FileErasure]]
    {
        let ids = jobs.flatMap(\.identifiers)
        let batch = ScanBatch(erasing: jobs)
        try applyTimeouts(db)
        let order = try eraseOrder(db)
        try db.begin(readOnly: false)
        var open = true
        defer { if open { try? db.rollback() } }
        var results: [String: [FileErasure]] = [:]
        do {
            for t in order {
                guard let rules = settings.live.tables[t] else { continue }
                results[t] = try eraseTable(db, batch, jobs, table: t, rules: rules)
            }
        } catch {
            throw failure(error, "the erasure (rolled back, nothing was changed)", ids)
        }
        CrashPoint.hit("live.erased")
        // The same transaction searches again for every identifier of every job.
        var remaining: [String: [Int]] = [:]
        do {
            for t in order {
                guard let m = try match(db, batch, table: t, lockRows: false) else { continue }
                var per = Array(repeating: 0, count: jobs.count)
                for (k, hits, _) in m.hits {
                    for h in hits { per[h.job] += m.rows.multiplicity[k] }
                }
                remaining[t] = per
            }
        } catch {
            throw failure(error, "the search before COMMIT (rolled back, nothing was changed)", ids)
        }
        var unexpected = false
        for t in order {
            guard var r = results[t] else { continue }
            for k in r.indices {
                r[k].remaining = remaining[t]?[k] ?? 0
                if r[k].remaining > r[k].retained { unexpected = true }
            }
            results[t] = r
        }
        if unexpected {
            try db.rollback()
            open = false
            for t in order {
                guard var r = results[t] else { continue }
                for k in r.indices {
                    let left = r[k].remaining - r[k].retained
                    r[k].error =
                        left > 0
                        ? "\(left) row(s) of the subject remain in \(t) after the statements (not retained): the transaction was rolled back, nothing was changed"
                        : "rolled back, nothing was changed: rows of the subject remain in another table of \(target)"
                    r[k].remaining = r[k].deleted + r[k].redacted + r[k].retained
                    r[k].deleted = 0
                    r[k].redacted = 0
                }
                results[t] = r
            }
            logger.error("live erasure rolled back", metadata: ["connector": "\(name)"])
        } else {
            CrashPoint.hit("live.verified")
            if dryRun {
                try db.rollback()
                for t in order {
                    for k in results[t]?.indices ?? [].indices {
                        results[t]![k].detail = "dry run: the statements ran and were rolled back"
                    }
                }
            } else {
                do { try db.commit() } catch { throw failure(error, "COMMIT", ids) }
            }
            open = false
        }
        var out: [String: [FileErasure]] = [:]
        for t in order { if let r = results[t] { FileErasure.collect(r, for: jobs, into: &out) } }
        return out
    }

    /// Deletes, redacts or retains one table's rows of the batch; the counts per job.
    func eraseTable(
        _ db: any LiveDatabase, _ batch: ScanBatch, _ jobs: [EraseJob], table t: String, rules: RecordRules
    )
        throws -> [FileErasure]
    {
        var r = jobs.map { _ in FileErasure(connector: name, file: target, table: t, strategy: rules.erase) }
        guard let m = try match(db, batch, table: t, lockRows: rules.erase != .retain) else {
            throw DSARError(.processing, "connector \(name): table \"\(t)\" does not exist in \(target)")
        }
        if !m.missing.isEmpty && rules.erase != .retain {
            throw DSARError(
                .config,
                "connector \(name): table \"\(t)\" has no column \(m.missing.map { "\"\($0)\"" }.joined(separator: ", ")) in \(target)"
            )
        }
        var deletes: [Int] = []
        var updates: [[String]: [Int]] = [:]
        for (k, hits, _) in m.hits {
            let n = m.rows.multiplicity[k]
            let textOnly = !hits.contains { $0.structured }
            let textColumns = Array(Set(hits.flatMap { $0.textRanges.map { m.names[$0.column] } })).sorted()
            switch rules.erase {
            case .retain, .plugin:
                for h in hits {
                    r[h.job].retained += n
                    r[h.job].reason = rules.reason
                }
            case .delete, .dropLine:
                if textOnly {
                    updates[textColumns, default: []].append(k)
                    for h in hits { r[h.job].redacted += n }
                } else {
                    deletes.append(k)
                    for h in hits { r[h.job].deleted += n }
                }
            case .redact:
                updates[textOnly ? textColumns : rules.redact, default: []].append(k)
                for h in hits { r[h.job].redacted += n }
            }
        }
        let rowsKey = try rowKey(m, table: t)
        if !deletes.isEmpty {
            try addressed(db, m, rowsKey, deletes, table: t, verb: "DELETE") {
                "DELETE FROM \(db.quote(t)) WHERE " + $0
            }
        }
        for cols in updates.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            var set: [String] = []
            var params: [LiveParam] = []
            for c in cols {
                let kind = m.rows.columns.first { $0.name == c }?.kind ?? .other
                if kind == .text {
                    params.append(.text(config.placeholder))
                    set.append("\(db.quote(c)) = \(db.placeholder(params.count))")
                } else {
                    set.append("\(db.quote(c)) = NULL")
                }
            }
            let head = "UPDATE \(db.quote(t)) SET \(set.joined(separator: ", ")) WHERE "
            try addressed(db, m, rowsKey, updates[cols]!, table: t, verb: "UPDATE", leading: params) { head + $0 }
        }
        return r
    }

    /// The columns that address a row: the primary key, else every column that can be bound.
    func rowKey(_ m: TableMatch, table: String) throws -> [Int] {
        if !m.rows.primaryKey.isEmpty {
            let idx = m.rows.primaryKey.compactMap { m.names.firstIndex(of: $0) }
            for i in idx where m.rows.columns[i].kind == .bytes {
                throw DSARError(
                    .config,
                    "connector \(name): table \"\(table)\" has a binary primary key column \"\(m.names[i])\"; rows cannot be addressed"
                )
            }
            return idx
        }
        // No primary key: by all column values (binary and JSON columns cannot be compared).
        let idx = m.rows.columns.indices.filter { ![.bytes, .json].contains(m.rows.columns[$0].kind) }
        if idx.isEmpty {
            throw DSARError(
                .config,
                "connector \(name): table \"\(table)\" has no primary key and no column rows can be addressed by; add a primary key"
            )
        }
        return idx
    }

    /// Runs `sql(where)` for the rows `rows` (chunked under the engine's parameter limit) and
    /// checks that it changed exactly as many rows as were found (else: error, rolled back).
    func addressed(
        _ db: any LiveDatabase, _ m: TableMatch, _ key: [Int], _ rows: [Int], table: String, verb: String,
        leading: [LiveParam] = [], _ sql: (String) -> String
    ) throws {
        let perRow = max(1, key.count)
        let size = max(1, (min(db.maxParameters, 10_000) - leading.count) / perRow)
        var start = 0
        while start < rows.count {
            let chunk = Array(rows[start..<min(rows.count, start + size)])
            start += size
            var params = leading
            var terms: [String] = []
            var expected = 0
            for k in chunk {
                expected += m.rows.multiplicity[k]
                var parts: [String] = []
                for i in key {
                    let col = db.quote(m.names[i])
                    switch LiveDBConnector.param(m.rows.rows[k][i]) {
                    case .null: parts.append("\(col) IS NULL")
                    case let p:
                        params.append(p)
                        parts.append("\(col) = \(db.placeholder(params.count))")
                    }
                }
                terms.append(parts.count == 1 ? parts[0] : "(" + parts.joined(separator: " AND ") + ")")
            }
            let changed: Int
            do {
                changed = try db.execute(sql(terms.joined(separator: " OR ")), params)
            } catch {
                throw constraintFailure(error, db, verb: verb, table: table)
            }
            if changed != expected {
                throw DSARError(
                    .verification,
                    "connector \(name): \(verb) on \"\(table)\" changed \(changed) row(s), expected \(expected): rolled back, nothing was changed"
                )
            }
        }
    }

    /// A failed statement, with the foreign keys that may be why.
    func constraintFailure(_ error: any Error, _ db: any LiveDatabase, verb: String, table: String) -> any Error {
        let e = (error as? DSARError) ?? DSARError(.processing, "\(error)", cause: error)
        let fks = (try? db.foreignKeys(among: settings.live.tableOrder + [table])) ?? []
        let related = fks.filter { $0.parent == table || $0.child == table }
        let hint =
            related.isEmpty
            ? ""
            : " (foreign keys: \(related.map { "\($0.constraint): \($0.child) → \($0.parent)" }.joined(separator: ", ")))"
        return DSARError(e.code, "\(verb) on \"\(table)\": \(e.message)\(hint)", path: e.path, cause: e)
    }

    /// A key value as a bound parameter.
    static func param(_ v: LiveValue) -> LiveParam {
        switch v {
        case .null: .null
        case .integer(let i): .integer(i)
        case .decimal(let s), .text(let s), .timestamp(let s), .json(let s): .text(s)
        case .bool(let b): .text(b ? "true" : "false")
        case .bytes(let b): .text(String(decoding: b, as: UTF8.self))
        }
    }
}
