import CArchive
import Crypto
import Foundation

/// Writes a ZIP (deflate) with libarchive straight into a sink (the age encryptor), so no
/// unencrypted archive ever touches the disk. Entries must be added with their exact size.
///
/// Every libarchive result is checked. After the first failure (the sink threw, e.g. the disk is
/// full, or libarchive reported an error) the writer is *failed*: every further call throws that
/// first error, the write callback refuses to hand anything more to the sink, and the archive is
/// released with `archive_write_fail` + `archive_write_free`, which never deflates or writes again
/// (a plain close would finish the entry: deflate over input that no longer exists).
package final class ZipStreamWriter {
    /// One file written into the archive, with what the manifest lists about it.
    package struct Entry: Sendable, Equatable {
        package var name: String
        package var size: Int64
        package var sha256: String
    }

    final class SinkBox {
        let sink: ([UInt8]) throws -> Void
        var error: Error?
        /// Set on the first failure; from then on the callback never calls the sink again.
        var failed = false
        var bytes: Int64 = 0
        init(_ sink: @escaping ([UInt8]) throws -> Void) { self.sink = sink }
    }

    private let archive: OpaquePointer
    private let box: SinkBox
    private let mtime: Date
    /// `archive_write_close` succeeded: the archive is complete.
    private var closed = false
    /// Entries written so far, in order.
    package private(set) var entries: [Entry] = []
    /// Compressed bytes handed to the sink so far.
    package var bytesWritten: Int64 { box.bytes }

    /// Starts a ZIP whose bytes go to `sink`; every entry gets `mtime` (deterministic output).
    package init(mtime: Date, sink: @escaping ([UInt8]) throws -> Void) throws {
        guard let a = archive_write_new() else { throw DSARError(.io, "libarchive: cannot create a writer") }
        archive = a
        box = SinkBox(sink)
        self.mtime = mtime
        try check(archive_write_set_format_zip(a), "set ZIP format")
        try check(archive_write_zip_set_compression_deflate(a), "set deflate")
        // Stream exactly what is written; no padding of the last block.
        try check(archive_write_set_bytes_per_block(a, 0), "set block size")
        try check(archive_write_set_bytes_in_last_block(a, 1), "set last block size")
        let writeCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?, UnsafeRawPointer?, Int) -> Int = {
            _, client, buffer, length in
            let box = Unmanaged<SinkBox>.fromOpaque(client!).takeUnretainedValue()
            // A failed archive writes nothing more, whatever libarchive still tries to flush.
            if box.failed { return -1 }
            guard let buffer, length > 0 else { return 0 }
            do {
                try box.sink(Array(UnsafeRawBufferPointer(start: buffer, count: length)))
                box.bytes += Int64(length)
                return length
            } catch {
                box.error = error
                box.failed = true
                return -1
            }
        }
        let client = Unmanaged.passUnretained(box).toOpaque()
        try check(archive_write_open2(a, client, nil, writeCallback, nil, nil), "open")
    }

    deinit {
        // Never close here: closing finishes the current entry (deflate, then a write). An archive
        // that was not finished cleanly is marked fatal, so that free releases it without writing.
        if !closed { archive_write_fail(archive) }
        archive_write_free(archive)
    }

    /// Whether an earlier call failed (every later call throws).
    package var failed: Bool { box.failed }

    private func check(_ rc: Int32, _ what: String) throws {
        if rc < ARCHIVE_WARN {
            box.failed = true
            if let e = box.error { throw e }
            let msg = archive_error_string(archive).map { String(cString: $0) } ?? "error \(rc)"
            let err = archive_errno(archive)
            let e = DSARError(.io, "libarchive: cannot \(what): \(msg)", errno: err > 0 ? err : nil)
            box.error = e
            throw e
        }
    }

    /// Runs one public operation: refuses after a failure, and marks the writer failed when the
    /// operation throws (an entry left half-written must never be finished).
    private func guarded<T>(_ body: () throws -> T) throws -> T {
        if box.failed { throw box.error ?? DSARError(.io, "libarchive: the archive already failed") }
        guard !closed else { throw DSARError(.processing, "libarchive: the archive is already finished") }
        do {
            return try body()
        } catch {
            if !box.failed {
                box.failed = true
                box.error = error
            }
            throw error
        }
    }

    /// Makes an entry name safe: `/`-separated, no `..`, no absolute path, no empty or dot parts.
    package static func sanitize(_ name: String) -> String {
        let parts = name.split(separator: "/").map(String.init).filter { !$0.isEmpty && $0 != "." && $0 != ".." }
        let cleaned = parts.map { p -> String in
            var s = p.replacingOccurrences(of: "\\", with: "_")
            s = String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "_" : Character($0) })
            return s
        }
        return cleaned.isEmpty ? "_" : cleaned.joined(separator: "/")
    }

    /// Adds a file from bytes.
    package func add(_ name: String, bytes: [UInt8]) throws {
        try guarded { try addBytes(name, bytes) }
    }

    private func addBytes(_ name: String, _ bytes: [UInt8]) throws {
        try begin(name, size: Int64(bytes.count))
        var hasher = SHA256()
        if !bytes.isEmpty {
            try bytes.withUnsafeBytes { try writeData($0) }
            hasher.update(data: bytes)
        }
        finishEntry(name, size: Int64(bytes.count), hasher: hasher)
    }

    /// Adds a file of exactly `size` bytes that `produce` delivers in chunks (through the callback
    /// it is given), so a large file never has to exist whole in memory or on disk.
    package func add(_ name: String, size: Int64, produce: (_ emit: ([UInt8]) throws -> Void) throws -> Void) throws {
        try guarded { try addProduced(name, size: size, produce: produce) }
    }

    private func addProduced(
        _ name: String, size: Int64, produce: (_ emit: ([UInt8]) throws -> Void) throws -> Void
    ) throws {
        try begin(name, size: size)
        var hasher = SHA256()
        var total: Int64 = 0
        try produce { chunk in
            guard total + Int64(chunk.count) <= size else {
                throw DSARError(.processing, "\(name): more than the announced \(size) bytes were produced")
            }
            try chunk.withUnsafeBytes { try writeData($0) }
            hasher.update(data: chunk)
            total += Int64(chunk.count)
        }
        guard total == size else { throw DSARError(.processing, "\(name): \(total) bytes produced, \(size) announced") }
        finishEntry(name, size: size, hasher: hasher)
    }

    /// Adds a file by streaming it from disk.
    package func add(_ name: String, file path: String) throws {
        try guarded { try addFile(name, path) }
    }

    private func addFile(_ name: String, _ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DSARError.syscall("cannot stat", path: path) }
        let size = Int64(st.st_size)
        try begin(name, size: size)
        var hasher = SHA256()
        var buf = [UInt8](repeating: 0, count: 256 * 1024)
        var total: Int64 = 0
        while total < size {
            let n = try buf.withUnsafeMutableBytes {
                try FileSystem.readSome(fd, into: $0.baseAddress!, count: $0.count, path: path)
            }
            if n == 0 { break }
            let take = min(n, Int(size - total))
            try buf.withUnsafeBytes { try writeData(UnsafeRawBufferPointer(rebasing: $0[0..<take])) }
            buf.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<take])) }
            total += Int64(take)
        }
        guard total == size else { throw DSARError(.io, "\(path) changed size while being archived", path: path) }
        finishEntry(name, size: size, hasher: hasher)
    }

    private func begin(_ name: String, size: Int64) throws {
        guard let e = archive_entry_new() else { throw DSARError(.io, "libarchive: cannot create an entry") }
        defer { archive_entry_free(e) }
        archive_entry_set_pathname_utf8(e, ZipStreamWriter.sanitize(name))
        archive_entry_set_size(e, size)
        archive_entry_set_filetype(e, 0o100000)
        archive_entry_set_perm(e, 0o644)
        let t = Int(mtime.timeIntervalSince1970)
        archive_entry_set_mtime(e, t, 0)
        try check(archive_write_header(archive, e), "write the header of \(name)")
    }

    private func writeData(_ p: UnsafeRawBufferPointer) throws {
        var off = 0
        while off < p.count {
            let n = archive_write_data(archive, p.baseAddress! + off, p.count - off)
            if n < 0 {
                try check(Int32(truncatingIfNeeded: n), "write data")
                // A warning-level result with no progress: treat as a failure rather than loop.
                try check(ARCHIVE_FATAL, "write data")
            }
            if n == 0 { try check(ARCHIVE_FATAL, "write data (no progress)") }
            off += n
        }
    }

    private func finishEntry(_ name: String, size: Int64, hasher: SHA256) {
        entries.append(Entry(name: ZipStreamWriter.sanitize(name), size: size, sha256: Hex.encode(hasher.finalize())))
    }

    /// Writes the central directory and flushes everything to the sink.
    package func finish() throws {
        guard !closed else { return }
        if box.failed { throw box.error ?? DSARError(.io, "libarchive: the archive already failed") }
        try check(archive_write_close(archive), "finish the archive")
        if box.failed { throw box.error ?? DSARError(.io, "libarchive: the archive failed while finishing") }
        closed = true
    }
}
