import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reading the files of a published outbox entry for `dsar serve`'s download links: only regular
/// files directly inside `outbox/<job-id>/`, opened without following symlinks (the entry itself
/// included), never read whole, each with the entity tag of its content.
package enum OutboxDownload {
    /// An open file of an entry; closed when the last reference goes.
    package final class OpenFile: Sendable {
        /// The descriptor (read with ``read(at:into:)``).
        let fd: Int32
        /// Its size when it was opened.
        package let size: Int64
        /// Its strong entity tag (quoted hex SHA-256 of the content), nil when dsar has no record
        /// of the content's hash.
        package let etag: String?

        init(fd: Int32, size: Int64, etag: String?) {
            self.fd = fd
            self.size = size
            self.etag = etag
        }

        deinit { close(fd) }

        /// Reads at most `buffer.count` bytes at `offset` (pread); 0 at the end of the file.
        package func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            while true {
                let n = pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
                if n >= 0 { return n }
                if errno != EINTR { throw DSARError.syscall("cannot read a download file", path: nil) }
            }
        }
    }

    /// What opening a file of an entry found.
    package enum Opened: Sendable {
        /// The file, ready to stream.
        case file(OpenFile)
        /// The entry or the file does not exist.
        case missing
        /// It exists but is not a regular file directly in the entry (a symlink, a directory…).
        case refused(String)
    }

    /// Opens the entry directory itself (`O_DIRECTORY | O_NOFOLLOW`); nil when there is none.
    /// Throws for an entry that is a symlink or not a directory.
    package static func openEntry(_ layout: SpoolLayout, jobID: String) throws -> Int32? {
        guard UUIDv7.isValid(jobID) else { return nil }
        let path = layout.outboxEntry(jobID)
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd >= 0 { return fd }
        let err = errno
        if err == ENOENT { return nil }
        throw DSARError.syscall("cannot open the outbox entry", path: path, errno: err)
    }

    /// Opens `name` inside the entry `dir` (an fd from ``openEntry(_:jobID:)``) for reading, without
    /// following a symlink; only a regular file is opened.
    package static func openFile(
        _ name: String, in dir: Int32, etag: (_ size: Int64, _ fd: Int32) throws -> String?
    )
        throws -> Opened
    {
        guard !name.contains("/"), !name.hasPrefix(".") else { return .refused("\(name) is not a file name") }
        let fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        if fd < 0 {
            let err = errno
            if err == ENOENT { return .missing }
            if err == ELOOP { return .refused("\(name) is a symlink") }
            throw DSARError.syscall("cannot open \(name) of an outbox entry", path: nil, errno: err)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let err = errno
            close(fd)
            throw DSARError.syscall("cannot stat \(name) of an outbox entry", path: nil, errno: err)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .refused("\(name) is not a regular file")
        }
        let size = Int64(st.st_size)
        do {
            return .file(OpenFile(fd: fd, size: size, etag: try etag(size, fd)))
        } catch {
            close(fd)
            throw error
        }
    }

    /// Reads a small file whole through its descriptor (at most `limit` bytes, else an error).
    package static func readAll(_ fd: Int32, size: Int64, limit: Int, name: String) throws -> [UInt8] {
        guard size <= Int64(limit) else {
            throw DSARError(.io, "\(name) of an outbox entry is \(size) bytes, more than the \(limit) expected")
        }
        var out = [UInt8](repeating: 0, count: Int(size))
        var done = 0
        while done < out.count {
            let n = out.withUnsafeMutableBytes { p in
                pread(fd, p.baseAddress! + done, p.count - done, off_t(done))
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw DSARError.syscall("cannot read \(name) of an outbox entry", path: nil) }
            if n == 0 { break }
            done += n
        }
        return Array(out[0..<done])
    }

    /// The quoted hex SHA-256 of `bytes`: the entity tag of a small file.
    package static func etag(of bytes: [UInt8]) -> String {
        var h = StreamingSHA256()
        h.update(bytes)
        return "\"" + h.hexDigest() + "\""
    }

    /// The bundle's entity tag from its manifest: the SHA-256 the manifest states for it, when the
    /// file's size is the size the manifest states (else the entry is damaged: an error, since
    /// serving it under the manifest's hash would be a false statement).
    package static func bundleETag(manifest: [UInt8]?, size: Int64) throws -> String? {
        guard let manifest, let doc = try? JSONParser.parse(manifest),
            case .string(let sha)? = doc["bundle"]?["sha256"]
        else { return nil }
        var stated: Int64?
        if case .number(let n)? = doc["bundle"]?["size"] { stated = Int64(n) }
        guard stated == size else {
            throw DSARError(
                .verification,
                "bundle.zip.age is \(size) bytes but its manifest states \(stated.map { "\($0)" } ?? "no size"); the entry is damaged and is not served (check it with dsar verify)"
            )
        }
        guard sha.utf8.count == 64, Hex.decode(sha) != nil else { return nil }
        return "\"" + sha.lowercased() + "\""
    }
}

/// A `Range` request header (RFC 9110 §14) against a file of `size` bytes: one range of bytes.
package enum HTTPByteRange: Sendable, Equatable {
    /// No range asked for, or one this server ignores (another unit, several ranges, bad syntax): the whole file.
    case whole
    /// Bytes `lower...upper` (inclusive), within the file.
    case bytes(lower: Int64, upper: Int64)
    /// A range that no byte of the file satisfies (416).
    case unsatisfiable

    /// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`.
    package static func parse(_ header: String?, size: Int64) -> HTTPByteRange {
        guard let header else { return .whole }
        let h = header.trimmingCharacters(in: .whitespaces)
        guard h.count > 6, h.prefix(6).lowercased() == "bytes=" else { return .whole }
        let spec = h.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return .whole }
        func number(_ s: Substring) -> Int64? {
            let t = s.trimmingCharacters(in: .whitespaces)
            guard !t.isEmpty, t.utf8.count <= 18, t.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int64(t)
        }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let n = number(last) else { return .whole }
            guard n > 0, size > 0 else { return .unsatisfiable }
            return .bytes(lower: max(0, size - n), upper: size - 1)
        }
        guard let a = number(first) else { return .whole }
        if last.trimmingCharacters(in: .whitespaces).isEmpty {
            return a < size ? .bytes(lower: a, upper: size - 1) : .unsatisfiable
        }
        guard let b = number(last), a <= b else { return .whole }
        return a < size ? .bytes(lower: a, upper: min(b, size - 1)) : .unsatisfiable
    }
}

extension OutboxDownload {
    /// Whether an `If-None-Match` header matches `etag` (weak comparison, RFC 9110 §13.1.2): `*` or
    /// a list naming the same opaque tag, `W/` or not.
    package static func ifNoneMatch(_ header: String?, matches etag: String?) -> Bool {
        guard let header, let etag else { return false }
        func opaque(_ t: Substring) -> Substring {
            let s = t.trimmingCharacters(in: .whitespaces)
            return Substring(s.hasPrefix("W/") ? String(s.dropFirst(2)) : s)
        }
        let mine = opaque(Substring(etag))
        for part in header.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p == "*" || opaque(Substring(p)) == mine { return true }
        }
        return false
    }
}
