import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A new temp file beside the file it will replace: `.<name>.dsar-<pid>-<random>.tmp` in the same
/// directory, created `O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC` (never an existing file, never
/// through a symlink) with an exact mode.
///
/// The name is a dot file ending in `.tmp`, which inbox and outbox watchers ignore and which start-up
/// recovery removes; ``removeStale(near:)`` removes those of `<name>` whose process is gone.
package struct TempFile: Sendable {
    /// The temp file's path.
    package let path: String
    /// Its descriptor, open for reading and writing; the caller closes it.
    package let fd: Int32

    /// The name prefix of every temp sibling of `name`: `.<name>.dsar-`.
    package static func prefix(of name: String) -> String { ".\(name).dsar-" }

    /// A fresh temp path beside `path` (not created).
    package static func siblingPath(of path: String) -> String {
        let dir = directory(of: path)
        let base = (path as NSString).lastPathComponent
        return dir + "/" + prefix(of: base) + "\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
    }

    /// Creates a new temp file beside `path`, mode exactly `mode` (umask ignored), open `O_RDWR`.
    package static func create(near path: String, mode: mode_t = 0o600) throws -> TempFile {
        while true {
            let tmp = siblingPath(of: path)
            let fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
            if fd < 0 {
                let err = errno
                if err == EEXIST || err == EINTR { continue }
                throw DSARError.syscall("cannot create", path: tmp, errno: err)
            }
            if fchmod(fd, mode) != 0 {
                let err = errno
                close(fd)
                unlink(tmp)
                throw DSARError.syscall("cannot set mode on", path: tmp, errno: err)
            }
            return TempFile(path: tmp, fd: fd)
        }
    }

    /// Whether `name` is a temp sibling of `base` made by ``create(near:mode:)``, and the pid that
    /// made it.
    package static func owner(of name: String, base: String) -> Int32? {
        let prefix = prefix(of: base)
        guard name.hasPrefix(prefix), name.hasSuffix(".tmp") else { return nil }
        return Int32(name.dropFirst(prefix.count).split(separator: "-").first ?? "") ?? 0
    }

    /// Removes the temp siblings of `path` that a killed process left behind, and earlier ones of
    /// this process (its callers replace one file at a time); those of other live processes stay.
    package static func removeStale(near path: String) {
        let dir = directory(of: path)
        let base = (path as NSString).lastPathComponent
        for name in (try? FileSystem.list(dir)) ?? [] {
            guard let pid = owner(of: name, base: base) else { continue }
            if pid > 0 && pid != getpid() && kill(pid, 0) == 0 { continue }
            unlink(dir + "/" + name)
        }
    }

    /// The directory part of `path` (`.` for a bare name).
    static func directory(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }
}
