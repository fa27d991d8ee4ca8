import Foundation
import Logging

/// What `dsar run` and `dsar watch` do on an open spool, as library calls: recovery, passes over
/// the inbox (intake, the batch, and the housekeeping after it: overdue checks, outbox retention,
/// notification delivery, last-success bookkeeping, the metrics file, journal checkpoints). The
/// commands only parse flags, call these and print.
package final class SpoolService {
    /// `dsar run` (one pass, then exit) or `dsar watch` (a pass per wake-up, until stopped).
    package enum Mode: String, Sendable {
        case run, watch
    }

    /// What one pass did.
    package struct PassReport: Sendable {
        /// What intake claimed, rejected and left waiting (both looks of `dsar run` together).
        package var intake = IntakeResult()
        /// The jobs that finished, without their history.
        package var finished: [JobRecord] = []
        /// Jobs newly found overdue.
        package var overdue: [String] = []
        /// Jobs newly found due soon (deadline at most `due_soon_days` away).
        package var dueSoon: [String] = []
        /// Outbox entries removed under `outbox_retention_days`.
        package var expired: [String] = []
        /// Notification delivery (nil: nothing was queued).
        package var notified: Notifications.DeliveryReport?
        /// The signed journal checkpoint written (nil: none this pass).
        package var checkpoint: Journal.Head?

        package init() {}

        /// Whether a job of the pass ended FAILED or PARTIAL.
        package var hasUnsuccessful: Bool { finished.contains { $0.status == .failed || $0.status == .partial } }
    }

    /// The open spool (lock held) this service works on.
    package let session: SpoolSession
    /// Whether this is `dsar run` or `dsar watch` (how housekeeping is paced, the metrics `mode`).
    package let mode: Mode
    /// `--metrics-file`: written after each pass (watch: when jobs finished, else every 15 s).
    package let metricsFile: String?
    /// The session's processor.
    package var processor: Processor { session.processor }
    var logger: Logger { session.processor.logger }

    /// Watch bookkeeping: failed/partial jobs so far, jobs finished at the last metrics write, and when.
    var unsuccessful = 0
    var finishedAtMetrics = 0
    var lastMetrics = Date()

    /// A service for `session`; `metricsFile` is `--metrics-file` (nil: none).
    package init(session: SpoolSession, mode: Mode, metricsFile: String?) {
        self.session = session
        self.mode = mode
        self.metricsFile = metricsFile
    }

    /// Puts the spool back in order after a crash (watch: then writes the metrics file).
    package func recover() throws -> RecoveryReport {
        let report = try processor.recover()
        if mode == .watch {
            writeMetrics()
            lastMetrics = Date()
        }
        unsuccessful = processor.stats.unsuccessfulJobs
        return report
    }

    /// `dsar run`: intake, a second look at least the settle time after the first when drops were
    /// waiting (the settle rule), overdue checks, the batch, then the housekeeping.
    package func runOnce(stop: StopPolicy) async throws -> PassReport {
        let p = processor
        var report = PassReport()
        let first = Date()
        report.intake = try p.intake(now: first)
        if !report.intake.waiting.isEmpty {
            let wakeAt = first.addingTimeInterval(p.settleSeconds)
            let delay = wakeAt.timeIntervalSinceNow
            if delay > 0 { try await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
            let second = try p.intake(now: max(Date(), wakeAt))
            report.intake.claims += second.claims
            report.intake.rejected += second.rejected
            report.intake.waiting = second.waiting
            report.intake.waitingFor = second.waitingFor
        }
        // Before the batch: a job past its deadline is flagged even if this run finishes it.
        report.overdue = try p.checkOverdue()
        report.dueSoon = try p.checkDueSoon()
        report.finished = try await p.runPending(stop: stop)
        try await housekeeping(&report)
        return report
    }

    /// `dsar watch`: one pass (intake, the batch, the housekeeping). A checkpoint is written after
    /// 100 entries, or 10 minutes after the last one.
    package func pass(now: Date = Date(), stop: StopPolicy) async throws -> PassReport {
        let p = processor
        var report = PassReport()
        report.intake = try p.intake(now: now)
        report.finished = try await p.runPending(stop: stop)
        report.overdue = try p.checkOverdue()
        report.dueSoon = try p.checkDueSoon()
        try await housekeeping(&report)
        return report
    }

    /// What follows every batch, in `run` and `watch` alike: outbox retention, notification delivery
    /// (`run` retries every queued one now; `watch` respects their backoff), the last-success time,
    /// the metrics file and a journal checkpoint (`run`: always; `watch`: paced, see ``pass``).
    func housekeeping(_ report: inout PassReport) async throws {
        let p = processor
        let journal = session.journal
        report.expired = try OutboxRetention.expire(p.layout, days: session.config.outboxRetentionDays, audit: journal)
        if let n = p.notifications, !n.queued().isEmpty {
            let d = await n.deliver(retryNow: mode == .run)
            report.notified = d
            if mode == .watch && d.sent + d.failed > 0 {
                logger.info("notifications delivered", metadata: ["sent": "\(d.sent)", "failed": "\(d.failed)"])
            }
        }
        // A pass without a new failed or partial job counts as a success.
        if p.stats.unsuccessfulJobs == unsuccessful { p.markSuccess() }
        unsuccessful = p.stats.unsuccessfulJobs
        let finishedNow = p.stats.jobsFinished.values.reduce(0, +)
        if mode == .run || finishedNow != finishedAtMetrics || Date().timeIntervalSince(lastMetrics) >= 15 {
            writeMetrics()
            lastMetrics = Date()
            finishedAtMetrics = finishedNow
        }
        if mode == .run || journal.sinceCheckpoint >= 100
            || (journal.sinceCheckpoint > 0 && Date().timeIntervalSince(journal.lastCheckpoint) >= 600)
        {
            report.checkpoint = try await journal.checkpointAndWitness()
        }
    }

    /// The end of `dsar watch`: the metrics file and a checkpoint of what was journaled since the last.
    package func finishWatching() async throws {
        writeMetrics()
        if session.journal.sinceCheckpoint > 0 { try await session.journal.checkpointAndWitness() }
    }

    /// Writes `--metrics-file` (if given) for the spool's state and what the processor has done. A
    /// failure is logged, never fatal: monitoring must not stop the processing it watches (a stale
    /// file shows it).
    package func writeMetrics() {
        guard let path = metricsFile else { return }
        let p = processor
        do {
            let records = try p.store.all()
            try MetricsFile.write(
                path,
                MetricsFile.render(
                    layout: p.layout, records: records, stats: p.stats,
                    notificationsPending: p.notifications?.queued().count ?? 0,
                    mode: mode.rawValue, dueSoonDays: session.config.dueSoonDays))
        } catch {
            logger.error("cannot write the metrics file", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}
