import CZlib

#if canImport(Glibc)
import Glibc
#endif

/// Streaming gzip decompression (RFC 1952) of a file descriptor, via zlib.
///
/// Handles multi-member files (as made by `cat a.gz b.gz`): members are decoded one after another as a single
/// stream. Zero bytes padding the end of the file are ignored; anything else after a member must be another member.
/// Memory is bounded: a 1 MiB input buffer plus zlib's 32 KiB window.
package final class GzipReader {
    /// Why decompression stopped.
    enum Failure: Error {
        case corrupt(String)
        case truncated
        case io(Int32)
    }

    let fd: Int32
    /// The file, for error messages.
    package let path: String
    private let strm: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawPointer
    private let inputCapacity: Int
    private var inputEOF = false
    private var memberEnded = false
    /// Compressed bytes read from the descriptor so far.
    package private(set) var bytesRead: Int64 = 0
    /// When set (before the first read), a digest of the compressed bytes read from the descriptor.
    var digest: RunningDigest?

    /// Starts decompressing what `fd` reads from its current position. The caller keeps ownership of `fd`.
    package init(fd: Int32, path: String, inputBufferSize: Int = 1 << 20) throws {
        self.fd = fd
        self.path = path
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        let r = inflateInit2_(strm, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard r == Z_OK else {
            strm.deinitialize(count: 1)
            strm.deallocate()
            throw DSARError(.processing, "cannot initialise zlib inflate (error \(r)) for \(path)", path: path)
        }
        inputCapacity = max(inputBufferSize, 4096)
        input = .allocate(byteCount: inputCapacity, alignment: 16)
    }

    deinit {
        inflateEnd(strm)
        strm.deinitialize(count: 1)
        strm.deallocate()
        input.deallocate()
    }

    /// Decompresses into `buffer`; returns the number of bytes written, 0 only at the end of the data.
    ///
    /// Throws a ``DSARError`` naming the path when the data is corrupt or truncated.
    package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do {
            return try fill(buffer.baseAddress!, capacity: buffer.count)
        } catch {
            throw GzipReader.error(error, path: path, line: nil)
        }
    }

    /// The error for a failure, naming the path and, if known, the line reached.
    static func error(_ failure: Failure, path: String, line: Int?) -> DSARError {
        let whereText = line.map { " at line \($0)" } ?? ""
        switch failure {
        case .corrupt(let why):
            return DSARError(.invalidInput, "corrupt gzip data in \(path)\(whereText): \(why)", path: path)
        case .truncated:
            return DSARError(
                .invalidInput, "truncated gzip data in \(path)\(whereText): the file ends mid-stream", path: path)
        case .io(let err):
            return DSARError.syscall("cannot read", path: path, errno: err)
        }
    }

    /// Decompresses at most `capacity` bytes into `dest`; 0 means the end of the data.
    func fill(_ dest: UnsafeMutableRawPointer, capacity: Int) throws(Failure) -> Int {
        precondition(capacity > 0)
        let cap = UInt32(min(capacity, Int(UInt32.max)))
        while true {
            if strm.pointee.avail_in == 0 && !inputEOF {
                let n = Glibc.read(fd, input, inputCapacity)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw .io(errno)
                }
                if n == 0 {
                    inputEOF = true
                } else {
                    bytesRead += Int64(n)
                    digest?.feed(UnsafeRawBufferPointer(start: input, count: n))
                    strm.pointee.next_in = input.assumingMemoryBound(to: Bytef.self)
                    strm.pointee.avail_in = UInt32(n)
                }
            }
            if memberEnded {
                // Between members: skip zero padding; anything else starts the next member.
                while strm.pointee.avail_in > 0 && strm.pointee.next_in.pointee == 0 {
                    strm.pointee.next_in += 1
                    strm.pointee.avail_in -= 1
                }
                if strm.pointee.avail_in == 0 {
                    if inputEOF { return 0 }
                    continue
                }
                let reset = inflateReset(strm)
                if reset != Z_OK { throw .corrupt("cannot start the next gzip member (zlib error \(reset))") }
                memberEnded = false
            }
            strm.pointee.next_out = dest.assumingMemoryBound(to: Bytef.self)
            strm.pointee.avail_out = cap
            let r = inflate(strm, Z_NO_FLUSH)
            let produced = Int(cap - strm.pointee.avail_out)
            switch r {
            case Z_STREAM_END:
                memberEnded = true
                if produced > 0 { return produced }
            case Z_OK, Z_BUF_ERROR:
                if produced > 0 { return produced }
                if strm.pointee.avail_in == 0 && inputEOF { throw .truncated }
            case Z_NEED_DICT:
                throw .corrupt("a preset dictionary is required")
            case Z_MEM_ERROR:
                throw .corrupt("out of memory")
            default:
                let why = strm.pointee.msg.map { String(cString: $0) } ?? "zlib error \(r)"
                throw .corrupt(why)
            }
        }
    }
}

