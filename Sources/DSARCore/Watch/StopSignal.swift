import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

private let stopFlag = Atomic<Int32>(0)

/// SIGTERM/SIGINT handling for long-running commands: the first signal asks for a clean stop
/// (finish or requeue in-flight jobs), the second one exits at once.
public enum StopSignal {
    /// Installs the handlers.
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { sig in
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
    public static var requested: Bool { stopFlag.load(ordering: .relaxed) > 0 }
}
