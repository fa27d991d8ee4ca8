import Foundation
import Logging

/// Carries out the erasure of a segment's delete jobs: keeps their identity sets, runs every
/// erasing connector once for all of them, then searches again (the second search) for what must
/// be gone.
struct ErasureCoordinator {
    let layout: SpoolLayout
    let connectors: [any Connector]
    let runner: ConnectorRunner
    let audit: any AuditSink
    let logger: Logger
    /// Scrubs every identifier of the running batch from error text.
    let logScrubber: LogScrubber

    /// Before any source changes: merges what the scans derived into each delete job's identity set
    /// and writes it next to the request (`active/<job-id>.identity.json`, one fsync of `active/` for
    /// all), so that a retry after a partial erasure still knows identifiers whose link is erased.
    func keepClosures(_ ids: [String], _ closures: inout [String: IdentityClosure], _ scanned: ScanResult) throws {
        guard !ids.isEmpty else { return }
        for id in ids {
            closures[id]!.merge(scanned.derived[id] ?? [])
            try closures[id]!.write(layout.activeIdentity(id), syncDirectory: false)
        }
        try FileSystem.syncDirectory(layout.active)
        CrashPoint.hit("identity.written")
    }

    /// Erases, then verifies with the second search: each job's outcome with its verification gaps.
    func eraseAndVerify(_ jobs: [EraseJob], subjects: [String: String]) async throws -> [String: ErasureOutcome] {
        var erasure = try await eraseAll(jobs, subjects: subjects)
        for (id, gaps) in try await verifyErasure(jobs, subjects: subjects) { erasure[id]?.verification = gaps }
        return erasure
    }

    /// A dry run's erasure where it can be undone: each connector that rehearses (a transaction rolled
    /// back) runs the statements for the dry-run delete jobs; nothing is journaled as erased, since
    /// nothing changed. Other connectors are left out (their dry run reports what the search found).
    func rehearse(_ jobs: [EraseJob]) async -> [String: ErasureOutcome] {
        var out: [String: ErasureOutcome] = [:]
        let rehearsing = connectors.compactMap { $0 as? any ErasingConnector }.filter(\.rehearsesErasure)
        guard !jobs.isEmpty, !rehearsing.isEmpty else { return out }
        for j in jobs { out[j.jobID] = ErasureOutcome(files: [], errors: [:]) }
        for c in rehearsing {
            do {
                let results = try await c.erase(jobs, logger: logger)
                for j in jobs {
                    for var f in results[j.jobID] ?? [] {
                        f.detail = f.detail.map { scrubbed($0, j.identifiers) }
                        f.error = f.error.map { scrubbed($0, j.identifiers) }
                        if let e = f.error { out[j.jobID]!.errors[c.name] = e }
                        out[j.jobID]!.files.append(f)
                    }
                }
            } catch {
                for j in jobs { out[j.jobID]!.errors[c.name] = scrubbed("\(error)", j.identifiers) }
            }
        }
        return out
    }

    /// Runs every erasing connector once for all delete jobs of a segment; journals each changed file.
    func eraseAll(_ jobs: [EraseJob], subjects: [String: String]) async throws -> [String: ErasureOutcome] {
        var out: [String: ErasureOutcome] = [:]
        for j in jobs { out[j.jobID] = ErasureOutcome(files: [], errors: [:]) }
        for c in connectors {
            guard let e = c as? any ErasingConnector else {
                for j in jobs { out[j.jobID]!.errors[c.name] = "this connector cannot erase" }
                continue
            }
            do {
                let results = try await e.erase(jobs, logger: logger)
                for j in jobs {
                    for var f in results[j.jobID] ?? [] {
                        f.detail = f.detail.map { scrubbed($0, j.identifiers) }
                        f.error = f.error.map { scrubbed($0, j.identifiers) }
                        if let e = f.error {
                            // A file that could not be erased, or a failed `reopen:`: the job is PARTIAL with the reason.
                            out[j.jobID]!.errors[c.name] = (out[j.jobID]!.errors[c.name].map { $0 + "; " } ?? "") + e
                        }
                        out[j.jobID]!.files.append(f)
                        try audit.append(AuditEvent.fileErasure(job: j.jobID, subject: subjects[j.jobID], f))
                    }
                }
            } catch {
                logger.error("erasure failed", metadata: ["connector": "\(c.name)", "error": "\(error)"])
                for j in jobs {
                    let reason = scrubbed("\(error)", j.identifiers)
                    out[j.jobID]!.errors[c.name] = reason
                    try audit.append(
                        AuditEvent.connectorEraseFailed(
                            job: j.jobID, subject: subjects[j.jobID], connector: c.name, reason: reason))
                }
            }
        }
        return out
    }

    /// The second search after erasure: every file connector searches its sources again for every
    /// identifier of each delete job (derived ones included), structured and raw. A record found
    /// outside a retained table, a raw occurrence outside every retained record, a source that
    /// cannot be read completely, or a failed search is a gap: the receipt cannot say "0 remaining".
    /// (Plugins report their own remaining counts.)
    func verifyErasure(_ jobs: [EraseJob], subjects: [String: String]) async throws -> [String: [CoverageGap]] {
        var out: [String: [CoverageGap]] = [:]
        let searchers = connectors.filter(\.searchedAgainAfterErasure)
        guard !jobs.isEmpty, !searchers.isEmpty else { return out }
        let batch = ScanBatch(erasing: jobs)
        let results = await runner.run(searchers, batch: batch, logger: logger)
        var events: [AuditEvent] = []
        for j in jobs {
            var gaps: [CoverageGap] = []
            for (c, r) in zip(searchers, results) {
                if let e = r.error {
                    gaps.append(
                        CoverageGap(
                            kind: .remaining, connector: r.name, file: nil,
                            message: "the search after erasure failed: \(scrubbed(e.message, j.identifiers))"))
                    continue
                }
                guard let f = r.findings[j.jobID] else { continue }
                for rec in f.found where !c.retains(table: rec.table) {
                    gaps.append(
                        CoverageGap(
                            kind: .remaining, connector: r.name, file: rec.source, line: rec.line,
                            message:
                                "a record of the subject is still there after erasure (\(rec.matchedOn.joined(separator: ", ")))"
                        ))
                }
                for g in f.gaps {
                    var g = g
                    if g.kind == .unmatched {
                        g.kind = .remaining
                        g.message =
                            "the subject's \(g.type ?? "identifier") is still in the file after erasure, outside every retained record"
                    }
                    gaps.append(g)
                }
            }
            out[j.jobID] = gaps
            events.append(
                AuditEvent.erasureVerified(
                    job: j.jobID, subject: subjects[j.jobID], connectors: searchers.count,
                    sourceFiles: results.reduce(0) { $0 + ($1.findings[j.jobID]?.coverage.count ?? 0) },
                    gaps: gaps.count))
        }
        try audit.append(contentsOf: events)
        return out
    }

    /// Error text made safe for records, receipts and the journal: without the job's own identifiers
    /// nor those of any other job of the batch.
    func scrubbed(_ text: String, _ ids: [Identifier]) -> String {
        logScrubber.scrubber.scrub(Processor.scrub(text, ids))
    }
}
