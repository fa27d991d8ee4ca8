import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An exclusive `flock` on the spool's lock file: one `dsar run`/`watch` per spool at a time.
///
/// The lock dies with the process (also on `kill -9`), so a crash never leaves it stuck.
package final class SpoolLock: Sendable {
    private let fd: Int32
    /// The lock file's path.
    package let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { close(fd) }

    /// Takes the lock. With `wait`, blocks until it is free; otherwise fails at once naming the holder.
    package static func acquire(_ layout: SpoolLayout, wait: Bool, purpose: String) throws -> SpoolLock {
        let path = layout.lockFile
        let fd = try FileLock.openLockFile(path)
        let taken: Bool
        do { taken = try FileLock.tryLock(fd: fd, path: path) } catch {
            close(fd)
            throw error
        }
        if !taken {
            let holder =
                (try? FileSystem.readFile(path, limit: 4096)).map { String(decoding: $0, as: UTF8.self) }?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
            if !wait {
                close(fd)
                throw DSARError(
                    .locked,
                    "the spool \(layout.root) is busy: another dsar holds \(path) (\(holder)); "
                        + "it will pick up new requests itself, or rerun with --wait to queue behind it",
                    path: path)
            }
            FileHandle.standardError.write(Data("dsar: waiting for the spool lock held by \(holder)\n".utf8))
            do { try FileLock.lock(fd: fd, path: path, wait: .forever) } catch {
                close(fd)
                throw error
            }
        }
        let note = Array("pid \(getpid()), \(purpose), since \(Timestamp.format(Date()))\n".utf8)
        _ = ftruncate(fd, 0)
        _ = note.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return SpoolLock(fd: fd, path: path)
    }
}
