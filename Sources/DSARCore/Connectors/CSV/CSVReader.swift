#if canImport(Glibc)
import Glibc
#endif

/// One data record of a CSV file, with the raw byte ranges it came from.
package struct CSVRecord: Sendable, Equatable {
    /// Decoded field bytes: surrounding quotes removed, `""` turned into `"`; never UTF-8 decoded.
    package var fields: [[UInt8]]
    /// Raw byte range of each field in the file, including its quotes.
    package var fieldRanges: [ByteRange]
    /// The whole record, including its line terminator (`\n` or `\r\n`) if present.
    package var range: ByteRange
    /// 1-based physical line on which the record starts.
    package var line: Int
    /// Per field: whether it was quoted in the file.
    package var wasQuoted: [Bool]

    /// Makes a record.
    package init(fields: [[UInt8]], fieldRanges: [ByteRange], range: ByteRange, line: Int, wasQuoted: [Bool]) {
        self.fields = fields
        self.fieldRanges = fieldRanges
        self.range = range
        self.line = line
        self.wasQuoted = wasQuoted
    }
}

/// A record that could not be read, reported instead of delivered.
package struct CSVProblem: Sendable, Equatable {
    /// 1-based physical line on which the bad record starts.
    package var line: Int
    /// What is wrong, e.g. "unterminated quoted field" or "3 fields, expected 4".
    package var message: String

    /// Makes a problem report.
    package init(line: Int, message: String) {
        self.line = line
        self.message = message
    }
}

