import Foundation
import Logging

/// What the connectors found, per job, after identity expansion reached its fixpoint.
struct ScanResult: Sendable {
    var results: [String: [ConnectorOutcome]] = [:]
    var derived: [String: [(Identifier, String)]] = [:]
    /// What the scans cost, per connector (merged into the process's ``RunStats``).
    var totals: [String: RunStats.ConnectorTotals] = [:]
}

/// Thrown when a stop's grace period ends during a scan.
struct GraceExpired: Error {}

/// Runs the connectors over a segment's jobs with identity expansion: jobs whose rows revealed
/// new identifiers are scanned again with the larger set, until nothing new appears (bounded by
/// ``maxRounds``). Journals each round's starts and outcomes in one write each.
struct ScanCoordinator {
    let connectors: [any Connector]
    let runner: ConnectorRunner
    let audit: any AuditSink
    let logger: Logger
    /// Scrubs the batch's identifiers from the log and from connector errors; grows with derived ones.
    let logScrubber: LogScrubber
    let progress: ScanProgress?
    /// Maximum scan rounds: the first, plus re-scans for jobs whose identity grew.
    let maxRounds: Int

    /// Scans `scanJobs`; `batchIdentifiers` (every identifier of the batch) grows by the derived ones.
    func scan(
        _ scanJobs: [ScanJob], subjects: [String: String], stop: StopPolicy = .never,
        batchIdentifiers: inout Set<Identifier>
    ) async throws -> ScanResult {
        var out = ScanResult()
        var round = 0
        var roundJobs = scanJobs
        while !roundJobs.isEmpty && round < maxRounds {
            round += 1
            var started: [AuditEvent] = []
            for job in roundJobs {
                for c in connectors {
                    started.append(
                        AuditEvent.connectorStarted(
                            job: job.jobID, subject: subjects[job.jobID], connector: c.name, round: round))
                }
            }
            try audit.append(contentsOf: started)
            let batch = ScanBatch(jobs: roundJobs)
            let runner = self.runner
            let cs = connectors
            let log = logger
            let progress = self.progress
            let thisRound = round
            // Past a stop's grace period the scan is abandoned (its jobs are requeued, nothing of it journaled).
            guard
                let results = try await ScanCoordinator.unlessExpired(
                    stop,
                    {
                        if let progress {
                            return await progress.track(cs, round: thisRound) {
                                await runner.run(cs, batch: batch, logger: log, progress: progress)
                            }
                        }
                        return await runner.run(cs, batch: batch, logger: log)
                    })
            else { throw GraceExpired() }
            for r in results {
                var t = out.totals[r.name] ?? RunStats.ConnectorTotals()
                t.scans += 1
                t.seconds += Double(r.durationMs) / 1000
                if r.error != nil { t.failures += 1 }
                t.bytesScanned +=
                    r.findings.values.first.flatMap { $0.details["bytes_scanned"].flatMap { Int64($0) } } ?? 0
                out.totals[r.name] = t
            }
            // A connector's error is the batch's: scrubbed of every identifier of the batch (it may
            // name another job's subject), then of the job's own.
            let batchScrub = logScrubber.scrubber
            let errors = results.map { $0.error.map { batchScrub.scrub($0.message) } }
            var next: [ScanJob] = []
            // The round's outcomes for every job, journaled in one write.
            var events: [AuditEvent] = []
            for job in roundJobs {
                let id = job.jobID
                out.results[id] = zip(results, errors).map { r, e in
                    ConnectorOutcome(
                        name: r.name, metadata: r.metadata, status: r.error == nil ? .ok : .failed,
                        findings: r.findings[id] ?? ConnectorFindings(),
                        error: e.map { Processor.scrub($0, job.identifiers) }, attempts: r.attempts,
                        durationMs: r.durationMs)
                }
                for (r, scrubbed) in zip(results, errors) {
                    if r.attempts > 1 {
                        events.append(
                            AuditEvent.connectorRetried(
                                job: id, subject: subjects[id], connector: r.name, attempts: r.attempts))
                    }
                    events.append(
                        .connectorScanned(
                            job: id, subject: subjects[id], connector: r.name, records: r.findings[id]?.records ?? 0,
                            bytesScanned: r.findings[id]?.details["bytes_scanned"].flatMap { Int64($0) } ?? 0,
                            durationMs: r.durationMs,
                            attempts: r.attempts, round: round,
                            failure: scrubbed.map { Processor.scrub($0, job.identifiers) }))
                }
                var known = Set(job.identifiers)
                var new: [(Identifier, String)] = []
                for r in results {
                    for (ident, provenance) in r.findings[id]?.derived ?? [] where known.insert(ident).inserted {
                        new.append((ident, provenance))
                    }
                }
                guard !new.isEmpty else { continue }
                batchIdentifiers.formUnion(new.map(\.0))
                logScrubber.set(batchIdentifiers)
                out.derived[id, default: []] += new
                for (ident, provenance) in new {
                    events.append(
                        AuditEvent.identifierDerived(
                            job: id, subject: subjects[id], type: ident.type, provenance: provenance))
                }
                var grown = job
                grown.identifiers = known.sorted()
                next.append(grown)
            }
            try audit.append(contentsOf: events)
            roundJobs = next
        }
        return out
    }

    /// Runs `body` unless the stop policy's grace period runs out first (then `body` is cancelled
    /// and nil returned). Without a stop request it simply runs `body`.
    static func unlessExpired<T: Sendable>(
        _ stop: StopPolicy, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while !stop.expired() {
                    try await Task.sleep(nanoseconds: 100_000_000)
                }
                return nil
            }
            defer { group.cancelAll() }
            while let r = try await group.next() {
                if let r { return r }
                return nil
            }
            return nil
        }
    }
}

extension RunStats {
    /// Adds one scan's per-connector totals.
    mutating func add(_ totals: [String: ConnectorTotals]) {
        for (name, t) in totals {
            var c = connectors[name] ?? ConnectorTotals()
            c.scans += t.scans
            c.seconds += t.seconds
            c.failures += t.failures
            c.bytesScanned += t.bytesScanned
            c.records += t.records
            connectors[name] = c
        }
    }

    /// Counts a job that ended; with `records`, also the records its connectors found this attempt.
    mutating func finished(_ record: JobRecord, records: Bool) {
        jobsFinished[record.status, default: 0] += 1
        guard records else { return }
        for c in record.connectors { connectors[c.name, default: ConnectorTotals()].records += c.records }
    }
}
