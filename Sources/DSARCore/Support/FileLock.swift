import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Exclusive `flock(2)` locks: the one place dsar takes them (journal, job records, the spool lock,
/// a file being rewritten).
///
/// Every wait retries on `EINTR`. Without a timeout a wait blocks until the holder lets go; with one
/// it polls and throws ``Timeout`` once the time is up. An `flock` dies with its descriptor (and so
/// with the process, also on `kill -9`), so a crash never leaves a lock stuck.
package enum FileLock {
    /// The lock was still held by someone else after the wait allowed.
    package struct Timeout: Error, Sendable, Equatable, CustomStringConvertible {
        /// The locked file.
        package var path: String
        /// How long dsar waited, in seconds.
        package var seconds: Double

        /// Makes the error.
        package init(path: String, seconds: Double) {
            self.path = path
            self.seconds = seconds
        }

        package var description: String {
            "\(path) is locked by another process (flock) for more than \(Int(seconds)) s"
        }
    }

    /// How long a lock may be waited for.
    package enum Wait: Sendable, Equatable {
        /// Fail at once if it is held (``tryLock(fd:path:)`` returns false; the others throw ``Timeout``).
        case none
        /// Block until it is free.
        case forever
        /// Poll until it is free, at most this many seconds.
        case seconds(Double)
    }

    /// Takes `flock(LOCK_EX)` on `fd` without waiting: true when taken, false when another holds it.
    package static func tryLock(fd: Int32, path: String) throws -> Bool {
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            if err == EINTR { continue }
            if err == EWOULDBLOCK { return false }
            throw DSARError.syscall("cannot lock", path: path, errno: err)
        }
        return true
    }

    /// Takes `flock(LOCK_EX)` on `fd`, waiting as `wait` allows (throws ``Timeout`` when it runs out).
    package static func lock(fd: Int32, path: String, wait: Wait = .forever) throws {
        switch wait {
        case .forever:
            while flock(fd, LOCK_EX) != 0 {
                let err = errno
                if err != EINTR { throw DSARError.syscall("cannot lock", path: path, errno: err) }
            }
        case .none:
            if try !tryLock(fd: fd, path: path) { throw Timeout(path: path, seconds: 0) }
        case .seconds(let limit):
            let deadline = Date().addingTimeInterval(limit)
            while try !tryLock(fd: fd, path: path) {
                guard Date() < deadline else { throw Timeout(path: path, seconds: limit) }
                usleep(10_000)
            }
        }
    }

    /// Releases a lock taken on `fd` (closing the descriptor releases it too).
    package static func unlock(fd: Int32) {
        _ = flock(fd, LOCK_UN)
    }

    /// Runs `body` holding `flock(LOCK_EX)` on the open descriptor `fd`, released afterwards.
    package static func withExclusive<T>(
        fd: Int32, path: String, wait: Wait = .forever, _ body: () throws -> T
    ) throws -> T {
        try lock(fd: fd, path: path, wait: wait)
        defer { unlock(fd: fd) }
        return try body()
    }

    /// Runs `body` holding `flock(LOCK_EX)` on the lock file `path` (created 0600 if missing, never
    /// through a symlink); the descriptor is closed, and the lock released, afterwards.
    package static func withExclusive<T>(path: String, wait: Wait = .forever, _ body: () throws -> T) throws -> T {
        let fd = try openLockFile(path)
        defer { close(fd) }
        try lock(fd: fd, path: path, wait: wait)
        return try body()
    }

    /// Opens (creating, mode 0600) a lock file for `flock`; refuses a symlink.
    package static func openLockFile(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0 { throw DSARError.syscall("cannot open lock file", path: path) }
        return fd
    }
}
