import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Publishes a directory into `outbox/` atomically: built as `.<job-id>.partial`, fsynced, renamed.
package enum OutboxPublisher {
    /// Set by the sealer for the jobs of a batch: ``publish(jobID:layout:build:)`` stops once the
    /// entry is staged and fsynced (``Published/staged``), and the sealer renames the whole group
    /// with ``commitStaged(_:layout:)`` (one fsync of `outbox/` for the group).
    @TaskLocal package static var renameLater = false

    /// Publishes a group of staged entries (``Published/staged``) in phases: every file of every
    /// entry fsynced (all in flight together), each staging directory fsynced (`publish.staged` for
    /// each), `publish.grouped`, all renamed into place in order, `outbox/` fsynced once, then
    /// `publish.renamed` for each. Returns, per index, the error of an entry that could not be made
    /// durable or renamed (its staging directory is removed: nothing of it is published).
    package static func commitStaged(_ staged: [Published], layout: SpoolLayout) throws -> [Int: DSARError] {
        var failed: [Int: DSARError] = [:]
        var files: [String] = []
        var owner: [Int] = []
        for (k, p) in staged.enumerated() {
            guard let dir = p.staged else { continue }
            do {
                for name in try FileSystem.list(dir) {
                    files.append(dir + "/" + name)
                    owner.append(k)
                }
                files.append(dir)
                owner.append(k)
            } catch {
                failed[k] = error as? DSARError ?? DSARError(.io, "\(error)", path: dir, cause: error)
            }
        }
        // Delayed allocation can report a full disk only here: never publish such a file.
        for (n, e) in FileSystem.syncFiles(files).sorted(by: { $0.key < $1.key }) where failed[owner[n]] == nil {
            failed[owner[n]] = e
        }
        for (k, p) in staged.enumerated() where p.staged != nil && failed[k] == nil { CrashPoint.hit("publish.staged") }
        if staged.contains(where: { $0.staged != nil }) { CrashPoint.hit("publish.grouped") }
        var renamed = 0
        for (k, p) in staged.enumerated() {
            guard let from = p.staged else { continue }
            if failed[k] == nil {
                do {
                    try FileSystem.rename(from, to: p.path)
                    renamed += 1
                    continue
                } catch {
                    failed[k] = error as? DSARError ?? DSARError(.io, "\(error)", path: from, cause: error)
                }
            }
            try? FileSystem.removeTree(from)
        }
        guard renamed > 0 else { return failed }
        try FileSystem.syncDirectory(layout.outbox)
        for (k, p) in staged.enumerated() where p.staged != nil && failed[k] == nil {
            CrashPoint.hit("publish.renamed")
        }
        return failed
    }

    /// Builds the entry with `build` (given the staging dir; it returns the `manifest.json` bytes it
    /// wrote, or nil when the entry has none), then renames it into place. Returns the final path
    /// and the manifest's SHA-256 from those bytes. An entry that already exists is left as it is;
    /// its existing manifest is hashed.
    package static func publish(
        jobID: String, layout: SpoolLayout, build: (String) throws -> [UInt8]?
    ) throws -> Published {
        let final = layout.outboxEntry(jobID)
        if FileSystem.exists(final) {
            let existing = try? FileSystem.readFile(final + "/manifest.json", limit: 64 << 20)
            return Published(path: final, manifestSHA256: existing.map(sha256Hex))
        }
        let staging = layout.outbox + "/.\(jobID).partial"
        try FileSystem.removeTree(staging)
        try FileSystem.makeDirectory(staging, mode: 0o2750)
        let manifest: [UInt8]?
        do {
            manifest = try build(staging)
            if renameLater {
                // Built only: the sealer fsyncs and renames the whole group (``commitStaged(_:layout:)``).
                return Published(path: final, manifestSHA256: manifest.map(sha256Hex), staged: staging)
            }
            // Every file's writeback started together, then each fsynced. Delayed allocation can
            // report a full disk only here: never publish such a file.
            let names = try FileSystem.list(staging)
            if let first = FileSystem.syncFiles(names.map { staging + "/" + $0 }).min(by: { $0.key < $1.key }) {
                throw first.value
            }
            try FileSystem.syncDirectory(staging)
            CrashPoint.hit("publish.staged")
            try FileSystem.rename(staging, to: final)
            try FileSystem.syncDirectory(layout.outbox)
            CrashPoint.hit("publish.renamed")
        } catch {
            try? FileSystem.removeTree(staging)
            throw error
        }
        return Published(path: final, manifestSHA256: manifest.map(sha256Hex))
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        var h = StreamingSHA256()
        h.update(bytes)
        return h.hexDigest()
    }
}