/// Streaming gzip compression (RFC 1952) to a file descriptor, via zlib, for rewriting logs.
///
/// Output is written as it is produced, through a 256 KiB buffer. The caller keeps ownership of `fd`
/// (and fsyncs and closes it). Call ``finish()`` once at the end; without it the output is truncated.
/// After a failed write (e.g. the disk is full) the writer is failed: every later call throws that
/// first error, and `deinit` only releases zlib's state (`deflateEnd`, which writes nothing).
package final class GzipWriter {
    let fd: Int32
    /// The file, for error messages.
    package let path: String
    private let strm: UnsafeMutablePointer<z_stream>
    private let output: UnsafeMutableRawPointer
    private let outputCapacity = 256 * 1024
    private var ended = false
    /// The first error; set, the output is incomplete and nothing more is written.
    private var failure: Error?
    /// Uncompressed bytes accepted so far.
    package private(set) var bytesIn: Int64 = 0
    /// Compressed bytes written so far.
    package private(set) var bytesOut: Int64 = 0

    /// Starts a gzip stream on `fd` with compression `level` (0–9).
    package init(fd: Int32, path: String, level: Int32 = 6) throws {
        self.fd = fd
        self.path = path
        strm = .allocate(capacity: 1)
        strm.initialize(to: z_stream())
        let r = deflateInit2_(
            strm, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size))
        guard r == Z_OK else {
            strm.deinitialize(count: 1)
            strm.deallocate()
            throw DSARError(.processing, "cannot initialise zlib deflate (error \(r)) for \(path)", path: path)
        }
        output = .allocate(byteCount: outputCapacity, alignment: 16)
    }

    deinit {
        if !ended { deflateEnd(strm) }
        strm.deinitialize(count: 1)
        strm.deallocate()
        output.deallocate()
    }

    /// Compresses and writes `bytes`.
    package func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !ended else { throw DSARError(.processing, "gzip stream for \(path) already finished", path: path) }
        if let failure { throw failure }
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, 1 << 30)
            strm.pointee.next_in = UnsafeMutablePointer(mutating: (base + offset).assumingMemoryBound(to: Bytef.self))
            strm.pointee.avail_in = UInt32(chunk)
            repeat {
                try deflateStep(Z_NO_FLUSH)
            } while strm.pointee.avail_in > 0 || strm.pointee.avail_out == 0
            offset += chunk
        }
        bytesIn += Int64(bytes.count)
    }

    /// Compresses and writes `bytes`.
    package func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Flushes the rest of the stream and the gzip trailer, and releases zlib's state.
    package func finish() throws {
        guard !ended else { return }
        if let failure { throw failure }
        strm.pointee.next_in = nil
        strm.pointee.avail_in = 0
        while try deflateStep(Z_FINISH) != Z_STREAM_END {}
        let r = deflateEnd(strm)
        ended = true
        if r != Z_OK { throw DSARError(.processing, "zlib deflateEnd failed (error \(r)) for \(path)", path: path) }
    }

    /// Runs deflate once with a fresh output buffer and writes what it produced.
    @discardableResult
    private func deflateStep(_ flush: Int32) throws -> Int32 {
        strm.pointee.next_out = output.assumingMemoryBound(to: Bytef.self)
        strm.pointee.avail_out = UInt32(outputCapacity)
        let r = deflate(strm, flush)
        if r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR {
            let e = DSARError(.processing, "zlib deflate failed (error \(r)) for \(path)", path: path)
            failure = e
            throw e
        }
        let produced = outputCapacity - Int(strm.pointee.avail_out)
        if produced > 0 {
            do {
                try FileSystem.writeAll(fd, UnsafeRawBufferPointer(start: output, count: produced), path: path)
            } catch {
                failure = error
                throw error
            }
            bytesOut += Int64(produced)
        }
        return r
    }
}
