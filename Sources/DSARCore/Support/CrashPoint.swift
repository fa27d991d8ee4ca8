import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Deterministic crash injection for crash-safety tests: with `DSAR_CRASH_AT=name` (or `name:N` for
/// the N-th hit) in the environment, the process kills itself with SIGKILL at that point, exactly as
/// `kill -9` would. Without the variable, a hit costs one dictionary lookup.
package enum CrashPoint {
    private static let target: (name: String, count: Int)? = {
        guard let v = ProcessInfo.processInfo.environment["DSAR_CRASH_AT"], !v.isEmpty else { return nil }
        let parts = v.split(separator: ":")
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    private static let hits = HitCounter()
    /// `DSAR_PAUSE_AT=name:N:seconds`: the N-th hit of `name` sleeps that long (tests send signals
    /// into a known phase with it, e.g. SIGTERM in the middle of sealing).
    private static let pauseTarget: (name: String, count: Int, seconds: Double)? = {
        guard let v = ProcessInfo.processInfo.environment["DSAR_PAUSE_AT"], !v.isEmpty else { return nil }
        let parts = v.split(separator: ":")
        guard parts.count == 3, let n = Int(parts[1]), let s = Double(parts[2]) else { return nil }
        return (String(parts[0]), n, s)
    }()
    private static let pauseHits = HitCounter()

    /// Every crash point the code has, for tests that loop over them.
    package static let all = [
        "claim.renamed", "claim.recorded", "job.running", "job.scanned", "publish.staged", "publish.renamed",
        "job.recorded", "job.retired", "journal.appended", "seal.writing", "erase.synced", "erase.renamed",
        "spark.swapped",
        "identity.written", "retry.moved", "live.erased", "live.verified", "deliver.renamed",
        // Between the phases of a batch's writes: records fsynced but none renamed; a group's
        // outbox entries all staged and fsynced but none renamed.
        "records.synced", "publish.grouped",
    ]

    /// Marks a point; kills the process if it is the configured one.
    @inline(__always)
    package static func hit(_ name: String) {
        if let pauseTarget, pauseTarget.name == name, pauseHits.increment() == pauseTarget.count {
            usleep(UInt32(pauseTarget.seconds * 1e6))
        }
        guard let target, target.name == name else { return }
        if hits.increment() >= target.count {
            kill(getpid(), SIGKILL)
            pause()
        }
    }

    private final class HitCounter: @unchecked Sendable {
        private var n = 0
        private let lock = NSLock()
        func increment() -> Int {
            lock.lock()
            defer { lock.unlock() }
            n += 1
            return n
        }
    }
}
