#if canImport(Glibc)
    import Glibc
#endif

/// One data record of a CSV file, with the raw byte ranges it came from.
public struct CSVRecord: Sendable, Equatable {
    /// Decoded field bytes: surrounding quotes removed, `""` turned into `"`; never UTF-8 decoded.
    public var fields: [[UInt8]]
    /// Raw byte range of each field in the file, including its quotes.
    public var fieldRanges: [ByteRange]
    /// The whole record, including its line terminator (`\n` or `\r\n`) if present.
    public var range: ByteRange
    /// 1-based physical line on which the record starts.
    public var line: Int
    /// Per field: whether it was quoted in the file.
    public var wasQuoted: [Bool]

    /// Makes a record.
    public init(fields: [[UInt8]], fieldRanges: [ByteRange], range: ByteRange, line: Int, wasQuoted: [Bool]) {
        self.fields = fields
        self.fieldRanges = fieldRanges
        self.range = range
        self.line = line
        self.wasQuoted = wasQuoted
    }
}

/// A record that could not be read, reported instead of delivered.
public struct CSVProblem: Sendable, Equatable {
    /// 1-based physical line on which the bad record starts.
    public var line: Int
    /// What is wrong, e.g. "unterminated quoted field" or "3 fields, expected 4".
    public var message: String

