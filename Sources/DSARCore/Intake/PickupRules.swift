import Foundation

/// Which inbox entries are taken, ignored or refused at once (the SFTP drop contract).
package enum PickupRules {
    /// What to do with one inbox entry.
    package enum Verdict: Sendable, Equatable {
        /// Not ours to touch: dotfiles, `*.part`, `*.filepart`, `*.tmp`, signatures, non-JSON names.
        case ignore
        /// Refuse now (move to `rejected/` with this reason).
        case reject(String)
        /// A regular `*.json` file: take it once it has settled.
        case candidate
    }

    /// Suffixes of uploads in progress that are never touched.
    package static let partialSuffixes = [".part", ".filepart", ".tmp"]

    /// Classifies an entry from its name and `lstat`, never opening it.
    package static func classify(name: String, status: FileSystem.Status, maxBytes: Int) -> Verdict {
        if name.hasPrefix(".") { return .ignore }
        if partialSuffixes.contains(where: { name.hasSuffix($0) }) { return .ignore }
        guard name.hasSuffix(".json") else { return .ignore }
        switch status.kind {
        case .regular: break
        case .symlink:
            return .reject("it is a symbolic link; symbolic links are never followed, upload the file itself")
        case .fifo: return .reject("it is a named pipe (FIFO), not a regular file")
        case .directory: return .reject("it is a directory, not a regular file")
        case .device: return .reject("it is a device node, not a regular file")
        case .socket: return .reject("it is a socket, not a regular file")
        case .other: return .reject("it is not a regular file")
        }
        if status.size > Int64(maxBytes) {
            return .reject("it is \(status.size) bytes; requests may be at most \(maxBytes) bytes (max_request_bytes)")
        }
        return .candidate
    }
}

/// Remembers what each candidate looked like, so a file is taken only when its size, mtime, ctime
/// and inode stayed unchanged across two looks at least `settle` seconds apart.
package struct SettleTracker: Sendable {
    struct Seen: Sendable {
        var fingerprint: [Int64]
        var since: Date
        /// An incomplete drop is not looked at again before this time.
        var notBefore: Date?
    }

    private var seen: [String: Seen] = [:]
    /// The settle interval in seconds.
    package var settle: Double

    package init(settle: Double) { self.settle = settle }

    static func fingerprint(_ s: FileSystem.Status) -> [Int64] {
        [s.size, s.mtimeNanos, s.ctimeNanos, Int64(bitPattern: s.inode)]
    }

    /// Records a look; true when the file has been unchanged for at least `settle` seconds of looks.
    package mutating func observe(_ name: String, _ status: FileSystem.Status, now: Date) -> Bool {
        let fp = SettleTracker.fingerprint(status)
        if let s = seen[name], s.fingerprint == fp {
            if let nb = s.notBefore, now < nb { return false }
            return now.timeIntervalSince(s.since) >= settle
        }
        seen[name] = Seen(fingerprint: fp, since: now)
        return false
    }

    /// When the earliest still-unsettled candidate could settle (nil when none is waiting).
    package func nextSettleTime() -> Date? {
        seen.values.map { max($0.since.addingTimeInterval(settle), $0.notBefore ?? .distantPast) }.min()
    }

    /// A settled drop that did not parse completely: look at it again no sooner than `until`
    /// (sooner if it changes), so a stalled upload is not re-read in a busy loop.
    package mutating func postpone(_ name: String, until: Date) {
        seen[name]?.notBefore = until
    }

    /// Forgets a name (taken, rejected or gone).
    package mutating func forget(_ name: String) { seen[name] = nil }

    /// Forgets every name not in `present`.
    package mutating func retain(_ present: Set<String>) {
        for k in seen.keys where !present.contains(k) { seen[k] = nil }
    }
}
