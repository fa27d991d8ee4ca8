#if canImport(Glibc)
import Glibc
#endif

/// Streams lines of a plain or gzip file (detected by magic bytes 1f 8b, not by name), without loss: lines that
/// are not valid UTF-8 are delivered as raw bytes.
///
/// Memory is bounded: a 1 MiB line buffer (plus 1 MiB of compressed input for gzip). A line longer than the
/// buffer grows it for that line only, up to 64 MiB; a longer line is an error.
package struct LineReader: Sendable {
    /// The file being read.
    package let path: String
    /// Whether the file is gzip-compressed (starts with the bytes 1f 8b).
    package let isGzip: Bool
    /// How the file is opened (``SourceFile``).
    package let options: SourceFile.Options
    private var _bytesRead: Int64 = 0
    private var _bytesDecoded: Int64 = 0
    /// Plain files only: read just these bytes (offsets stay offsets in the file; line numbers start
    /// at 1 at `lowerBound`). nil: the whole file, to its end at the time of reading.
    package var range: Range<Int64>?
    /// Opt-in: keep a running digest of the bytes read from disk (compressed bytes for gzip), so that
    /// ``digest`` describes the file without reading it again.
    package var keepsDigest = false
    /// After a ``forEachLine(_:)`` that read the whole file from offset 0 to its end (no `range`, no
    /// error) with ``keepsDigest``: its size, SHA-256 and last byte as stored; nil otherwise.
    package private(set) var digest: SourceDigest?

    /// Size of the line buffer (and of each read).
    static let bufferSize = 1 << 20
    /// Longest line accepted.
    static let maxLineLength = 64 << 20

    /// Opens `path` to check that it is readable (a regular file, see ``SourceFile``) and whether it is gzip.
    package init(path: String, options: SourceFile.Options = SourceFile.Options()) throws {
        self.path = path
        self.options = options
        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        var magic: (UInt8, UInt8) = (0, 0)
        let n = try withUnsafeMutableBytes(of: &magic) { try CSVReader.pread(fd, $0, at: 0, path: path) }
        isGzip = n == 2 && magic == (0x1F, 0x8B)
    }

    /// Compressed bytes read from disk (all bytes for a plain file).
    package var bytesRead: Int64 { _bytesRead }
    /// Bytes of (decompressed) content.
    package var bytesDecoded: Int64 { _bytesDecoded }

    /// Calls body(line bytes without the terminator, 1-based line number, byte offset of the line start in the
    /// (decompressed) stream, terminator length 0/1/2 ("\n" or "\r\n")). The buffer is only valid during the call.
    ///
    /// Only LF ends a line; a CR right before it is part of the terminator, any other CR is content. The last line
    /// has terminator length 0 when the file does not end with a line break. Each call reads the file from the start.
    /// Corrupt or truncated gzip data throws a ``DSARError`` naming the path and the line reached, after the lines
    /// before it were delivered. Once the reading task is cancelled (the connector's timeout) the next block
    /// read throws.
    package mutating func forEachLine(_ body: (UnsafeRawBufferPointer, Int, Int64, Int) throws -> Void) throws {
        digest = nil
        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        // Only a read of the whole file describes the file.
        let hashing = keepsDigest && (isGzip || range == nil)
        // gzip is inflated on its own thread, ahead of the line splitting and matching here.
        let inflater = try isGzip ? GzipReader(fd: fd, path: path) : nil
        if hashing { inflater?.digest = RunningDigest() }
        let gzip = inflater.map { GzipPrefetcher($0) }
        defer { gzip?.stop() }
        var running = hashing && !isGzip ? RunningDigest() : nil
        var reachedEnd = false
        let progress = ProgressCounter.current
        var reported: Int64 = 0
        let initial = LineReader.bufferSize
        var capacity = initial
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }

        var start = 0  // start of the current (partial) line in the buffer
        var end = 0  // end of valid data in the buffer
        var lineNumber = 1
        var lineOffset: Int64 = 0
        var plainRead: Int64 = 0
        let range = isGzip ? nil : self.range
        if let range, range.lowerBound > 0 {
            guard lseek(fd, off_t(range.lowerBound), SEEK_SET) == off_t(range.lowerBound) else {
                throw DSARError.syscall("cannot seek in", path: path)
            }
            lineOffset = range.lowerBound
        }
        var decoded: Int64 = 0
        defer {
            _bytesRead = gzip?.bytesRead ?? plainRead
            _bytesDecoded = decoded
        }

        while true {
            // Make room: move the partial line to the front, grow only if it fills the whole buffer.
            if start == end {
                start = 0
                end = 0
            } else if start > 0 && capacity - end < initial / 4 {
                memmove(buffer, buffer + start, end - start)
                end -= start
                start = 0
            }
            if capacity > initial && end - start <= initial / 2 {
                // The long line is done: back to the normal buffer.
                let smaller = UnsafeMutableRawPointer.allocate(byteCount: initial, alignment: 16)
                smaller.copyMemory(from: buffer + start, byteCount: end - start)
                buffer.deallocate()
                buffer = smaller
                capacity = initial
                end -= start
                start = 0
            }
            if end == capacity {
                guard capacity < LineReader.maxLineLength else {
                    throw DSARError(
                        .invalidInput,
                        "\(path): line \(lineNumber) is longer than \(LineReader.maxLineLength >> 20) MiB", path: path)
                }
                let bigger = UnsafeMutableRawPointer.allocate(
                    byteCount: min(capacity * 2, LineReader.maxLineLength), alignment: 16)
                bigger.copyMemory(from: buffer + start, byteCount: end - start)
                buffer.deallocate()
                buffer = bigger
                capacity = min(capacity * 2, LineReader.maxLineLength)
                end -= start
                start = 0
            }

            // Fill (a cancellation point per block).
            try SourceFile.checkCancelled(path)
            let got: Int
            if let gzip {
                do {
                    got = try gzip.fill(buffer + end, capacity: capacity - end)
                } catch {
                    throw GzipReader.error(error, path: path, line: lineNumber)
                }
            } else {
                var want = capacity - end
                if let range {
                    let left: Int64 = max(0, range.upperBound - range.lowerBound - plainRead)
                    want = Int(min(Int64(want), left))
                }
                let n = want == 0 ? 0 : read(fd, buffer + end, want)
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN { continue }
                    throw DSARError.syscall("cannot read", path: path)
                }
                if n > 0 { running?.feed(UnsafeRawBufferPointer(start: buffer + end, count: n)) }
                if n == 0 && want > 0 { reachedEnd = true }
                plainRead += Int64(n)
                got = n
            }
            if let progress {
                let now = gzip?.bytesRead ?? plainRead
                progress.add(Int(now - reported))
                reported = now
            }
            if got == 0 { break }
            decoded += Int64(got)

            // Deliver every complete line in the new data.
            var search = end
            end += got
            while search < end, let hit = memchr(buffer + search, 0x0A, end - search) {
                let lf = buffer.distance(to: hit)
                var lineEnd = lf
                var terminator = 1
                if lineEnd > start && buffer.load(fromByteOffset: lineEnd - 1, as: UInt8.self) == 0x0D {
                    lineEnd -= 1
                    terminator = 2
                }
                try body(
                    UnsafeRawBufferPointer(start: buffer + start, count: lineEnd - start), lineNumber, lineOffset,
                    terminator)
                lineOffset += Int64(lf + 1 - start)
                lineNumber += 1
                start = lf + 1
                search = start
            }
        }
        if end > start {
            try body(UnsafeRawBufferPointer(start: buffer + start, count: end - start), lineNumber, lineOffset, 0)
        }
        guard hashing else { return }
        if let gzip, let inflater {
            // The inflating thread has delivered the end of the data; once stopped, its digest is final.
            gzip.stop()
            digest = inflater.digest?.finish(atEnd: true)
        } else {
            digest = running?.finish(atEnd: reachedEnd)
        }
    }
}