/// A streaming RFC 4180 CSV reader working on raw bytes with bounded memory.
///
/// Reads the file in 1 MiB blocks; a record may span any number of blocks. Quoted fields may
/// contain the delimiter, doubled quotes and line breaks (LF or CRLF, kept as they are in the
/// field). Records end with LF or CRLF; the last one may lack a terminator. Blank lines are skipped.
/// A UTF-8 byte order mark at the start of the file is not part of any record or field, and all
/// byte ranges are true file offsets. A quote inside an unquoted field is taken literally.
///
/// Malformed records (text after a closing quote, a field count that differs from the header's,
/// an unterminated quoted field) are reported and skipped. An unterminated quote, or a record longer
/// than 64 MiB, is reported at the line where the record started and the scan resumes on the
/// following physical line, so one stray quote does not hide the rest of the file.
package struct CSVReader: Sendable {
    /// The file being read.
    package let path: String
    /// The field delimiter byte.
    package let delimiter: UInt8
    /// How the file is opened (``SourceFile``: regular files only, symlinks per the connector).
    package let options: SourceFile.Options
    /// Whether the first non-blank record is a header.
    package let hasHeader: Bool
    /// Header names (BOM stripped) once read; nil without a header.
    package private(set) var header: [String]?
    /// Raw header field bytes (BOM stripped); nil without a header.
    package private(set) var headerFields: [[UInt8]]?
    /// The header record's byte range (terminator included); nil without a header.
    package private(set) var headerRange: ByteRange?

    private var _bytesRead: Int64 = 0
    /// Offset where data records start (after the BOM and the header).
    private var dataStart: Int64 = 0
    /// Physical line number at `dataStart`.
    private var dataStartLine = 1

    /// Size of each read.
    static let blockSize = 1 << 20
    /// A record longer than this is reported and skipped.
    static let maxRecordBytes: Int64 = 64 << 20

    /// Opens a CSV file and, with `hasHeader`, reads its header.
    ///
    /// Throws when the file cannot be read (or is not a regular file, see ``SourceFile``), the delimiter is a
    /// quote or line break, or the header is malformed.
    package init(
        path: String, delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true,
        options: SourceFile.Options = SourceFile.Options()
    ) throws {
        if delimiter == CSVScanner.quote || delimiter == CSVScanner.lf || delimiter == CSVScanner.cr {
            throw DSARError(.usage, "a CSV delimiter cannot be a quote or a line break", path: path)
        }
        self.path = path
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        self.options = options

        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        // A UTF-8 byte order mark at the start is skipped; offsets stay true file offsets.
        var bom: (UInt8, UInt8, UInt8) = (0, 0, 0)
        let n = try withUnsafeMutableBytes(of: &bom) { try CSVReader.pread(fd, $0, at: 0, path: path) }
        if n == 3 && bom == (0xEF, 0xBB, 0xBF) { dataStart = 3 }
        _bytesRead = dataStart
        guard hasHeader else { return }

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: CSVReader.blockSize, alignment: 16)
        defer { buffer.deallocate() }
        var firstProblem: CSVProblem?
        var headerRecord: CSVRecord?
        var noDigest: RunningDigest?
        let end = try CSVScanner.scan(
            fd: fd, path: path, delimiter: delimiter, from: dataStart, line: 1, buffer: buffer, digest: &noDigest,
            onRecord: { record in
                if firstProblem == nil { headerRecord = record }
                return false
            },
            onProblem: { problem in
                if firstProblem == nil { firstProblem = problem }
            })
        _bytesRead = end.highWater
        if let problem = firstProblem {
            throw DSARError(
                .invalidInput, "\(path): malformed CSV header on line \(problem.line): \(problem.message)", path: path)
        }
        guard let record = headerRecord else { return }  // empty file: no header, no records
        headerFields = record.fields
        header = record.fields.map { String(decoding: $0, as: UTF8.self) }
        headerRange = record.range
        dataStart = end.offset
        dataStartLine = end.line
    }

    /// Bytes of the file read so far (the whole file after a complete scan).
    package var bytesRead: Int64 { _bytesRead }

    /// Opt-in: ``forEachRecord(_:onProblem:)`` keeps a running digest of the bytes it reads (the BOM
    /// and header again, then the data), so that ``digest`` describes the file without reading it again.
    package var keepsDigest = false
    /// After a ``forEachRecord(_:onProblem:)`` that read the file from offset 0 to its end without an
    /// error, with ``keepsDigest``: its size, SHA-256 and last byte as stored; nil otherwise.
    package private(set) var digest: SourceDigest?

    /// Streams every data record. A malformed record is reported to `onProblem` with its line number and skipped;
    /// the scan continues with the next line.
    ///
    /// With a header, a record whose field count differs from the header's is a problem ("3 fields, expected 4").
    /// Each call scans from the first data record again. Errors thrown by `body` stop the scan and are rethrown.
    package mutating func forEachRecord(_ body: (CSVRecord) throws -> Void, onProblem: (CSVProblem) -> Void) throws {
        digest = nil
        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: CSVReader.blockSize, alignment: 16)
        defer { buffer.deallocate() }
        var running: RunningDigest? = keepsDigest ? RunningDigest() : nil
        if keepsDigest {
            // The BOM and header (parsed by init) precede the data: hash them from this descriptor.
            var at: Int64 = 0
            while at < dataStart {
                let want = Int(min(Int64(buffer.count), dataStart - at))
                let n = try CSVReader.pread(
                    fd, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: at, path: path)
                if n == 0 { break }
                running?.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: at)
                at += Int64(n)
            }
        }
        let expected = header?.count
        // Progress counts the file once: the header (read by init) here, then each block of data.
        let progress = ProgressCounter.current
        progress?.add(Int(dataStart))
        let end = try CSVScanner.scan(
            fd: fd, path: path, delimiter: delimiter, from: dataStart, line: dataStartLine, buffer: buffer,
            progress: progress, digest: &running,
            onRecord: { record in
                if let expected, record.fields.count != expected {
                    let n = record.fields.count
                    onProblem(
                        CSVProblem(line: record.line, message: "\(n) field\(n == 1 ? "" : "s"), expected \(expected)"))
                } else {
                    try body(record)
                }
                return true
            },
            onProblem: onProblem)
        _bytesRead = max(_bytesRead, end.highWater)
        digest = running?.finish(atEnd: end.atEnd)
    }

    /// Sniffs the delimiter among `,` `;` tab `|` from the first lines (up to 20 records or 64 KiB).
    ///
    /// Picks the candidate that appears the same non-zero number of times on the most lines (quotes respected),
    /// preferring more occurrences, then the order `,` `;` tab `|`. Falls back to `,`.
    package static func detectDelimiter(
        path: String, options: SourceFile.Options = SourceFile.Options()
    ) throws -> UInt8 {
        let fd = try open(path, options: options)
        defer { close(fd) }
        let cap = 64 * 1024
        var bytes = [UInt8](repeating: 0, count: cap)
        var n = 0
        while n < cap {
            let got = try bytes.withUnsafeMutableBytes {
                try pread(fd, UnsafeMutableRawBufferPointer(rebasing: $0[n...]), at: Int64(n), path: path)
            }
            if got == 0 { break }
            n += got
        }
        let complete = n < cap
        var start = 0
        if n >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }

        let candidates: [UInt8] = [UInt8(ascii: ","), UInt8(ascii: ";"), 0x09, UInt8(ascii: "|")]
        // Per line (record), count each candidate outside quotes.
        var lines: [[Int]] = []
        var counts = [0, 0, 0, 0]
        var inQuotes = false
        var nonBlank = false
        var i = start
        while i < n && lines.count < 20 {
            let b = bytes[i]
            if b == CSVScanner.quote {
                inQuotes.toggle()
                nonBlank = true
            } else if !inQuotes && b == CSVScanner.lf {
                if nonBlank { lines.append(counts) }
                counts = [0, 0, 0, 0]
                nonBlank = false
            } else if !inQuotes {
                if let k = candidates.firstIndex(of: b) { counts[k] += 1 }
                if b != CSVScanner.cr { nonBlank = true }
            }
            i += 1
        }
        if complete && nonBlank && lines.count < 20 { lines.append(counts) }  // last line without terminator
        guard let first = lines.first else { return candidates[0] }

        var best = candidates[0]
        var bestScore = (0, 0)
        for k in candidates.indices where first[k] > 0 {
            let consistent = lines.filter { $0[k] == first[k] }.count
            let score = (consistent, first[k])
            if score > bestScore {
                bestScore = score
                best = candidates[k]
            }
        }
        return best
    }

    /// Opens a source file (``SourceFile/open(_:options:)``: regular files only, never blocking).
    static func open(_ path: String, options: SourceFile.Options = SourceFile.Options()) throws -> Int32 {
        try SourceFile.open(path, options: options)
    }

    /// `pread(2)` retrying on EINTR; returns 0 at end of file. Throws once the reading task is
    /// cancelled (the connector's timeout), so that every block read is a cancellation point.
    static func pread(_ fd: Int32, _ into: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws -> Int
    {
        try SourceFile.checkCancelled(path)
        while true {
            let n = Glibc.pread(fd, into.baseAddress, into.count, off_t(offset))
            if n >= 0 { return n }
            if errno == EINTR || errno == EAGAIN { continue }
            throw DSARError.syscall("cannot read", path: path)
        }
    }
}
