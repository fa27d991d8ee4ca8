import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A job ready to seal: its status before publishing and what the finisher needs.
struct SealWork: Sendable {
    var record: JobRecord
    var request: DSARRequest
    var outcomes: [ConnectorOutcome]
    var derived: [(Identifier, String)]
    var erasure: ErasureOutcome?
    /// The status and error from the outcomes and erasure (``JobStatus/derive(_:)``).
    var verdict: JobVerdict

    /// Decides the job's status before publishing from what its connectors and erasure did.
    init(
        record: JobRecord, request: DSARRequest, outcomes: [ConnectorOutcome], derived: [(Identifier, String)],
        erasure: ErasureOutcome?
    ) {
        self.record = record
        self.request = request
        self.outcomes = outcomes
        self.derived = derived
        self.erasure = erasure
        self.verdict = JobStatus.derive(JobEvidence(outcomes: outcomes, erasure: erasure))
    }

    /// Every identifier of the subject (the request's and the derived ones).
    var identifiers: [Identifier] { request.identifiers + derived.map(\.0) }
}

/// How sealing one job ended.
enum SealResult: Sendable {
    case sealed(Published)
    /// Publishing failed: the error as thrown (or, for a full disk, one saying where and what to do,
    /// with the write's error as its cause).
    case failed(DSARError)
    /// Nothing to publish (every connector failed).
    case skipped
    /// Not begun: dsar was asked to stop.
    case requeue
}

/// Seals jobs in parallel (``concurrency`` at a time) and hands them, in order, to `conclude` in
/// groups as their seals complete.
struct Sealer: Sendable {
    let layout: SpoolLayout
    let logger: Logger
    /// Chooses the finisher for a job (bundler for export, eraser for delete, summary otherwise).
    let finisher: @Sendable (RequestAction) -> any JobFinisher
    /// How many jobs are sealed at once.
    let concurrency: Int

    /// Seals `work`; a stop request requeues jobs not yet begun (except erased ones, which must be
    /// reported). `conclude` gets each group (at most 64, in order) and returns its final records.
    func sealAll(
        _ work: [SealWork], shouldStop: () -> Bool, conclude: ([(SealWork, SealResult)]) throws -> [JobRecord]
    ) async throws -> [JobRecord] {
        var out: [JobRecord] = []
        let finisher = self.finisher
        let layout = self.layout
        let logger = self.logger
        let width = max(1, concurrency)
        try await withThrowingTaskGroup(of: (Int, SealResult).self) { group in
            var next = 0
            var emit = 0
            var done: [Int: SealResult] = [:]
            func launch() {
                let k = next
                let w = work[k]
                next += 1
                if shouldStop() && w.erasure == nil {
                    group.addTask { (k, .requeue) }
                } else if w.verdict.status == .failed {
                    group.addTask { (k, .skipped) }
                } else {
                    group.addTask {
                        (k, Sealer.seal(w, finisher: finisher(w.request.action), layout: layout, logger: logger))
                    }
                }
            }
            while next < work.count && next < width { launch() }
            // Concluded in order, in groups: one journal write, one fsync of jobs/ and of active/ per group.
            var ready: [(SealWork, SealResult)] = []
            while let (k, r) = try await group.next() {
                done[k] = r
                while let r = done.removeValue(forKey: emit) {
                    ready.append((work[emit], r))
                    emit += 1
                }
                if next < work.count { launch() }
                if ready.count >= 64 || (emit == work.count && !ready.isEmpty) {
                    out += try conclude(ready)
                    ready = []
                }
            }
        }
        return out
    }

    /// Publishes the job's outbox entry (bundle with its findings, or receipt) (no shared state:
    /// runs in parallel with other jobs' seals).
    static func seal(_ w: SealWork, finisher: any JobFinisher, layout: SpoolLayout, logger: Logger) -> SealResult {
        do {
            var rec = w.record
            rec.status = w.verdict.status
            rec.error = w.verdict.error
            var fj = FinishingJob(record: rec, request: w.request, identifiers: w.identifiers, outcomes: w.outcomes)
            fj.erasure = w.erasure
            // Staged only: the concluder renames the group's entries together (one fsync of outbox/).
            return .sealed(
                try OutboxPublisher.$renameLater.withValue(true) {
                    try finisher.finish(fj, layout: layout, logger: logger)
                })
        } catch {
            return .failed(failure(error, jobID: w.record.jobID, layout: layout))
        }
    }

    /// The error a failed seal records: for a full disk, one saying where and what to do (with the
    /// write's error as its cause); else the error as thrown.
    static func failure(_ error: any Error, jobID: String, layout: SpoolLayout) -> DSARError {
        guard let e = error as? DSARError else { return DSARError(.processing, "\(error)", cause: error) }
        guard e.errno == ENOSPC || e.errno == EDQUOT else { return e }
        let message = Sealer.outOfSpace(e, jobID: jobID, layout: layout)
        return DSARError(.io, message, path: e.path, errno: e.errno, cause: e)
    }

    /// The reason of a seal that ran out of space: which directory's file system filled up, the
    /// write that failed, and what to do. The staging directory is gone by then (nothing was
    /// published), so the directory named is its parent, `outbox/`.
    static func outOfSpace(_ e: DSARError, jobID: String, layout: SpoolLayout) -> String {
        let what = e.errno == EDQUOT ? "Disk quota exceeded" : "No space left on device"
        var dir = e.path.map { ($0 as NSString).deletingLastPathComponent } ?? layout.outbox
        let last = (dir as NSString).lastPathComponent
        if last.hasPrefix(".") && last.hasSuffix(".partial") { dir = (dir as NSString).deletingLastPathComponent }
        return "\(what) (\(dir)): \(e.message); the partial output was removed and nothing was published. "
            + "Free space on that file system, then run `dsar retry \(jobID)`"
    }
}
