import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Publishes a directory into `outbox/` atomically: built as `.<job-id>.partial`, fsynced, renamed.
package enum OutboxPublisher {
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
            for name in try FileSystem.list(staging) {
                let path = staging + "/" + name
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
                // Delayed allocation can report a full disk only here: never publish such a file.
                let synced = fsync(fd) == 0
                let err = errno
                close(fd)
                if !synced { throw DSARError.syscall("cannot fsync", path: path, errno: err) }
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
