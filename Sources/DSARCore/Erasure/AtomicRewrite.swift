import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Rewrites a file so that it is at every moment wholly old or wholly new: a sibling temp file in
/// the same directory (owner, group and mode copied), fsync, a check that the source did not change
/// meanwhile, `rename` over the original, fsync of the directory. No copy of the old content is kept.
public enum AtomicRewrite {
    /// The result: SHA-256 of the old and new content (as stored on disk).
    public struct Result: Sendable {
        public var before: String
        public var after: String
        public var changed: Bool
    }

    /// Calls `body(input fd, output fd)`; `body` reads the source from the first and writes the new
    /// content to the second. Fails (leaving the source untouched) if the source changes meanwhile.
    public static func rewrite(_ path: String, _ body: (Int32, Int32, String) throws -> Void) throws -> Result {
        // Never blocks (a FIFO put in its place); the file is checked to be regular below.
        let inFD = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
        if inFD < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(inFD) }
        var st = stat()
        guard fstat(inFD, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            let kind = FileSystem.Status(st).kind
            throw SourceFile.refusal(path, kind: kind, SourceFile.problem(kind: kind, size: 0, options: SourceFile.Options()) ?? "not a regular file")
        }
        let dir = (path as NSString).deletingLastPathComponent
        removeStaleTemps(for: path)
        let tmp = (dir.isEmpty ? "." : dir) + "/.\((path as NSString).lastPathComponent).dsar-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let outFD = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if outFD < 0 { throw DSARError.syscall("cannot create", path: tmp) }
        var renamed = false
        defer {
            close(outFD)
            if !renamed { unlink(tmp) }
        }
        _ = fchown(outFD, st.st_uid, st.st_gid)
        if fchmod(outFD, st.st_mode & 0o7777) != 0 { throw DSARError.syscall("cannot set mode on", path: tmp) }
        try body(inFD, outFD, tmp)
        if fsync(outFD) != 0 { throw DSARError.syscall("cannot fsync", path: tmp) }
        let before = try hash(fd: inFD, path: path)
        let after = try hash(fd: outFD, path: tmp)
        // Never rewrite blindly: the source must be exactly what was read.
        var now = stat()
        guard stat(path, &now) == 0, now.st_ino == st.st_ino, now.st_size == st.st_size,
            now.st_mtim.tv_sec == st.st_mtim.tv_sec, now.st_mtim.tv_nsec == st.st_mtim.tv_nsec
        else {
            throw DSARError(.processing, "\(path) changed while it was being rewritten; it was left untouched (rerun to erase)", path: path)
        }
        if before == after { return Result(before: before, after: after, changed: false) }
        CrashPoint.hit("erase.synced")
        try FileSystem.rename(tmp, to: path)
        renamed = true
        try FileSystem.syncDirectory(dir.isEmpty ? "." : dir)
        CrashPoint.hit("erase.renamed")
        return Result(before: before, after: after, changed: true)
    }

    /// Removes temp files a killed rewrite of `path` left behind (`.<name>.dsar-<pid>-<n>.tmp` whose
    /// process is gone). They hold the new, already-erased content, never the old.
    static func removeStaleTemps(for path: String) {
        let dir = (path as NSString).deletingLastPathComponent
        let prefix = ".\((path as NSString).lastPathComponent).dsar-"
        for name in (try? FileSystem.list(dir.isEmpty ? "." : dir)) ?? [] where name.hasPrefix(prefix) && name.hasSuffix(".tmp") {
            let pid = Int32(name.dropFirst(prefix.count).split(separator: "-").first ?? "") ?? 0
            if pid > 0 && pid != getpid() && kill(pid, 0) == 0 { continue }
            unlink((dir.isEmpty ? "." : dir) + "/" + name)
        }
    }

    /// SHA-256 (hex) of a whole file, read with pread from offset 0.
    public static func hash(fd: Int32, path: String) throws -> String {
        var h = StreamingSHA256()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off: off_t = 0
        while true {
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot read", path: path)
            }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            off += off_t(n)
        }
        return h.hexDigest()
    }

    /// SHA-256 (hex) of a file by path.
    public static func hash(path: String) throws -> String {
        let fd = try SourceFile.open(path)
        defer { close(fd) }
        return try hash(fd: fd, path: path)
    }

    /// Copies `source` to `out`, replacing each edit's byte range with its bytes (edits sorted, disjoint).
    public static func splice(from inFD: Int32, path: String, edits: [(range: Range<Int64>, bytes: [UInt8])], to out: (UnsafeRawBufferPointer) throws -> Void) throws {
        var pos: Int64 = 0
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        func copy(until end: Int64?) throws {
            while end == nil || pos < end! {
                try SourceFile.checkCancelled(path)
                let want = end.map { Int(min(Int64(buf.count), $0 - pos)) } ?? buf.count
                let n = buf.withUnsafeMutableBytes { pread(inFD, $0.baseAddress, want, off_t(pos)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DSARError.syscall("cannot read", path: path)
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
