import Foundation
import Logging

/// `dsar watch`: inotify hints plus a periodic rescan, the settle rule, and a clean stop on a signal.
package struct WatchLoop {
    package var rescanSeconds: Double

    package init(rescanSeconds: Double) { self.rescanSeconds = rescanSeconds }

    /// Runs ``SpoolService/pass(now:stop:)`` on every wake-up until a stop is requested; returns how
    /// many jobs finished meanwhile (their records are in `jobs/`; none are kept in memory, however
    /// long it runs). The job in hand finishes within the policy's grace period.
    package func run(_ service: SpoolService, logger: Logger, stop: StopPolicy) async throws -> Int {
        let shouldStop = stop.requested
        let processor = service.processor
        let watcher = try InboxWatcher(directory: processor.layout.inbox)
        var finished = 0
        logger.notice("watching", metadata: ["inbox": "\(processor.layout.inbox)"])
        var nextRescan = Date()
        while !shouldStop() {
            finished += try await service.pass(now: Date(), stop: stop).finished.count
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
