import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Files holding secrets (private keys, the pseudonym key, database password files), checked the
/// same way everywhere before a byte is read.
///
/// The path must name a regular file itself (a symlink is refused: who may change the link is a
/// second, unchecked party), which group and others cannot access at all (`mode & 0o077 == 0`) and
/// which belongs to the user dsar runs as, or to root. A violation is a ``DSARError/Code/permissions``
/// error (exit 77) naming the file and the command that fixes it.
package enum SecretFile {
    /// Checks `path` (see ``SecretFile``) without reading it; `what` names it in errors
    /// ("the signing key"). A missing file is ``DSARError/Code/notFound``.
    @discardableResult
    package static func check(_ path: String, what: String) throws -> FileSystem.Status {
        guard let st = try FileSystem.lstatus(path) else {
            throw DSARError(.notFound, "\(what) \(path) does not exist", path: path)
        }
        try check(st, path: path, what: what)
        return st
    }

    /// Checks and reads a secret file (at most `limit` bytes). The checks run on the opened
    /// descriptor, so the file read is the file checked.
    package static func read(_ path: String, what: String, limit: Int = 1 << 20) throws -> [UInt8] {
        let before = try check(path, what: what)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        if fd < 0 {
            let err = errno
            if err == ELOOP { throw symlink(path, what: what) }
            throw DSARError.syscall("cannot open \(what)", path: path, errno: err)
        }
        defer { close(fd) }
        var raw = stat()
        guard fstat(fd, &raw) == 0 else { throw DSARError.syscall("cannot stat \(what)", path: path) }
        let st = FileSystem.Status(raw)
        try check(st, path: path, what: what)
        guard st.inode == before.inode, st.device == before.device else {
            throw DSARError(.permissions, "\(what) \(path) was replaced while it was being read; rerun", path: path)
        }
        return try FileSystem.readAll(fd: fd, path: path, limit: limit)
    }

    /// The rules on a status already taken (by `lstat` or `fstat`).
    static func check(_ st: FileSystem.Status, path: String, what: String) throws {
        if st.kind == .symlink { throw symlink(path, what: what) }
        guard st.kind == .regular else {
            throw DSARError(
                .permissions, "\(what) \(path) must be a regular file, not a \(st.kind.rawValue)", path: path)
        }
        if st.mode & 0o077 != 0 {
            throw DSARError(
                .permissions,
                "\(what) \(path) is accessible by group or others (mode \(String(st.mode & 0o777, radix: 8))); run: chmod 600 \(path)",
                path: path)
        }
        let me = geteuid()
        if st.uid != me && st.uid != 0 {
            throw DSARError(
                .permissions,
                "\(what) \(path) belongs to uid \(st.uid), not to the user dsar runs as (uid \(me)) or root; run: chown \(me) \(path)",
                path: path)
        }
    }

    static func symlink(_ path: String, what: String) -> DSARError {
        DSARError(
            .permissions,
            "\(what) \(path) is a symbolic link; dsar reads secrets only from the file itself: point the configuration at the real file, or replace the link with it (mode 0600)",
            path: path)
    }
}
