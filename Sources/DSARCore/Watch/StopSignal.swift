import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

private let stopFlag = Atomic<Int32>(0)
/// CLOCK_MONOTONIC nanoseconds of the first signal (clock_gettime is async-signal-safe).
private let stopAt = Atomic<Int64>(0)

/// When a clean stop gives up on the work in hand: jobs already in hand finish (sealed and
/// published) while the grace period lasts; only past it is a job put back to PENDING.
package struct StopPolicy: Sendable {
    /// A stop was asked for: start nothing new.
    package var requested: @Sendable () -> Bool
    /// The grace period is over: put back what has not finished.
    package var expired: @Sendable () -> Bool

    package init(requested: @escaping @Sendable () -> Bool, expired: @escaping @Sendable () -> Bool) {
        self.requested = requested
        self.expired = expired
    }

    /// Never stops.
    package static let never = StopPolicy(requested: { false }, expired: { false })
}

/// SIGTERM/SIGINT handling for long-running commands: the first signal asks for a clean stop
/// (finish or requeue in-flight jobs), the second one exits at once.
package enum StopSignal {
    /// Installs the handlers.
    package static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
            if stopFlag.load(ordering: .relaxed) == 0 {
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                stopAt.store(Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec), ordering: .relaxed)
            }
            let previous = stopFlag.add(1, ordering: .relaxed).oldValue
            if previous >= 1 {
                // Second signal: leave now. Claimed jobs stay in active/ and are recovered on start.
                _exit(128 + sig)
            }
        }
        signal(SIGTERM, handler)
        signal(SIGINT, handler)
    }

    /// Whether a stop was requested.
    package static var requested: Bool { stopFlag.load(ordering: .relaxed) > 0 }

    /// Seconds since the first signal (nil: none yet).
    package static var secondsSinceRequest: Double? {
        guard requested else { return nil }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
        return Double(now - stopAt.load(ordering: .relaxed)) / 1e9
    }

    /// The policy for the signals: work in hand may finish for `grace` seconds after the first one.
    package static func policy(grace: Double) -> StopPolicy {
        StopPolicy(
            requested: { StopSignal.requested },
            expired: { (StopSignal.secondsSinceRequest ?? 0) > grace || (StopSignal.requested && grace <= 0) })
    }
}
