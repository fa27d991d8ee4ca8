#if canImport(Glibc)
import Glibc
#endif

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
        /// Whether the scan stopped at the end of the file (a read returned no bytes at `offset`).
        var atEnd = false
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
    /// `onRecord` returns false. Every block read is fed to `digest` (when set) at its file offset.
    static func scan(
        fd: Int32, path: String, delimiter: UInt8, from offset: Int64, line: Int,
        buffer: UnsafeMutableRawBufferPointer, progress: ProgressCounter? = nil, digest: inout RunningDigest?,
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
                return End(offset: eof, line: s.line, highWater: highWater, atEnd: true)
            }
            digest?.feed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), at: fileOffset)
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
