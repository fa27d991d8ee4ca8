#if canImport(Glibc)
import Glibc
#endif

/// What the `dsar` process does to itself at start so that a crash cannot leak personal data.
///
/// A core dump holds the process's memory: request identifiers, matched records, key material.
/// ``disableCoreDumps()`` sets `RLIMIT_CORE` to 0 (soft and hard), so no core is written whatever
/// `ulimit -c`, systemd (`LimitCORE=`) or `kernel.core_pattern` say; the systemd unit examples also
/// set `LimitCORE=0`.
///
/// The Swift runtime's crash backtracer prints to stderr and can show register values and the
/// memory they point to. It reads its settings from `SWIFT_BACKTRACE` when the process starts (too
/// early for dsar to change), so the unit examples set ``backtraceSetting`` in the environment.
package enum ProcessHardening {
    /// The `SWIFT_BACKTRACE` value the deployment examples set: no backtracer at all, so a crash
    /// prints one line (the signal) and never registers or memory.
    package static let backtraceSetting = "enable=no"

    /// Sets the core file size limit to 0 (soft and hard). Returns false (and changes nothing) if
    /// the kernel refuses, which it does not for lowering a limit.
    @discardableResult
    package static func disableCoreDumps() -> Bool {
        var limit = rlimit(rlim_cur: 0, rlim_max: 0)
        return setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0
    }
}
