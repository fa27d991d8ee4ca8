import CShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Rewrites a file so that it is at every moment wholly old or wholly new: a sibling temp file in
/// the same directory (owner, group, mode and extended attributes copied), fsync, a check that the source did not change
/// meanwhile, `rename` over the original, fsync of the directory. No copy of the old content is kept.
package enum AtomicRewrite {
    /// The result: SHA-256 of the old and new content (as stored on disk).
    package struct Result: Sendable {
        package var before: String
        package var after: String
        package var changed: Bool
    }

    /// Calls `body(input fd, output fd)`; `body` reads the source from the first and writes the new
    /// content to the second. Fails (leaving the source untouched) if the source changes meanwhile:
    /// the final check runs under `flock(LOCK_EX)` on the source and compares inode, size and mtime,
    /// so neither a cooperating writer (which takes the lock) nor any other one goes unnoticed up to
    /// the check. Owner, group, mode and extended attributes (ACLs included) are copied first; if
    /// they cannot be, the source is left untouched and the error says why.
    package static func rewrite(_ path: String, _ body: (Int32, Int32, String) throws -> Void) throws -> Result {
        // Never blocks (a FIFO put in its place); the file is checked to be regular below.
        let inFD = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        if inFD < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(inFD) }
        let st = try regularStatus(inFD, path: path)
        let (tmp, outFD) = try createTemp(for: path, like: st, source: inFD)
        var renamed = false
        defer {
            close(outFD)
            if !renamed { unlink(tmp) }
        }
        try body(inFD, outFD, tmp)
        if fsync(outFD) != 0 { throw DSARError.syscall("cannot fsync", path: tmp) }
        let before = try hash(fd: inFD, path: path)
        let after = try hash(fd: outFD, path: tmp)
        try lock(inFD, path: path)
        defer { FileLock.unlock(fd: inFD) }
        // Never rewrite blindly: the source must be exactly what was read.
        var now = stat()
        guard stat(path, &now) == 0, now.st_ino == st.st_ino, now.st_dev == st.st_dev, now.st_size == st.st_size,
            now.st_mtim.tv_sec == st.st_mtim.tv_sec, now.st_mtim.tv_nsec == st.st_mtim.tv_nsec
        else {
            throw DSARError(
                .processing, "\(path) changed while it was being rewritten; it was left untouched (rerun to erase)",
                path: path)
        }
        if before == after { return Result(before: before, after: after, changed: false) }
        CrashPoint.hit("erase.synced")
        try FileSystem.rename(tmp, to: path)
        renamed = true
        try FileSystem.syncDirectory(directory(of: path))
        CrashPoint.hit("erase.renamed")
        return Result(before: before, after: after, changed: true)
    }

    /// How many times an append-only rewrite processes what was appended meanwhile before it gives up.
    package static let maxAppendRounds = 64

    /// The result of ``rewriteAppendOnly(_:sourceFD:maxRounds:_:)``.
    package struct AppendResult: Sendable {
        package var result: Result
        /// Bytes of the source that were processed (the size of the old file at the rename).
        package var consumed: Int64
        /// Processing rounds (1: nothing was appended during the rewrite).
        package var rounds: Int
    }

    /// Rewrites a file that other processes may keep appending to (a log). `body(out fd, out path,
    /// source range, first)` reads exactly the bytes `range` of the source and writes their new form
    /// to the output; the first call covers `0..<` (the size when the rewrite started), every
    /// further call the bytes appended since the previous one (same rules, appended to the temp
    /// file). Before the rename, under `flock(LOCK_EX)` on the source, inode and size are compared
    /// again; if it grew, the tail is processed and the check repeated, at most `maxRounds` times,
    /// then the rewrite fails and the source stays untouched. No line written before the rename is
    /// lost.
    ///
    /// What stays open (documented in the README): a non-cooperating writer (one that does not take
    /// the lock, as logrotate and nginx do not) that appends between the final check and the rename
    /// writes into the old inode; so does a writer that keeps its descriptor open until it reopens
    /// the path. ``rescueTail(_:sourceFD:consumed:settle:maxWait:_:)`` after the connector's `reopen:`
    /// command takes those bytes over. `sourceFD` is the caller's open descriptor of `path` (kept
    /// open for the rescue).
    package static func rewriteAppendOnly(
        _ path: String, sourceFD inFD: Int32, maxRounds: Int = maxAppendRounds,
        _ body: (Int32, String, Range<Int64>, Bool) throws -> Void
    ) throws -> AppendResult {
        let st = try regularStatus(inFD, path: path)
        let (tmp, outFD) = try createTemp(for: path, like: st, source: inFD)
        var renamed = false
        var locked = false
        defer {
            if locked { FileLock.unlock(fd: inFD) }
            close(outFD)
            if !renamed { unlink(tmp) }
        }
        var consumed: Int64 = 0
        var size = Int64(st.st_size)
        var rounds = 0
        while true {
            if size < consumed {
                throw DSARError(
                    .processing,
                    "\(path) was truncated while it was being rewritten (from \(consumed) to \(size) bytes: copytruncate?); it was left untouched (rerun to erase)",
                    path: path)
            }
            if size > consumed {
                if locked {
                    FileLock.unlock(fd: inFD)
                    locked = false
                }
                guard rounds < maxRounds else {
                    throw DSARError(
                        .processing,
                        "\(path) kept growing while it was being rewritten (\(maxRounds) rounds of appended lines processed, still growing); it was left untouched (rerun to erase, or stop its writer)",
                        path: path)
                }
                try body(outFD, tmp, consumed..<size, rounds == 0)
                rounds += 1
                consumed = size
            }
            try lock(inFD, path: path)
            locked = true
            var now = stat()
            guard stat(path, &now) == 0, now.st_ino == st.st_ino, now.st_dev == st.st_dev else {
                throw DSARError(
                    .processing,
                    "\(path) was replaced (rotated?) while it was being rewritten; it was left untouched (rerun to erase)",
                    path: path)
            }
            size = Int64(now.st_size)
            if size == consumed { break }
        }
        // Still under the lock: the old content is exactly the `consumed` bytes that were processed.
        if fsync(outFD) != 0 { throw DSARError.syscall("cannot fsync", path: tmp) }
        let before = try hash(fd: inFD, path: path, limit: consumed)
        let after = try hash(fd: outFD, path: tmp)
        if before == after {
            return AppendResult(
                result: Result(before: before, after: after, changed: false), consumed: consumed, rounds: rounds)
        }
        CrashPoint.hit("erase.synced")
        try FileSystem.rename(tmp, to: path)
        renamed = true
        FileLock.unlock(fd: inFD)
        locked = false
        try FileSystem.syncDirectory(directory(of: path))
        CrashPoint.hit("erase.renamed")
        return AppendResult(
            result: Result(before: before, after: after, changed: true), consumed: consumed, rounds: rounds)
    }

    /// After a rename: bytes a writer still holding the old file open wrote into the old inode
    /// (`sourceFD`) beyond `consumed`. Waits until the old inode stopped growing for `settle`
    /// seconds (at most `maxWait`), then passes each new range to `body(out fd, out path, range)`
    /// with `out` the new file opened `O_APPEND`. Returns the bytes taken over, and whether the old
    /// inode was still growing at `maxWait` (a writer that never reopens: its later lines are lost).
    package static func rescueTail(
        _ path: String, sourceFD: Int32, consumed: Int64, settle: Double = 0.3, maxWait: Double = 5,
        _ body: (Int32, String, Range<Int64>) throws -> Void
    ) throws -> (bytes: Int64, stillGrowing: Bool) {
        var done = consumed
        let deadline = Date().addingTimeInterval(maxWait)
        var lastGrowth = Date()
        var out: Int32 = -1
        defer { if out >= 0 { close(out) } }
        while true {
            var st = stat()
            guard fstat(sourceFD, &st) == 0 else { throw DSARError.syscall("cannot stat the old inode of", path: path) }
            let size = Int64(st.st_size)
            if size > done {
                if out < 0 {
                    out = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
                    if out < 0 { throw DSARError.syscall("cannot open for appending", path: path) }
                }
                try body(out, path, done..<size)
                done = size
                lastGrowth = Date()
            }
            if Date().timeIntervalSince(lastGrowth) >= settle { break }
            if Date() >= deadline {
                if out >= 0 && fsync(out) != 0 { throw DSARError.syscall("cannot fsync", path: path) }
                return (done - consumed, true)
            }
            usleep(20_000)
        }
        if out >= 0 && fsync(out) != 0 { throw DSARError.syscall("cannot fsync", path: path) }
        return (done - consumed, false)
    }

    /// Other processes that still have the file `fd` refers to open for writing (`pid (command)`),
    /// found through `/proc/<pid>/fd` and `fdinfo` (readers such as `tail -f` do not count; only the
    /// processes this one may inspect: all of them as root).
    package static func otherHolders(of fd: Int32) -> [String] {
        var target = stat()
        guard fstat(fd, &target) == 0, let procs = try? FileSystem.list("/proc") else { return [] }
        var out: [String] = []
        for p in procs {
            guard let pid = Int32(p), pid != getpid(), let fds = try? FileSystem.list("/proc/\(p)/fd") else { continue }
            for f in fds {
                var st = stat()
                if stat("/proc/\(p)/fd/\(f)", &st) == 0, st.st_ino == target.st_ino, st.st_dev == target.st_dev,
                    openForWriting(pid: p, fd: f)
                {
                    let comm = ((try? String(contentsOfFile: "/proc/\(p)/comm", encoding: .utf8)) ?? "?")
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                    out.append("\(pid) (\(comm))")
                    break
                }
            }
        }
        return out
    }

    /// Whether `/proc/<pid>/fdinfo/<fd>` says the descriptor is open O_WRONLY or O_RDWR (unknown: yes).
    static func openForWriting(pid: String, fd: String) -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8),
            let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags:") }),
            let flags = Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8)
        else { return true }
        return flags & 3 != 0
    }

    /// Takes `flock(LOCK_EX)` on `fd`, waiting at most `wait` seconds for a writer that holds it.
    static func lock(_ fd: Int32, path: String, wait: Double = 10) throws {
        do { try FileLock.lock(fd: fd, path: path, wait: .seconds(wait)) } catch let timeout as FileLock.Timeout {
            throw DSARError(
                .processing, "\(timeout); it was left untouched (rerun to erase)", path: path, cause: timeout)
        }
    }

    static func directory(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// Creates the sibling temp file with the source's owner, group, mode and extended attributes
    /// (ACLs are the xattrs `system.posix_acl_access`/`_default`), or throws naming what could not
    /// be copied (the source untouched).
    /// The status of the open source, which must be a regular file (a rewrite never replaces
    /// anything else).
    static func regularStatus(_ fd: Int32, path: String) throws -> stat {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let kind = FileSystem.Status(st).kind
            throw SourceFile.refusal(
                path, kind: kind,
                SourceFile.problem(kind: kind, size: 0, options: SourceFile.Options()) ?? "not a regular file")
        }
        return st
    }

    static func createTemp(for path: String, like st: stat, source inFD: Int32) throws -> (String, Int32) {
        removeStaleTemps(for: path)
        let temp = try TempFile.create(near: path, mode: 0o600)
        let (tmp, outFD) = (temp.path, temp.fd)
        do {
            try copyMetadata(from: inFD, st, to: outFD, path: path)
        } catch {
            close(outFD)
            unlink(tmp)
            throw error
        }
        return (tmp, outFD)
    }

    /// Owner and group (chown), extended attributes (exactly the source's: inherited ones the
    /// source lacks are removed), mode; then checks the result.
    static func copyMetadata(from inFD: Int32, _ st: stat, to outFD: Int32, path: String) throws {
        func fail(_ what: String, _ err: Int32) -> DSARError {
            DSARError(
                .processing,
                "\(path): cannot give the rewritten file \(what) (\(String(cString: strerror(err)))); it was left untouched",
                path: path, errno: err)
        }
        var cur = stat()
        guard fstat(outFD, &cur) == 0 else { throw DSARError.syscall("cannot stat the temp file for", path: path) }
        if cur.st_uid != st.st_uid || cur.st_gid != st.st_gid, fchown(outFD, st.st_uid, st.st_gid) != 0 {
            let e = errno
            throw fail(
                "the owner \(st.st_uid):\(st.st_gid) of the original\(e == EPERM ? ": run dsar as root or as the file's owner" : "")",
                e)
        }
        let want = try xattrNames(inFD, path: path)
        for name in want {
            let value = try xattrValue(inFD, name, path: path)
            let rc = value.withUnsafeBytes { fsetxattr(outFD, name, $0.baseAddress, $0.count, 0) }
            if rc != 0 { throw fail("the extended attribute \(name)", errno) }
        }
        for name in try xattrNames(outFD, path: path) where !want.contains(name) {
            if fremovexattr(outFD, name) != 0 {
                throw fail("no extended attribute \(name) (inherited; the original has none)", errno)
            }
        }
        if fchmod(outFD, st.st_mode & 0o7777) != 0 {
            throw fail("the mode \(String(st.st_mode & 0o7777, radix: 8))", errno)
        }
        guard fstat(outFD, &cur) == 0 else { throw DSARError.syscall("cannot stat the temp file for", path: path) }
        guard cur.st_uid == st.st_uid, cur.st_gid == st.st_gid, cur.st_mode & 0o7777 == st.st_mode & 0o7777 else {
            throw DSARError(
                .processing,
                "\(path): the rewritten file did not keep the owner, group and mode of the original; it was left untouched",
                path: path)
        }
    }

    /// The names of a file's extended attributes (none where the filesystem has no xattrs).
    static func xattrNames(_ fd: Int32, path: String) throws -> [String] {
        while true {
            let n = flistxattr(fd, nil as UnsafeMutablePointer<CChar>?, 0)
            if n < 0 {
                if errno == ENOTSUP { return [] }
                throw DSARError.syscall("cannot list the extended attributes of", path: path)
            }
            if n == 0 { return [] }
            var buf = [CChar](repeating: 0, count: n)
            let got = flistxattr(fd, &buf, n)
            if got < 0 {
                if errno == ERANGE { continue }
                throw DSARError.syscall("cannot list the extended attributes of", path: path)
            }
            return buf[0..<got].split(separator: 0).map {
                String(decoding: $0.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
    }

    /// The value of one extended attribute.
    static func xattrValue(_ fd: Int32, _ name: String, path: String) throws -> [UInt8] {
        while true {
            let n = fgetxattr(fd, name, nil as UnsafeMutableRawPointer?, 0)
            if n < 0 { throw DSARError.syscall("cannot read the extended attribute \(name) of", path: path) }
            var buf = [UInt8](repeating: 0, count: max(n, 1))
            let got = buf.withUnsafeMutableBytes { fgetxattr(fd, name, $0.baseAddress, n) }
            if got < 0 {
                if errno == ERANGE { continue }
                throw DSARError.syscall("cannot read the extended attribute \(name) of", path: path)
            }
            return Array(buf[0..<got])
        }
    }

    /// Removes temp files a killed rewrite of `path` left behind (`.<name>.dsar-<pid>-<n>.tmp` whose
    /// process is gone). They hold the new, already-erased content, never the old.
    static func removeStaleTemps(for path: String) {
        TempFile.removeStale(near: path)
    }

    /// SHA-256 (hex) of a whole file (or its first `limit` bytes), read with pread from offset 0.
    package static func hash(fd: Int32, path: String, limit: Int64? = nil) throws -> String {
        var h = StreamingSHA256()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: off_t = 0
        while true {
            let want = limit.map { Int(min(Int64(buf.count), $0 - Int64(off))) } ?? buf.count
            if want <= 0 { break }
            let n = try buf.withUnsafeMutableBytes {
                try FileSystem.readSome(fd, into: $0.baseAddress!, count: want, at: Int64(off), path: path)
            }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            off += off_t(n)
        }
        return h.hexDigest()
    }

    /// SHA-256 (hex) of a file by path.
    package static func hash(path: String) throws -> String {
        let fd = try SourceFile.open(path)
        defer { close(fd) }
        return try hash(fd: fd, path: path)
    }

    /// Copies `source` to `out`, replacing each edit's byte range with its bytes (edits sorted, disjoint).
    package static func splice(
        from inFD: Int32, path: String, edits: [(range: Range<Int64>, bytes: [UInt8])],
        to out: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var pos: Int64 = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        func copy(until end: Int64?) throws {
            while end == nil || pos < end! {
                try SourceFile.checkCancelled(path)
                let want = end.map { Int(min(Int64(buf.count), $0 - pos)) } ?? buf.count
                let n = try buf.withUnsafeMutableBytes {
                    try FileSystem.readSome(inFD, into: $0.baseAddress!, count: want, at: pos, path: path)
                }
                if n == 0 { break }
                try buf.withUnsafeBytes { try out(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                pos += Int64(n)
            }
        }
        for e in edits {
            precondition(e.range.lowerBound >= pos, "edits must be sorted and disjoint")
            try copy(until: e.range.lowerBound)
            try e.bytes.withUnsafeBytes { try out($0) }
            pos = e.range.upperBound
        }
        try copy(until: nil)
    }
}
