import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Thin, explicit POSIX file operations: every durable change is write → fsync → rename → fsync(dir).
package enum FileSystem {
    /// What `lstat` says about a path, without following symlinks.
    package struct Status: Sendable, Equatable {
        package enum Kind: String, Sendable { case regular, directory, symlink, fifo, socket, device, other }
        package var kind: Kind
        package var size: Int64
        package var mtimeNanos: Int64
        package var ctimeNanos: Int64
        package var inode: UInt64
        package var device: UInt64
        package var mode: UInt32
        package var uid: UInt32
        package var gid: UInt32

        init(_ st: stat) {
            switch st.st_mode & S_IFMT {
            case S_IFREG: kind = .regular
            case S_IFDIR: kind = .directory
            case S_IFLNK: kind = .symlink
            case S_IFIFO: kind = .fifo
            case S_IFSOCK: kind = .socket
            case S_IFCHR, S_IFBLK: kind = .device
            default: kind = .other
            }
            size = Int64(st.st_size)
            mtimeNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
            ctimeNanos = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
            inode = UInt64(st.st_ino)
            device = UInt64(st.st_dev)
            mode = UInt32(st.st_mode & 0o7777)
            uid = st.st_uid
            gid = st.st_gid
        }

        /// Modification time as a `Date`.
        package var mtime: Date { Date(timeIntervalSince1970: Double(mtimeNanos) / 1e9) }
    }

    /// `lstat(2)`; nil when the path does not exist.
    package static func lstatus(_ path: String) throws -> Status? {
        var st = stat()
        if lstat(path, &st) != 0 {
            if errno == ENOENT { return nil }
            throw DSARError.syscall("cannot stat", path: path)
        }
        return Status(st)
    }

    /// `stat(2)` following symlinks; nil when the path does not exist.
    package static func status(_ path: String) throws -> Status? {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT { return nil }
            throw DSARError.syscall("cannot stat", path: path)
        }
        return Status(st)
    }

    /// Whether something (of any kind, a dangling symlink included) exists at `path`.
    package static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Creates a directory with an exact mode (umask ignored) unless it exists; fixes the mode if it does.
    package static func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) != 0 {
            if errno != EEXIST { throw DSARError.syscall("cannot create directory", path: path) }
            guard let st = try lstatus(path), st.kind == .directory else {
                throw DSARError(.io, "\(path) exists but is not a directory; move it away", path: path)
            }
            if st.mode & 0o7777 == UInt32(mode) { return }
        }
        if chmod(path, mode) != 0 { throw DSARError.syscall("cannot set mode on", path: path) }
    }

    /// fsyncs a directory so that renames and unlinks inside it are durable.
    package static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open directory", path: path) }
        defer { close(fd) }
        if fsync(fd) != 0 { throw DSARError.syscall("cannot fsync directory", path: path) }
    }

    /// Reads at most `count` bytes into `buffer` (at `offset` with `pread`, else from the current
    /// position), retrying on EINTR; returns how many were read (0 at the end of the file).
    package static func readSome(
        _ fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64? = nil, path: String
    ) throws -> Int {
        while true {
            let n = offset.map { pread(fd, buffer, count, off_t($0)) } ?? read(fd, buffer, count)
            if n >= 0 { return n }
            if errno != EINTR { throw DSARError.syscall("cannot read", path: path) }
        }
    }

    /// Reads `count` bytes at `offset`, or fewer where the file ends first, retrying on short reads and EINTR.
    package static func readFully(_ fd: Int32, count: Int, at offset: Int64, path: String) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { raw, got in
            got = 0
            while got < count {
                let n = try readSome(
                    fd, into: raw.baseAddress! + got, count: count - got, at: offset + Int64(got), path: path)
                if n == 0 { break }
                got += n
            }
        }
    }

    /// Writes all bytes to a descriptor, retrying on short writes and EINTR.
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot write", path: path)
            }
            offset += n
        }
    }

    /// Writes `data` to `path` atomically and durably: sibling temp file, fsync, rename, fsync(dir).
    ///
    /// The temp file is a dot file in the same directory, so an inbox or outbox watcher ignores it.
    /// With `syncDirectory: false` the rename is not yet durable: the caller fsyncs the directory
    /// once after a batch of writes (a crash before that shows the old file or the new, never a mix).
    package static func writeAtomically(
        _ path: String, _ data: [UInt8], mode: mode_t = 0o600, syncDirectory sync: Bool = true
    ) throws {
        let dir = TempFile.directory(of: path)
        let temp = try TempFile.create(near: path, mode: mode)
        let (tmp, fd) = (temp.path, temp.fd)
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        do {
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, path: tmp) }
            if fsync(fd) != 0 { throw DSARError.syscall("cannot fsync", path: tmp) }
        }
        try rename(tmp, to: path)
        ok = true
        if sync { try syncDirectory(dir) }
    }

    /// Writes `data` to a new (or truncated) file without fsync: for scratch files in `tmp/` (wiped
    /// after a crash) and for files in an outbox staging directory (the publisher fsyncs them all
    /// before the rename that makes them visible).
    package static func writeScratch(_ path: String, _ data: [UInt8], mode: mode_t = 0o600) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode)
        if fd < 0 { throw DSARError.syscall("cannot create", path: path) }
        defer { close(fd) }
        if fchmod(fd, mode) != 0 { throw DSARError.syscall("cannot set mode on", path: path) }
        try data.withUnsafeBytes { try writeAll(fd, $0, path: path) }
    }

    /// `rename(2)`, with an error naming both paths.
    package static func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 {
            let err = errno
            throw DSARError(
                .io, "cannot move \(from) to \(to): \(String(cString: strerror(err)))", path: from, errno: err)
        }
    }

    /// Renames `from` to `to` only if `to` does not exist (`renameat2(RENAME_NOREPLACE)`); false if it does.
    package static func renameNoReplace(_ from: String, to: String) throws -> Bool {
        let r = dsar_rename_noreplace(from, to)
        if r == 0 { return true }
        let err = errno
        if err == EEXIST { return false }
        if err == EINVAL || err == ENOSYS {
            // Filesystem without RENAME_NOREPLACE: fall back to link + unlink semantics via exists check.
            if exists(to) { return false }
            try rename(from, to: to)
            return true
        }
        throw DSARError(.io, "cannot move \(from) to \(to): \(String(cString: strerror(err)))", path: from, errno: err)
    }

    /// Reads a whole regular file, at most `limit` bytes (error beyond).
    package static func readFile(_ path: String, limit: Int = Int.max) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        return try readAll(fd: fd, path: path, limit: limit)
    }

    /// Reads everything from a descriptor, at most `limit` bytes (error beyond).
    package static func readAll(fd: Int32, path: String, limit: Int = Int.max) throws -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw DSARError.syscall("cannot read", path: path)
            }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
            if out.count > limit {
                throw DSARError(.invalidInput, "\(path) is larger than \(limit) bytes", path: path)
            }
        }
        return out
    }

    /// Directory entries (names only, no `.`/`..`), sorted bytewise.
    package static func list(_ path: String) throws -> [String] {
        guard let d = opendir(path) else { throw DSARError.syscall("cannot list directory", path: path) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            names.append(name)
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    /// Removes a file or a directory tree; missing paths are fine. Never follows symlinks.
    package static func removeTree(_ path: String) throws {
        guard let st = try lstatus(path) else { return }
        if st.kind == .directory {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw DSARError.syscall("cannot remove directory", path: path) }
        } else if unlink(path) != 0 && errno != ENOENT {
            throw DSARError.syscall("cannot remove", path: path)
        }
    }

    /// Removes a file; a missing file is fine.
    package static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw DSARError.syscall("cannot remove", path: path) }
    }

    /// The absolute form of a path (relative to the working directory), without resolving symlinks.
    package static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return (path as NSString).standardizingPath }
        return ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path) as NSString)
            .standardizingPath
    }
}