    /// Makes a problem report.
    public init(line: Int, message: String) {
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
public struct CSVReader: Sendable {
    /// The file being read.
    public let path: String
    /// The field delimiter byte.
    public let delimiter: UInt8
    /// How the file is opened (``SourceFile``: regular files only, symlinks per the connector).
    public let options: SourceFile.Options
    /// Whether the first non-blank record is a header.
    public let hasHeader: Bool
    /// Header names (BOM stripped) once read; nil without a header.
    public private(set) var header: [String]?
    /// Raw header field bytes (BOM stripped); nil without a header.
    public private(set) var headerFields: [[UInt8]]?
    /// The header record's byte range (terminator included); nil without a header.
    public private(set) var headerRange: ByteRange?

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
    public init(
        path: String, delimiter: UInt8 = UInt8(ascii: ","), hasHeader: Bool = true, options: SourceFile.Options = SourceFile.Options()
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
        let end = try CSVScanner.scan(
            fd: fd, path: path, delimiter: delimiter, from: dataStart, line: 1, buffer: buffer,
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
    public var bytesRead: Int64 { _bytesRead }

    /// Streams every data record. A malformed record is reported to `onProblem` with its line number and skipped;
    /// the scan continues with the next line.
    ///
    /// With a header, a record whose field count differs from the header's is a problem ("3 fields, expected 4").
    /// Each call scans from the first data record again. Errors thrown by `body` stop the scan and are rethrown.
    public mutating func forEachRecord(_ body: (CSVRecord) throws -> Void, onProblem: (CSVProblem) -> Void) throws {
        let fd = try CSVReader.open(path, options: options)
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: CSVReader.blockSize, alignment: 16)
        defer { buffer.deallocate() }
        let expected = header?.count
        // Progress counts the file once: the header (read by init) here, then each block of data.
        let progress = ProgressCounter.current
        progress?.add(Int(dataStart))
        let end = try CSVScanner.scan(
            fd: fd, path: path, delimiter: delimiter, from: dataStart, line: dataStartLine, buffer: buffer, progress: progress,
            onRecord: { record in
                if let expected, record.fields.count != expected {
                    let n = record.fields.count
                    onProblem(CSVProblem(line: record.line, message: "\(n) field\(n == 1 ? "" : "s"), expected \(expected)"))
                } else {
                    try body(record)
                }
                return true
            },
            onProblem: onProblem)
        _bytesRead = max(_bytesRead, end.highWater)
    }

    /// Sniffs the delimiter among `,` `;` tab `|` from the first lines (up to 20 records or 64 KiB).
    ///
    /// Picks the candidate that appears the same non-zero number of times on the most lines (quotes respected),
    /// preferring more occurrences, then the order `,` `;` tab `|`. Falls back to `,`.
    public static func detectDelimiter(path: String, options: SourceFile.Options = SourceFile.Options()) throws -> UInt8 {
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
    static func pread(_ fd: Int32, _ into: UnsafeMutableRawBufferPointer, at offset: Int64, path: String) throws -> Int {
        try SourceFile.checkCancelled(path)
        while true {
            let n = Glibc.pread(fd, into.baseAddress, into.count, off_t(offset))
            if n >= 0 { return n }
            if errno == EINTR || errno == EAGAIN { continue }
            throw DSARError.syscall("cannot read", path: path)
        }
    }
}

/// The incremental CSV state machine behind ``CSVReader``: fed one block at a time, it never needs a
/// whole record in the read buffer, only the decoded fields of the current record.
struct CSVScanner {
    static let quote = UInt8(ascii: "\"")
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D

    enum State {
        /// At the first byte of a field.
        case fieldStart
        /// Inside an unquoted field.
        case unquoted
        /// Inside a quoted field.
        case quoted
        /// Just after a quote inside a quoted field: a doubled quote or the closing one.
        case quoteInQuoted
        /// After a CR in an unquoted field: a CRLF terminator or a literal CR.
        case crUnquoted
        /// After a CR following a closing quote: must be a CRLF terminator.
        case crAfterQuote
        /// Discarding the rest of a malformed line.
        case skipLine
    }

    /// Where a scan stopped.
    struct End {
        /// Offset after the last record delivered when stopped early; end of file otherwise.
        var offset: Int64
        /// Physical line at `offset`.
        var line: Int
        /// Highest file offset read.
        var highWater: Int64
    }

    var state = State.fieldStart
    var line: Int
    var recordStart: Int64
    var recordLine: Int
    /// Whether the current record has any content (a byte, a delimiter or a quote).
    var inRecord = false
    /// Offset just after the first LF inside the current record (only quoted fields hold LFs).
    var firstBreakEnd: Int64?
    var fields: [[UInt8]] = []
    var ranges: [ByteRange] = []
    var quoted: [Bool] = []
    var current: [UInt8] = []
    var fieldStart: Int64 = 0
    var fieldQuoted = false
    var crOffset: Int64 = 0

    init(at offset: Int64, line: Int) {
        self.line = line
        recordStart = offset
        recordLine = line
    }

    mutating func startRecord(at offset: Int64) {
        state = .fieldStart
        recordStart = offset
        recordLine = line
        inRecord = false
        firstBreakEnd = nil
        // The last record is gone by now, so these buffers are usually unique and get reused.
        fields.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
        quoted.removeAll(keepingCapacity: true)
        current = []
    }

    @inline(__always)
    mutating func append(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) {
        let bytes = UnsafeBufferPointer(rebasing: p[from..<to])
        if current.isEmpty {
            current = Array(bytes)  // the common case: one exact allocation and a memcpy
        } else {
            current.append(contentsOf: bytes)
        }
    }

    mutating func endField(at end: Int64) {
        fields.append(current)
        ranges.append(ByteRange(start: fieldStart, end: end))
        quoted.append(fieldQuoted)
        current = []
    }

    /// Hands the finished record to `onRecord`, then starts the next one at `end`; returns whether to go on.
    mutating func emit(end: Int64, _ onRecord: (CSVRecord) throws -> Bool) rethrows -> Bool {
        let goOn = try onRecord(
            CSVRecord(
                fields: fields, fieldRanges: ranges, range: ByteRange(start: recordStart, end: end), line: recordLine,
                wasQuoted: quoted))
        startRecord(at: end)
        return goOn
    }

    /// Drops the current record and skips to the end of the physical line.
    mutating func abandonLine() {
        state = .skipLine
        inRecord = false
        fields.removeAll(keepingCapacity: true)
        ranges.removeAll(keepingCapacity: true)
        quoted.removeAll(keepingCapacity: true)
        current = []
    }

    /// Reports the current record as `message`; returns the offset to resume at (the line after the record's
    /// first line) or nil to skip to the end of the current line.
    mutating func giveUp(_ message: String, _ onProblem: (CSVProblem) -> Void) -> Int64? {
        onProblem(CSVProblem(line: recordLine, message: message))
        if let resume = firstBreakEnd {
            self = CSVScanner(at: resume, line: recordLine + 1)
            return resume
        }
        abandonLine()
        return nil
    }

    /// Appends `p[from..<to]` from inside a quoted field, counting line breaks.
    mutating func appendQuoted(_ p: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int, base: Int64) {
        guard to > from else { return }
        append(p, from, to)
        let start = UnsafeRawPointer(p.baseAddress!)
        var i = from
        while i < to, let hit = memchr(start + i, Int32(CSVScanner.lf), to - i) {
            let j = start.distance(to: UnsafeRawPointer(hit))
            line += 1
            if firstBreakEnd == nil { firstBreakEnd = base + Int64(j + 1) }
            i = j + 1
        }
    }

    /// Scans records from `offset` (which must be at a record start) to the end of the file, or until
    /// `onRecord` returns false.
    static func scan(
        fd: Int32, path: String, delimiter: UInt8, from offset: Int64, line: Int,
        buffer: UnsafeMutableRawBufferPointer, progress: ProgressCounter? = nil,
        onRecord: (CSVRecord) throws -> Bool, onProblem: (CSVProblem) -> Void
    ) throws -> End {
        let blockSize = buffer.count
        let block = buffer.bindMemory(to: UInt8.self)
        var s = CSVScanner(at: offset, line: line)
        var fileOffset = offset
        var highWater = offset
        let quote = CSVScanner.quote
        let lf = CSVScanner.lf
        let cr = CSVScanner.cr

        outer: while true {
            // Aligned reads: every block boundary is a multiple of the block size.
            let want = blockSize - Int(fileOffset % Int64(blockSize))
            let n = try CSVReader.pread(
                fd, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]), at: fileOffset, path: path)
            progress?.add(n)
            if n == 0 {
                // End of file.
                let eof = fileOffset
                switch s.state {
                case .fieldStart, .unquoted:
                    if s.inRecord {
                        if s.state == .fieldStart {
                            // After a trailing delimiter: one more, empty, field.
                            s.fieldStart = eof
                            s.fieldQuoted = false
                        }
                        s.endField(at: eof)
                        _ = try s.emit(end: eof, onRecord)
                    }
                case .crUnquoted:
                    // A lone CR at the very end is taken as a terminator.
                    if s.inRecord {
                        s.endField(at: s.crOffset)
                        _ = try s.emit(end: eof, onRecord)
                    }
                case .quoteInQuoted:
                    s.endField(at: eof)
                    _ = try s.emit(end: eof, onRecord)
                case .crAfterQuote:
                    s.endField(at: s.crOffset)
                    _ = try s.emit(end: eof, onRecord)
                case .quoted:
                    if let resume = s.giveUp("unterminated quoted field", onProblem), resume < eof {
                        fileOffset = resume
                        continue outer
                    }
                case .skipLine:
                    break
                }
                return End(offset: eof, line: s.line, highWater: highWater)
            }
            let base = fileOffset
            fileOffset += Int64(n)
            highWater = max(highWater, fileOffset)
            let p = UnsafeBufferPointer(rebasing: block[0..<n])
            let start = UnsafeRawPointer(p.baseAddress!)
            var pos = 0
            while pos < n {
                switch s.state {
                case .fieldStart:
                    s.fieldStart = base + Int64(pos)
                    if p[pos] == quote {
                        s.fieldQuoted = true
                        s.inRecord = true
                        s.state = .quoted
                        pos += 1
                    } else {
                        s.fieldQuoted = false
                        s.state = .unquoted
                    }

                case .unquoted:
                    var i = pos
                    while i < n {
                        let c = p[i]
                        if c == delimiter || c == lf || c == cr { break }
                        i &+= 1
                    }
                    if i > pos {
                        s.append(p, pos, i)
                        s.inRecord = true
                    }
                    pos = i
                    guard i < n else { break }
                    let c = p[i]
                    let at = base + Int64(i)
                    pos += 1
                    if c == delimiter {
                        s.endField(at: at)
                        s.inRecord = true
                        s.state = .fieldStart
                    } else if c == lf {
                        s.line += 1
                        if s.inRecord {
                            s.endField(at: at)
                            if try !s.emit(end: at + 1, onRecord) {
                                return End(offset: at + 1, line: s.line, highWater: highWater)
                            }
                        } else {
                            s.startRecord(at: at + 1)  // blank line
                        }
                    } else {
                        s.crOffset = at
                        s.state = .crUnquoted
                    }

                case .crUnquoted:
                    if p[pos] == lf {
                        pos += 1
                        s.line += 1
                        let end = base + Int64(pos)
                        if s.inRecord {
                            s.endField(at: s.crOffset)
                            if try !s.emit(end: end, onRecord) {
                                return End(offset: end, line: s.line, highWater: highWater)
                            }
                        } else {
                            s.startRecord(at: end)  // blank line
                        }
                    } else {
                        // A lone CR is data.
                        s.current.append(cr)
                        s.inRecord = true
                        s.state = .unquoted
                    }

                case .quoted:
                    if let hit = memchr(start + pos, Int32(quote), n - pos) {
                        let j = start.distance(to: UnsafeRawPointer(hit))
                        s.appendQuoted(p, pos, j, base: base)
                        pos = j + 1
                        s.state = .quoteInQuoted
                    } else {
                        s.appendQuoted(p, pos, n, base: base)
                        pos = n
                    }

                case .quoteInQuoted:
                    let c = p[pos]
                    let at = base + Int64(pos)
                    if c == quote {
                        s.current.append(quote)
                        s.state = .quoted
                        pos += 1
                    } else if c == delimiter {
                        s.endField(at: at)
                        s.state = .fieldStart
                        pos += 1
                    } else if c == lf {
                        pos += 1
                        s.line += 1
                        s.endField(at: at)
                        if try !s.emit(end: at + 1, onRecord) {
                            return End(offset: at + 1, line: s.line, highWater: highWater)
                        }
                    } else if c == cr {
                        s.crOffset = at
                        s.state = .crAfterQuote
                        pos += 1
                    } else {
                        onProblem(CSVProblem(line: s.recordLine, message: "text after closing quote"))
                        s.abandonLine()
                    }

                case .crAfterQuote:
                    if p[pos] == lf {
                        pos += 1
                        s.line += 1
                        let end = base + Int64(pos)
                        s.endField(at: s.crOffset)
                        if try !s.emit(end: end, onRecord) {
                            return End(offset: end, line: s.line, highWater: highWater)
                        }
                    } else {
                        onProblem(CSVProblem(line: s.recordLine, message: "text after closing quote"))
                        s.abandonLine()
                    }

                case .skipLine:
                    if let hit = memchr(start + pos, Int32(lf), n - pos) {
                        pos = start.distance(to: UnsafeRawPointer(hit)) + 1
                        s.line += 1
                        s.startRecord(at: base + Int64(pos))
                    } else {
                        pos = n
                    }
                }
            }
            // Bound memory: a record this long is almost surely a stray quote swallowing the file.
            if s.inRecord && fileOffset - s.recordStart > CSVReader.maxRecordBytes {
                let mib = CSVReader.maxRecordBytes >> 20
                if let resume = s.giveUp("record longer than \(mib) MiB (unterminated quote?)", onProblem) {
                    fileOffset = resume
                }
            }
        }
    }
}

/// Encodes CSV fields and records (RFC 4180), for exports and rewritten files.
public enum CSVWriter {
    /// Encodes one field: quoted only if needed (delimiter, quote, CR, LF, or leading/trailing space or tab),
    /// quotes doubled.
    public static func field(_ bytes: [UInt8], delimiter: UInt8) -> [UInt8] {
        let quote = CSVScanner.quote
        var needs = false
        if let first = bytes.first, let last = bytes.last {
            needs = first == 0x20 || first == 0x09 || last == 0x20 || last == 0x09
        }
        if !needs {
            for b in bytes where b == delimiter || b == quote || b == CSVScanner.cr || b == CSVScanner.lf {
                needs = true
                break
            }
        }
        guard needs else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 2)
        out.append(quote)
        for b in bytes {
            out.append(b)
            if b == quote { out.append(quote) }
        }
        out.append(quote)
        return out
    }

    /// Encodes one record: fields joined by `delimiter`, then `terminator`.
    ///
    /// A record of one empty field is written as `""` so that it does not read back as a blank line.
    public static func record(_ fields: [[UInt8]], delimiter: UInt8, terminator: [UInt8] = [0x0D, 0x0A]) -> [UInt8] {
        var out: [UInt8] = []
        if fields.count == 1 && fields[0].isEmpty {
            out = [CSVScanner.quote, CSVScanner.quote]
        } else {
            for (i, f) in fields.enumerated() {
                if i > 0 { out.append(delimiter) }
                out.append(contentsOf: field(f, delimiter: delimiter))
            }
        }
        out.append(contentsOf: terminator)
        return out
    }
}
