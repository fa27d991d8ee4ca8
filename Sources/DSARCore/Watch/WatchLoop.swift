import Foundation
import Logging

/// `dsar watch`: inotify hints plus a periodic rescan, the settle rule, and a clean stop on a signal.
public struct WatchLoop {
    public var rescanSeconds: Double
    /// Called after every pass (for periodic work such as metrics or checkpoints).
    public var afterPass: (Processor) async throws -> Void = { _ in }

    public init(rescanSeconds: Double) { self.rescanSeconds = rescanSeconds }

    /// Runs until a stop is requested; returns how many jobs finished meanwhile (their records are
    /// in `jobs/`; none are kept in memory, however long it runs). The job in hand finishes within
    /// the policy's grace period.
    public func run(_ processor: Processor, logger: Logger, stop: StopPolicy) async throws -> Int {
        let shouldStop = stop.requested
        let watcher = try InboxWatcher(directory: processor.layout.inbox)
        var finished = 0
        logger.notice("watching", metadata: ["inbox": "\(processor.layout.inbox)"])
        var nextRescan = Date()
        while !shouldStop() {
            let now = Date()
            _ = try processor.intake(now: now)
            finished += try await processor.runPending(stop: stop).count
            try await afterPass(processor)
            if Date() >= nextRescan { nextRescan = Date().addingTimeInterval(rescanSeconds) }
            var wakeAt = nextRescan
            if let settle = processor.nextSettleTime, settle < wakeAt { wakeAt = settle.addingTimeInterval(0.01) }
            // Sleep in short slices so that a signal is noticed quickly.
            while !shouldStop() {
                let remaining = wakeAt.timeIntervalSinceNow
                if remaining <= 0 { break }
                let events = watcher.wait(timeout: min(remaining, 0.25))
                if !events.isEmpty {
                    if events.contains("*") { logger.warning("inotify queue overflowed; rescanning the inbox") }
                    break
                }
            }
        }
        logger.notice("stopping: in-flight jobs finished or requeued")
        return finished
    }
}
