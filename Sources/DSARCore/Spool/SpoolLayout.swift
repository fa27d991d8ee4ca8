import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The spool: one directory per state, so every state change is a `rename` on one filesystem.
///
/// ```
/// spool/
///   inbox/     drops from the privacy team (SFTP-writable by a group)
///   active/    claimed requests, one per running or pending job: <job-id>.json
///   rejected/  bad drops, each with <name>.reason
///   failed/    requests of FAILED jobs, with <job-id>.reason (`dsar retry` puts them back)
///   outbox/    published entries: <job-id>/ (group-readable)
///   jobs/      job records: <job-id>.json (no personal data)
///   journal/   the audit journal
///   keys/      secret keys (0700)
///   tmp/       scratch of the running batch (wiped on start)
///   notify/    queued notifications, one file per job event and notifier (no personal data)
///   config.yaml
/// ```
package struct SpoolLayout: Sendable {
    /// Absolute path of the spool root.
    package let root: String

    package init(root: String) { self.root = FileSystem.absolute(root) }

    package var inbox: String { root + "/inbox" }
    package var active: String { root + "/active" }
    package var rejected: String { root + "/rejected" }
    package var failed: String { root + "/failed" }
    package var outbox: String { root + "/outbox" }
    package var jobs: String { root + "/jobs" }
    package var journal: String { root + "/journal" }
    package var keys: String { root + "/keys" }
    package var tmp: String { root + "/tmp" }
    package var notify: String { root + "/notify" }
    package var config: String { root + "/config.yaml" }
    package var lockFile: String { root + "/.lock" }

    /// Each state directory with the mode it is created with.
    package var directories: [(path: String, mode: mode_t)] {
        [
            (inbox, 0o2770), (active, 0o700), (rejected, 0o700), (failed, 0o700), (outbox, 0o2750),
            (jobs, 0o700), (journal, 0o700), (keys, 0o700), (tmp, 0o700), (notify, 0o700),
        ]
    }

    /// The claimed request of a job.
    package func activeRequest(_ jobID: String) -> String { active + "/\(jobID).json" }
    /// The record of a job.
    package func jobRecord(_ jobID: String) -> String { jobs + "/\(jobID).json" }
    /// The published outbox entry of a job.
    package func outboxEntry(_ jobID: String) -> String { outbox + "/\(jobID)" }

    /// Creates every directory with safe modes (idempotent); with `group`, inbox and outbox belong to it.
    package func create(group: String? = nil) throws {
        try FileSystem.makeDirectory(root, mode: 0o750)
        for (path, mode) in directories { try FileSystem.makeDirectory(path, mode: mode) }
        if let group {
            guard let gr = getgrnam(group) else {
                throw DSARError(
                    .config,
                    "group \"\(group)\" (inbox_group in \(config)) does not exist; create it with groupadd \(group)",
                    path: config)
            }
            for p in [root, inbox, outbox] where chown(p, uid_t.max, gr.pointee.gr_gid) != 0 {
                throw DSARError.syscall("cannot give group \(group) to", path: p)
            }
        }
        try FileSystem.syncDirectory(root)
    }

    /// Whether the spool has been initialised.
    package var exists: Bool { FileSystem.exists(inbox) && FileSystem.exists(jobs) }
}
