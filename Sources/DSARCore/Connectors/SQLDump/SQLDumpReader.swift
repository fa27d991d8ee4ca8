#if canImport(Glibc)
    import Glibc
#endif

/// Streams the table rows out of a plain-text SQL dump: `pg_dump` (COPY blocks or `--inserts`),
/// `mysqldump` (extended or single-row INSERTs) and SQLite's `.dump`.
///
/// The file is read once, about 1 MiB at a time; only the statement being decoded is kept whole
/// (a single huge INSERT is held in memory, nothing else is). Statements other than INSERT, REPLACE,
/// COPY and CREATE TABLE are skipped with the dialect's lexical rules (strings, quoted identifiers,
/// `--`/`#`/`/* */` comments, MySQL `/*! … */` and `DELIMITER`, PostgreSQL dollar quotes and psql
/// `\` meta-commands, SQLite trigger bodies), so text inside them is never mistaken for data.
///
/// Typing of COPY fields (PostgreSQL sends text only): when the column's type is known from a
/// CREATE TABLE earlier in the file, a numeric type gives `.number` for fields matching
/// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?` (others, like `NaN`, stay `.string`), `boolean` gives
/// `.bool` for `t`/`f`, `bytea` gives `.blob`, and any other type `.string`. When the type is
/// unknown, a field matching `^-?[0-9]+(\.[0-9]+)?$` is a `.number`, anything else a `.string`.
/// In INSERTs the syntax decides (quoted is `.string`, unquoted digits `.number`), except that a
/// string in a column declared `bytea`/`blob`/`binary`/`varbinary` becomes `.blob` (decoded from
/// `\x…` hex for PostgreSQL). Names are unquoted but not case-folded.
public struct SQLDumpReader: Sendable {
    /// The dump file.
    public let path: String
    /// How the file is opened (``SourceFile``).
    public let options: SourceFile.Options
    /// The dialect used for reading (given, or detected from the start of the file).
    public let dialect: SQLDialect
    private var tableInfos: [SQLTableInfo] = []
    private var tableIndex: [String: [Int]] = [:]
    /// Bytes read so far.
    public private(set) var bytesRead: Int64 = 0
    /// Bytes per read (tests of the buffer-boundary handling use tiny ones).
    var chunkSize = SQLInput.defaultChunk
    /// The tool that wrote the dump, recognised by its header (after `forEachRow`).
    public private(set) var producer: Producer = .unknown
    /// Why the dump is known to be incomplete, or nil when it is complete (after `forEachRow` has
    /// returned; also set when it threw because the file ends inside an INSERT).
    ///
    /// Rules: a COPY block must end with its `\.` line; no statement or `/* */` comment may be open
    /// at end of file; and a dump whose header names its producer must end with that producer's
    /// trailer (``Producer/trailer``), followed by nothing but blank lines (and, for pg_dump, `--`
    /// lines and psql `\unrestrict` commands). Only the last bytes of the file are read for the trailer.
    public private(set) var truncation: Truncation?

    /// The tool that wrote a dump, as told by its first lines.
    public enum Producer: String, Sendable, CaseIterable {
        /// `pg_dump`: a `-- PostgreSQL database dump` header line.
        case pgDump = "pg_dump"
        /// `pg_dumpall`: a `-- PostgreSQL database cluster dump` header line.
        case pgDumpAll = "pg_dumpall"
        /// `mysqldump` / `mariadb-dump`: a line starting `-- MySQL dump` or `-- MariaDB dump`.
        case mysqldump
        /// SQLite's `.dump`: the first line is `PRAGMA foreign_keys=OFF;` or `BEGIN TRANSACTION;`.
        case sqlite = "sqlite3"
        /// No recognised header: no trailer is required.
        case unknown

        /// The line the tool writes last (for mysqldump: how that line starts), nil for `unknown`.
        public var trailer: String? {
            switch self {
            case .pgDump: "-- PostgreSQL database dump complete"
            case .pgDumpAll: "-- PostgreSQL database cluster dump complete"
            case .mysqldump: "-- Dump completed"
            case .sqlite: "COMMIT;"
            case .unknown: nil
            }
        }
    }

    /// Where and why a dump stops before its end (see ``SQLDumpReader/truncation``).
    public struct Truncation: Sendable, Equatable, CustomStringConvertible {
        /// What is missing.
        public enum Kind: String, Sendable, CaseIterable {
            /// A COPY block has no `\.` line (its last data line may be cut mid-line).
            case copyUnterminated = "copy_unterminated"
            /// Every statement is complete but the producer's trailer line is missing.
            case missingTrailer = "missing_trailer"
            /// The file ends inside a statement (no terminating `;`).
            case insideStatement = "inside_statement"
            /// The file ends inside a `/* … */` comment (MySQL `/*! … */` included).
            case insideComment = "inside_comment"
        }

        public let kind: Kind
        /// 1-based line: where the open COPY block, statement or comment began; for `missingTrailer`
        /// the last non-blank line of the file.
        public let line: Int
        /// What is wrong, for an operator (names tables and lines, never data values).
        public let message: String

        /// `line N: message`.
        public var description: String { "line \(line): \(message)" }
    }

    /// Tables seen so far (after `forEachRow`: all) with their columns from CREATE TABLE or COPY/INSERT
    /// column lists, in file order.
    public var tables: [(name: String, columns: [String])] { tableInfos.map { ($0.name, $0.columns) } }

    /// Opens a dump. With `dialect` nil it is detected from the first 64 KiB: a pg_dump header, `COPY`,
    /// `SET search_path` → postgres; `-- MySQL dump`/`-- MariaDB dump`, `/*!40101`, backticks → mysql;
    /// `PRAGMA foreign_keys`, `BEGIN TRANSACTION` → sqlite; nothing conclusive → postgres.
    /// The file must be a regular file (``SourceFile``: a FIFO, device, directory or, unless
    /// `options.followSymlinks`, a symlink is refused).
    public init(path: String, dialect: SQLDialect? = nil, options: SourceFile.Options = SourceFile.Options()) throws {
        self.path = path
        self.options = options
        let fd = try SourceFile.open(path, options: options)
        defer { close(fd) }
        if let dialect {
            self.dialect = dialect
            return
        }
        let size = 64 * 1024
        let head = try [UInt8](unsafeUninitializedCapacity: size) { raw, count in
            count = 0
            while count < size {
                let n = pread(fd, raw.baseAddress! + count, size - count, off_t(count))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DSARError.syscall("cannot read", path: path)
                }
                if n == 0 { break }
                count += n
            }
        }
        self.dialect = Self.detect(head)
    }

    /// Guesses the dialect of a dump from its first bytes.
    static func detect(_ head: [UInt8]) -> SQLDialect {
        func has(_ s: String) -> Bool {
            let needle = Array(s.utf8)
            return head.withUnsafeBufferPointer { h in
                var i = 0
                while let j = SQLScanner.find(needle[0], h, from: i, to: h.count - needle.count + 1) {
                    if h[j..<j + needle.count].elementsEqual(needle) { return true }
                    i = j + 1
                }
                return false
            }
        }
        func starts(_ s: String) -> Bool { head.starts(with: s.utf8) }
        if has("-- MySQL dump") || has("-- MariaDB dump") { return .mysql }
        if has("-- PostgreSQL database dump") { return .postgres }
        if has("PRAGMA foreign_keys") { return .sqlite }
        if has("/*!40") || has("/*M!") || has("/*!50") { return .mysql }
        if has("SET search_path") || has("pg_catalog.set_config") || has("\nCOPY ") || starts("COPY ")
            || has(" FROM stdin;")
        {
            return .postgres
        }
        if has("BEGIN TRANSACTION") { return .sqlite }
        if has("`") { return .mysql }
        return .postgres
    }

    private static let kwInsert = Array("INSERT".utf8)
    private static let kwReplace = Array("REPLACE".utf8)
    private static let kwCopy = Array("COPY".utf8)
    private static let kwCreate = Array("CREATE".utf8)
    private static let kwDelimiter = Array("DELIMITER".utf8)

    /// Streams the file once, calling `body` for every row of every INSERT and every COPY data line.
    ///
    /// Throws `DSARError(.io)` when the file cannot be read and `DSARError(.invalidInput)` for an INSERT
    /// whose VALUES cannot be parsed (a truncated dump, say) — rows are never silently dropped.
    /// A dump that is cut off elsewhere is read to its end and ``truncation`` says where and why (a COPY
    /// data line cut mid-line at end of file is not emitted). Calling it again re-reads the file from the start.
    public mutating func forEachRow(_ body: (SQLRow) throws -> Void) throws {
        let fd = try SourceFile.open(path, options: options)
        defer { close(fd) }
        tableInfos = []
        tableIndex = [:]
        bytesRead = 0
        truncation = nil
        producer = try Self.detectProducer(fd: fd, path: path)
        var input = SQLInput(fd: fd, path: path, chunk: chunkSize)
        defer { bytesRead = input.bytesRead }
        let opts = SQLLexOptions(dialect)
        var delimiter: [UInt8] = [SQLByte.semicolon]
        var first = true

        while try skipTrivia(&input, opts: opts, atStart: first) {
            first = false
            input.mark = input.pos
            _ = try input.ensure(512)
            let start = input.pos
            if input.buf[start] == SQLByte.backslash {
                // A psql meta-command (\connect, \restrict, …) runs to the end of the line.
                try skipLine(&input)
                continue
            }
            let words = input.buf.withUnsafeBufferPointer { Self.leadingWords($0, from: start, opts: opts) }
            let kw = words.first ?? []
            if kw == Self.kwDelimiter && dialect == .mysql {
                delimiter = try readDelimiter(&input)
                continue
            }
            let isInsert = kw == Self.kwInsert || kw == Self.kwReplace
            let isCopy = kw == Self.kwCopy
            let isCreate = kw == Self.kwCreate
            let isTrigger = isCreate && dialect == .sqlite && words.dropFirst().prefix(3).contains(Array("TRIGGER".utf8))
            let keep = isInsert || isCopy || (isCreate && words.dropFirst().prefix(5).contains(Array("TABLE".utf8)))
            let stmtOffset = input.base + Int64(input.mark)
            let (end, terminated) = try scanStatement(&input, opts: opts, delimiter: delimiter, keep: keep, trigger: isTrigger)
            let stmtStart = input.mark
            input.pos = end
            if !terminated {
                // Only at end of file: the statement has no terminator, so the dump is cut off in it.
                let what = Self.keywordLabel(kw)
                truncation = Truncation(
                    kind: .insideStatement, line: try lineNumber(ofOffset: stmtOffset, &input),
                    message: "the dump ends inside \(what) that has no terminating \(String(decoding: delimiter, as: UTF8.self)): the dump is cut off")
            }
            guard keep else { continue }
            let path = self.path
            var lines = input.lines
            let base = input.base
            var copyColumns: (SQLTableInfo, [String], label: String, line: Int)? = nil
            do {
                try input.buf.withUnsafeBufferPointer { b in
                    let st = StatementContext(b: b, start: stmtStart, end: end, terminated: terminated, base: base, path: path)
                    if isInsert {
                        try parseInsert(st, opts: opts, lines: &lines, body)
                    } else if isCopy {
                        if let (t, c, label) = parseCopyHeader(st, opts: opts) {
                            copyColumns = (t, c, label, lines.line(at: stmtStart, in: b))
                        }
                    } else {
                        parseCreateTable(st, opts: opts)
                    }
                }
            } catch {
                if !terminated, let t = truncation {
                    truncation = Truncation(
                        kind: .insideStatement, line: t.line,
                        message: "the dump ends inside an INSERT (line \(t.line)) cut off in a row: the dump is cut off")
                }
                throw error
            }
            input.lines = lines
            if let (table, columns, label, line) = copyColumns {
                let end = try readCopyData(&input, table: table, columns: columns, body)
                if end != .terminated {
                    truncation = Truncation(
                        kind: .copyUnterminated, line: line,
                        message: "\(label) (line \(line)) has no terminating \\. line"
                            + (end == .cutLine ? " and its last data line is cut off mid-line (not read)" : "")
                            + ": the dump is cut off")
                    return
                }
            }
        }
        if truncation == nil, input.eof, let trailer = producer.trailer {
            truncation = try checkTrailer(&input, trailer: trailer)
        }
    }

    // MARK: - Truncation

    /// The tool named by the dump's first lines (its first 4 KiB, at most 12 lines).
    static func detectProducer(fd: Int32, path: String) throws -> Producer {
        var head = [UInt8](repeating: 0, count: 4096)
        var n = 0
        while n < head.count {
            let k = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + n, $0.count - n, off_t(n)) }
            if k < 0 {
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot read", path: path)
            }
            if k == 0 { break }
            n += k
        }
        var i = n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF ? 3 : 0
        var lineNo = 0
        while i < n && lineNo < 12 {
            var e = i
            while e < n && head[e] != SQLByte.lf { e += 1 }
            var te = e
            while te > i && SQLByte.isSpace(head[te - 1]) { te -= 1 }
            let line = head[i..<te]
            if lineNo == 0 && (line.elementsEqual("PRAGMA foreign_keys=OFF;".utf8) || line.elementsEqual("BEGIN TRANSACTION;".utf8)) {
                return .sqlite
            }
            if line.elementsEqual("-- PostgreSQL database dump".utf8) { return .pgDump }
            if line.elementsEqual("-- PostgreSQL database cluster dump".utf8) { return .pgDumpAll }
            if line.starts(with: "-- MySQL dump".utf8) || line.starts(with: "-- MariaDB dump".utf8) { return .mysqldump }
            i = e + 1
            lineNo += 1
        }
        return .unknown
    }

    /// A statement's leading keyword for messages: `an INSERT`, `a CREATE statement`, or `a statement`.
    private static func keywordLabel(_ kw: [UInt8]) -> String {
        guard !kw.isEmpty, kw.count <= 12, kw.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return "a statement" }
        let w = String(decoding: kw, as: UTF8.self)
        if w == "INSERT" { return "an INSERT" }
        if w == "REPLACE" { return "a REPLACE" }
        return (w.first.map { "AEIOU".contains($0) } ?? false ? "an " : "a ") + w + " statement"
    }

    /// The 1-based line of file offset `offset` (at or before the end of what has been read), found by
    /// counting back from the end of the data: only the bytes from `offset` on are looked at again.
    private func lineNumber(ofOffset offset: Int64, _ input: inout SQLInput) throws -> Int {
        let buf = input.buf
        let count = buf.count
        let endLine = buf.withUnsafeBufferPointer { input.lines.line(at: count, in: $0) }
        let end = input.base + Int64(count)
        if offset >= input.base {
            let from = Int(offset - input.base)
            return endLine - buf.withUnsafeBufferPointer { b in
                var n = 0
                var i = from
                while let nl = SQLScanner.find(SQLByte.lf, b, from: i, to: b.count) {
                    n += 1
                    i = nl + 1
                }
                return n
            }
        }
        return endLine - (try Self.newlines(fd: input.fd, path: path, from: offset, to: end))
    }

    /// Counts `\n` in the file's bytes `[from, to)` with `pread`, 1 MiB at a time.
    private static func newlines(fd: Int32, path: String, from: Int64, to: Int64) throws -> Int {
        var n = 0
        var at = from
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while at < to {
            let want = Int(min(Int64(chunk.count), to - at))
            let got = try chunk.withUnsafeMutableBytes { raw -> Int in
                while true {
                    let k = pread(fd, raw.baseAddress!, want, off_t(at))
                    if k >= 0 { return k }
                    if errno != EINTR { throw DSARError.syscall("cannot read", path: path) }
                }
            }
            if got == 0 { break }
            chunk.withUnsafeBufferPointer { b in
                var i = 0
                while let nl = SQLScanner.find(SQLByte.lf, b, from: i, to: got) {
                    n += 1
                    i = nl + 1
                }
            }
            at += Int64(got)
        }
        return n
    }

    private static let unrestrict = Array("\\unrestrict".utf8)

    /// At end of file: nil if the dump's last non-blank lines are the producer's trailer, else a
    /// `missingTrailer` truncation. Reads back from the end only as far as trailing blank space goes.
    private func checkTrailer(_ input: inout SQLInput, trailer: String) throws -> Truncation? {
        let fileEnd = input.base + Int64(input.buf.count)
        let window: Int64 = 64 * 1024
        var e = fileEnd
        var w: [UInt8] = []
        var s: Int64 = 0
        while e > 0 {
            s = max(0, e - window)
            w = try Self.readBytes(fd: input.fd, path: path, from: s, count: Int(e - s))
            while let last = w.last, SQLByte.isSpace(last) { w.removeLast() }
            if !w.isEmpty { break }
            e = s
        }
        if w.isEmpty { return Truncation(kind: .missingTrailer, line: 1, message: "the dump is empty: the dump is cut off") }
        let lastContent = s + Int64(w.count - 1)
        let t = Array(trailer.utf8)
        var le = w.count
        var found = false
        while le > 0 {
            var ls = le
            while ls > 0 && w[ls - 1] != SQLByte.lf { ls -= 1 }
            if ls == 0 && s > 0 { break }  // longer than the window: not a trailer
            var te = le
            while te > ls && SQLByte.isSpace(w[te - 1]) { te -= 1 }
            let line = w[ls..<te]
            if producer == .mysqldump ? line.starts(with: t) : line.elementsEqual(t) {
                found = true
                break
            }
            // After pg_dump's trailer: "--" lines and psql's "\unrestrict key" (possibly cut: no data is lost).
            let pgTail = producer == .pgDump || producer == .pgDumpAll
            let meta = line.starts(with: Self.unrestrict) || (!line.isEmpty && Self.unrestrict.starts(with: line))
            guard pgTail && (line.isEmpty || line.elementsEqual("--".utf8) || meta) else { break }
            le = ls > 0 ? ls - 1 : 0
        }
        if found { return nil }
        let line = try lineNumber(ofOffset: lastContent, &input)
        return Truncation(
            kind: .missingTrailer, line: line,
            message: "the \(producer.rawValue) dump does not end with its \"\(trailer)\" line (it stops at line \(line)): the dump is cut off")
    }

    /// Reads `count` bytes at `from` (fewer at end of file).
    private static func readBytes(fd: Int32, path: String, from: Int64, count: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: count) { raw, n in
            n = 0
            while n < count {
                let k = Glibc.pread(fd, raw.baseAddress! + n, count - n, off_t(from) + off_t(n))
                if k < 0 {
                    if errno == EINTR { continue }
                    throw DSARError.syscall("cannot read", path: path)
                }
                if k == 0 { break }
                n += k
            }
        }
    }

    // MARK: - Statement boundaries

    /// Skips whitespace, comments and empty statements between statements; false at end of file.
    private mutating func skipTrivia(_ input: inout SQLInput, opts: SQLLexOptions, atStart: Bool) throws -> Bool {
        if atStart, try input.ensure(3), input.buf[0] == 0xEF && input.buf[1] == 0xBB && input.buf[2] == 0xBF {
            input.pos = 3
        }
        while true {
            input.mark = input.pos
            guard try input.ensure(1) else { return false }
            let c = input.buf[input.pos]
            if SQLByte.isSpace(c) || c == SQLByte.semicolon {
                input.pos += 1
                continue
            }
            if c == SQLByte.hash && opts.hashComments {
                try skipLine(&input)
                continue
            }
            if c == SQLByte.minus || c == SQLByte.slash {
                let at = input.base + Int64(input.pos)
                _ = try input.ensure(3)
                let p = input.pos
                let n = input.buf.count
                let c1: UInt8 = p + 1 < n ? input.buf[p + 1] : 0
                if c == SQLByte.minus && c1 == SQLByte.minus
                    && (!opts.dashCommentNeedsSpace || p + 2 >= n || input.buf[p + 2] <= SQLByte.space)
                {
                    try skipLine(&input)
                    continue
                }
                if c == SQLByte.slash && c1 == SQLByte.star {
                    if try !skipComment(&input, opts: opts) {
                        let line = try lineNumber(ofOffset: at, &input)
                        truncation = Truncation(
                            kind: .insideComment, line: line,
                            message: "the dump ends inside a /* comment opened at line \(line): the dump is cut off")
                    }
                    continue
                }
            }
            return true
        }
    }

    /// Skips to just past the next `\n` (or to end of file).
    private func skipLine(_ input: inout SQLInput) throws {
        while true {
            let found = input.buf.withUnsafeBufferPointer { SQLScanner.find(SQLByte.lf, $0, from: input.pos, to: $0.count) }
            if let nl = found {
                input.pos = nl + 1
                return
            }
            input.pos = input.buf.count
            input.mark = input.pos
            if try !input.fill() { return }
        }
    }

    /// Skips a block comment starting at `pos` (`/*`), MySQL `/*! … */` included; false if the file
    /// ends before it is closed.
    private func skipComment(_ input: inout SQLInput, opts: SQLLexOptions) throws -> Bool {
        var depth = 1
        input.pos += 2
        while true {
            var i = input.pos
            input.buf.withUnsafeBufferPointer { b in
                let n = b.count
                while i < n {
                    let c = b[i]
                    if c == SQLByte.star || (c == SQLByte.slash && opts.nestedComments) {
                        if i + 1 >= n { return }
                        if c == SQLByte.star && b[i + 1] == SQLByte.slash {
                            depth -= 1
                            i += 2
                            if depth == 0 { return }
                        } else if c == SQLByte.slash && b[i + 1] == SQLByte.star {
                            depth += 1
                            i += 2
                        } else {
                            i += 1
                        }
                    } else {
                        i += 1
                    }
                }
            }
            input.pos = i
            if depth == 0 { return true }
            input.mark = i
            if try !input.fill() {
                input.pos = input.buf.count
                return false
            }
        }
    }

    /// Reads one line from `pos`, keeping it in the buffer: returns `[start, end)` without the `\n`
    /// and leaves `pos` just past the `\n` (or at end of file, where `start == end == pos` means no line).
    private func readLine(_ input: inout SQLInput) throws -> (start: Int, end: Int) {
        input.mark = input.pos
        var search = input.pos
        while true {
            let from = search
            if let nl = input.buf.withUnsafeBufferPointer({ SQLScanner.find(SQLByte.lf, $0, from: from, to: $0.count) }) {
                input.pos = nl + 1
                return (input.mark, nl)
            }
            let off = input.buf.count - input.mark
            if try !input.fill() {
                input.pos = input.buf.count
                return (input.mark, input.buf.count)
            }
            search = input.mark + off
        }
    }

    /// Scans to the end of the statement starting at `input.pos`. With `keep`, the statement's bytes stay
    /// in the buffer from `input.mark` on; without, they are dropped as the scan goes. Returns the index
    /// just past the terminator (or the end of the data, `terminated` false).
    private func scanStatement(
        _ input: inout SQLInput, opts: SQLLexOptions, delimiter: [UInt8], keep: Bool, trigger: Bool
    ) throws -> (end: Int, terminated: Bool) {
        var sc = SQLScanner(opts, delimiter: delimiter, trigger: trigger)
        while true {
            let eof = input.eof
            let from = input.pos
            let step = input.buf.withUnsafeBufferPointer { sc.run($0, from: from, eof: eof) }
            switch step {
            case .stop(let end):
                return (end, true)
            case .exhausted:
                return (input.buf.count, false)
            case .needMore(let r):
                input.pos = r
                if !keep { input.mark = r }
                _ = try input.fill()
            }
        }
    }

    /// `DELIMITER x` (MySQL client command): the first word after it becomes the delimiter.
    private func readDelimiter(_ input: inout SQLInput) throws -> [UInt8] {
        let (s, e) = try readLine(&input)
        var j = s + Self.kwDelimiter.count
        while j < e && SQLByte.isSpace(input.buf[j]) { j += 1 }
        var k = j
        while k < e && !SQLByte.isSpace(input.buf[k]) { k += 1 }
        let d = Array(input.buf[j..<k])
        return d.isEmpty ? [SQLByte.semicolon] : d
    }

    /// Up to six upper-cased leading words of the statement at `from` (comments between them skipped).
    private static func leadingWords(_ b: UnsafeBufferPointer<UInt8>, from: Int, opts: SQLLexOptions) -> [[UInt8]] {
        var cur = SQLCursor(b, from: from, end: b.count, opts: opts)
        var words: [[UInt8]] = []
        while words.count < 6 {
            cur.skipTrivia()
            guard let r = cur.word() else { break }
            words.append(b[r].map { SQLByte.upper($0) })
        }
        return words
    }

    // MARK: - Tables

    private func tableInfo(schema: String?, name: String) -> SQLTableInfo? {
        guard let idx = tableIndex[name] else { return nil }
        if let exact = idx.first(where: { tableInfos[$0].schema == schema }) { return tableInfos[exact] }
        return tableInfos[idx[0]]
    }

    private mutating func register(_ info: SQLTableInfo, replace: Bool) {
        if let idx = tableIndex[info.name], let k = idx.first(where: { tableInfos[$0].schema == info.schema }) {
            if replace || tableInfos[k].columns.isEmpty { tableInfos[k] = info }
            return
        }
        tableIndex[info.name, default: []].append(tableInfos.count)
        tableInfos.append(info)
    }

    /// The table's known info, or a new entry for a table first seen in an INSERT or COPY.
    private mutating func resolve(_ parts: [String], listed: [String]?) -> SQLTableInfo {
        let name = parts.last ?? ""
        let schema = parts.count >= 2 ? parts[parts.count - 2] : nil
        if let t = tableInfo(schema: schema, name: name) {
            var t = t
            t.schema = schema
            t.name = name
            return t
        }
        let info = SQLTableInfo(
            schema: schema, name: name, columns: listed ?? [],
            types: Array(repeating: .unknown, count: listed?.count ?? 0))
        register(info, replace: false)
        return info
    }

    // MARK: - CREATE TABLE

    private static let tableModifiers: Set<String> = [
        "OR", "REPLACE", "GLOBAL", "LOCAL", "TEMP", "TEMPORARY", "UNLOGGED", "VIRTUAL", "FOREIGN",
    ]
    /// Words that start a table constraint (reserved in all three dialects, so never a bare column name).
    private static let constraintWords: Set<String> = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"]
    /// MySQL index definitions (`KEY`, `INDEX` are reserved there; in SQLite `key` is a fine column name).
    private static let mysqlIndexWords: Set<String> = ["KEY", "INDEX", "FULLTEXT", "SPATIAL"]

    /// Whether the element of a CREATE TABLE list starting with bare word `u` is a constraint, not a column.
    private static func isConstraint(_ u: String, _ cur: SQLCursor, dialect: SQLDialect) -> Bool {
        if constraintWords.contains(u) { return true }
        if dialect == .mysql && mysqlIndexWords.contains(u) { return true }
        if dialect == .postgres && u == "LIKE" { return true }
        var look = cur
        look.skipTrivia()
        if u == "EXCLUDE" { return look.byte() == SQLByte.lparen || look.keyword(Array("USING".utf8)) }
        if u == "PERIOD" { return look.keyword(Array("FOR".utf8)) }
        return false
    }

    private mutating func parseCreateTable(_ st: StatementContext, opts: SQLLexOptions) {
        var cur = SQLCursor(st.b, from: st.start, end: st.end, opts: opts)
        cur.skipTrivia()
        guard cur.keyword(Self.kwCreate) else { return }
        while true {
            cur.skipTrivia()
            guard let w = cur.word() else { return }
            let u = cur.upper(w)
            if u == "TABLE" { break }
            if !Self.tableModifiers.contains(u) { return }
        }
        cur.skipTrivia()
        let save = cur.i
        if cur.keyword(Array("IF".utf8)) {
            cur.skipTrivia()
            if cur.keyword(Array("NOT".utf8)) {
                cur.skipTrivia()
                _ = cur.keyword(Array("EXISTS".utf8))
            } else {
                cur.i = save
            }
        }
        let parts = cur.qualifiedName()
        guard let name = parts.last else { return }
        let schema = parts.count >= 2 ? parts[parts.count - 2] : nil
        var columns: [String] = []
        var types: [SQLColumnType] = []
        cur.skipTrivia()
        if cur.byte() == SQLByte.lparen {
            cur.i += 1
            while !cur.atEnd {
                cur.skipTrivia()
                if cur.byte() == SQLByte.rparen { break }
                let elementStart = cur.i
                var column: String?
                if let w = cur.word() {
                    if !Self.isConstraint(cur.upper(w), cur, dialect: opts.dialect) { column = cur.text(w) }
                } else {
                    cur.i = elementStart
                    column = cur.identifier()
                }
                if let column {
                    cur.skipTrivia()
                    let typeWord = cur.word().map { cur.text($0).lowercased() } ?? ""
                    columns.append(column)
                    types.append(SQLColumnType(declared: typeWord))
                }
                cur.skipListItem()
                if cur.byte() == SQLByte.comma {
                    cur.i += 1
                } else {
                    break
                }
            }
        }
        register(SQLTableInfo(schema: schema, name: name, columns: columns, types: types), replace: true)
    }

    // MARK: - INSERT

    private static let insertModifiers: Set<String> = [
        "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "OR", "REPLACE", "ROLLBACK", "ABORT", "FAIL",
    ]

    // swiftlint:disable:next function_body_length cyclomatic_complexity
    private mutating func parseInsert(
        _ st: StatementContext, opts: SQLLexOptions, lines: inout SQLLineCounter, _ body: (SQLRow) throws -> Void
    ) throws {
        let b = st.b
        var cur = SQLCursor(b, from: st.start, end: st.end, opts: opts)
        cur.skipTrivia()
        _ = cur.word()  // INSERT / REPLACE
        for _ in 0..<4 {
            cur.skipTrivia()
            let save = cur.i
            if cur.keyword(Array("INTO".utf8)) { break }
            if let w = cur.word(), Self.insertModifiers.contains(cur.upper(w)) { continue }
            cur.i = save
            break
        }
        let parts = cur.qualifiedName()
        guard !parts.isEmpty else {
            throw st.error("cannot read the table name of an INSERT", line: lines.line(at: st.start, in: b))
        }
        cur.skipTrivia()
        if cur.keyword(Array("AS".utf8)) {
            cur.skipTrivia()
            _ = cur.identifier()
            cur.skipTrivia()
        }
        var listed: [String]?
        if cur.byte() == SQLByte.lparen {
            let save = cur.i
            listed = cur.identifierList()
            if listed == nil { cur.i = save }  // INSERT INTO t (SELECT …)
            cur.skipTrivia()
        }
        if cur.keyword(Array("OVERRIDING".utf8)) {  // pg_dump, identity columns: OVERRIDING SYSTEM VALUE
            cur.skipTrivia()
            _ = cur.word()
            cur.skipTrivia()
            _ = cur.keyword(Array("VALUE".utf8))
            cur.skipTrivia()
        }
        if listed == nil && opts.dialect == .mysql && cur.keyword(Array("SET".utf8)) {
            try parseInsertSet(st, &cur, parts: parts, lines: &lines, body)
            return
        }
        guard cur.keyword(Array("VALUES".utf8)) || cur.keyword(Array("VALUE".utf8)) else { return }  // SELECT, DEFAULT VALUES
        let table = resolve(parts, listed: listed)
        let columns = listed ?? table.columns
        let types = columns.map { table.type(of: $0) }
        let schema = parts.count >= 2 ? parts[parts.count - 2] : nil
        let name = parts[parts.count - 1]
        var rows: [SQLRow] = []
        var tupleIndex = 0
        var values: [SQLValue] = []
        var ranges: [ByteRange] = []
        while true {
            cur.skipTrivia()
            guard cur.byte() == SQLByte.lparen else {
                throw st.error(
                    cur.atEnd ? "INSERT into \(name) ends before its VALUES (truncated dump?)" : "INSERT into \(name): expected ( in VALUES",
                    line: lines.line(at: min(cur.i, st.end), in: b))
            }
            let tupleStart = cur.i
            cur.i += 1
            values.removeAll(keepingCapacity: true)
            ranges.removeAll(keepingCapacity: true)
            cur.skipTrivia()
            if cur.byte() == SQLByte.rparen {
                cur.i += 1
            } else {
                while true {
                    cur.skipTrivia()
                    let vs = cur.i
                    var parsed = cur.valueExpression()
                    var ve = cur.i
                    cur.skipTrivia()
                    if parsed == nil || !(cur.byte() == SQLByte.comma || cur.byte() == SQLByte.rparen) {
                        cur.i = vs
                        cur.skipListItem()
                        ve = cur.i
                        while ve > vs && SQLByte.isSpace(b[ve - 1]) { ve -= 1 }
                        parsed = ve > vs && !cur.atEnd ? (.raw(cur.text(vs..<ve)), nil) : nil
                    }
                    guard let (value, cast) = parsed, !cur.atEnd else {
                        throw st.error(
                            "INSERT into \(name) is cut off inside a tuple (truncated dump?)",
                            line: lines.line(at: tupleStart, in: b))
                    }
                    let k = values.count
                    let type = cast == "bytea" ? .binary : (k < types.count ? types[k] : .unknown)
                    values.append(Self.applyType(value, type, dialect: opts.dialect))
                    ranges.append(ByteRange(start: st.base + Int64(vs), end: st.base + Int64(ve)))
                    if cur.byte() == SQLByte.comma {
                        cur.i += 1
                        continue
                    }
                    cur.i += 1  // ")"
                    break
                }
            }
            let row = SQLRow(
                table: name, schema: schema, columns: columns, values: values, valueRanges: ranges,
                rowRange: ByteRange(start: st.base + Int64(tupleStart), end: st.base + Int64(cur.i)),
                statementRange: ByteRange(start: 0, end: 0), tupleIndex: tupleIndex,
                line: lines.line(at: tupleStart, in: b), kind: .insert)
            rows.append(row)
            tupleIndex += 1
            // Emit all but the last row now: the statement's end is only certain after the last tuple.
            if rows.count > 1 {
                var r = rows.removeFirst()
                r.statementRange = st.range
                try body(r)
            }
            cur.skipTrivia()
            if cur.byte() == SQLByte.comma {
                cur.i += 1
                continue
            }
            break
        }
        for var r in rows {
            r.statementRange = st.terminated ? st.range : ByteRange(start: st.base + Int64(st.start), end: st.base + Int64(cur.i))
            try body(r)
        }
    }

    /// MySQL `INSERT INTO t SET a = 1, b = 'x'`: one row; its `rowRange` is the assignment list.
    private mutating func parseInsertSet(
        _ st: StatementContext, _ cur: inout SQLCursor, parts: [String], lines: inout SQLLineCounter,
        _ body: (SQLRow) throws -> Void
    ) throws {
        let b = st.b
        let table = resolve(parts, listed: nil)
        var columns: [String] = []
        var values: [SQLValue] = []
        var ranges: [ByteRange] = []
        cur.skipTrivia()
        let rowStart = cur.i
        var rowEnd = cur.i
        while true {
            cur.skipTrivia()
            guard let column = cur.qualifiedName().last else { break }
            cur.skipTrivia()
            guard cur.byte() == 0x3D else { break }  // "="
            cur.i += 1
            cur.skipTrivia()
            let vs = cur.i
            var parsed = cur.valueExpression()
            var ve = cur.i
            cur.skipTrivia()
            let next = cur.byte()
            if parsed == nil || !(next == SQLByte.comma || cur.atEnd || next == SQLByte.semicolon || SQLByte.isLetter(next)) {
                cur.i = vs
                cur.skipListItem()
                ve = min(cur.i, st.end)
                while ve > vs && (SQLByte.isSpace(b[ve - 1]) || b[ve - 1] == SQLByte.semicolon) { ve -= 1 }
                parsed = ve > vs ? (.raw(cur.text(vs..<ve)), nil) : nil
                cur.i = ve
                cur.skipTrivia()
            }
            guard let (value, _) = parsed else { break }
            columns.append(column)
            values.append(Self.applyType(value, table.type(of: column), dialect: .mysql))
            ranges.append(ByteRange(start: st.base + Int64(vs), end: st.base + Int64(ve)))
            rowEnd = ve
            guard cur.byte() == SQLByte.comma else { break }
            cur.i += 1
        }
        guard !values.isEmpty else {
            throw st.error("cannot read the SET list of an INSERT into \(table.name)", line: lines.line(at: rowStart, in: b))
        }
        let stmtEnd = st.terminated ? st.end : rowEnd
        try body(
            SQLRow(
                table: parts[parts.count - 1], schema: parts.count >= 2 ? parts[parts.count - 2] : nil, columns: columns,
                values: values, valueRanges: ranges,
                rowRange: ByteRange(start: st.base + Int64(rowStart), end: st.base + Int64(rowEnd)),
                statementRange: ByteRange(start: st.base + Int64(st.start), end: st.base + Int64(stmtEnd)),
                tupleIndex: 0, line: lines.line(at: rowStart, in: b), kind: .insert))
    }

    /// Re-types a parsed INSERT value by the column's declared type (strings in binary columns become blobs).
    private static func applyType(_ v: SQLValue, _ type: SQLColumnType, dialect: SQLDialect) -> SQLValue {
        guard type == .binary, case .string(let s) = v else { return v }
        if dialect == .postgres { return SQLLiterals.bytea(s).map { .blob($0) } ?? v }
        return .blob(s)
    }

    // MARK: - COPY

    /// Reads `COPY name (cols) FROM stdin …;`; returns the table, the columns and `COPY schema.name`
    /// (for messages) when data lines follow.
    private mutating func parseCopyHeader(_ st: StatementContext, opts: SQLLexOptions) -> (SQLTableInfo, [String], String)? {
        var cur = SQLCursor(st.b, from: st.start, end: st.end, opts: opts)
        cur.skipTrivia()
        guard cur.keyword(Self.kwCopy) else { return nil }
        cur.skipTrivia()
        let parts = cur.qualifiedName()
        guard !parts.isEmpty else { return nil }
        cur.skipTrivia()
        var listed: [String]?
        if cur.byte() == SQLByte.lparen { listed = cur.identifierList() }
        var sawFrom = false
        var stdin = false
        var textFormat = true
        while !cur.atEnd {
            cur.skipTrivia()
            if let w = cur.word() {
                let u = cur.upper(w)
                if u == "FROM" {
                    sawFrom = true
                } else if sawFrom && (u == "STDIN") {
                    stdin = true
                } else if u == "CSV" || u == "BINARY" {
                    textFormat = false
                }
            } else if cur.byte() == SQLByte.quote {
                let s = SQLLiterals.quoted(st.b, at: cur.i, end: st.end, quote: SQLByte.quote, escapes: .none)
                cur.i = s?.next ?? st.end
            } else {
                cur.i += 1
            }
        }
        let table = resolve(parts, listed: listed)
        guard stdin else { return nil }
        var info = table
        if !textFormat { info.name = "" }  // data is skipped, not decoded
        return (info, listed ?? table.columns, "COPY " + parts.joined(separator: "."))
    }

    /// How a COPY block ended.
    private enum CopyEnd { case terminated, endOfFile, cutLine }

    /// Reads the data lines after `COPY … FROM stdin;` up to the `\.` line, emitting one row per line.
    /// At end of file without `\.` a last line with no `\n` is cut off: it is not emitted (`.cutLine`).
    private func readCopyData(
        _ input: inout SQLInput, table: SQLTableInfo, columns: [String], _ body: (SQLRow) throws -> Void
    ) throws -> CopyEnd {
        try skipLine(&input)  // the rest of the COPY line
        let types = columns.map { table.type(of: $0) }
        let decode = !table.name.isEmpty
        var values: [SQLValue] = []
        var ranges: [ByteRange] = []
        while true {
            let (ls, le) = try readLine(&input)
            let next = input.pos
            if next == ls { return .endOfFile }  // end of file without "\."
            var ce = le
            if ce > ls && input.buf[ce - 1] == SQLByte.cr { ce -= 1 }
            if ce - ls == 2 && input.buf[ls] == SQLByte.backslash && input.buf[ls + 1] == SQLByte.dot { return .terminated }
            if next == le { return .cutLine }  // the file ends in this line: it has no "\n"
            if decode {
                values.removeAll(keepingCapacity: true)
                ranges.removeAll(keepingCapacity: true)
                let base = input.base
                var lines = input.lines
                let row: SQLRow = input.buf.withUnsafeBufferPointer { b in
                    var fs = ls
                    while true {
                        let fe = SQLScanner.find(SQLByte.tab, b, from: fs, to: ce) ?? ce
                        let k = values.count
                        values.append(Self.copyValue(b, fs, fe, k < types.count ? types[k] : .unknown))
                        ranges.append(ByteRange(start: base + Int64(fs), end: base + Int64(fe)))
                        if fe >= ce { break }
                        fs = fe + 1
                    }
                    let range = ByteRange(start: base + Int64(ls), end: base + Int64(next))
                    return SQLRow(
                        table: table.name, schema: table.schema, columns: columns, values: values,
                        valueRanges: ranges, rowRange: range, statementRange: range, tupleIndex: 0,
                        line: lines.line(at: ls, in: b), kind: .copy)
                }
                input.lines = lines
                try body(row)
            }
        }
    }

    /// Decodes one COPY text field by the column's declared type (see the type notes on the struct).
    private static func copyValue(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, _ type: SQLColumnType) -> SQLValue {
        if e - s == 2 && b[s] == SQLByte.backslash && b[s + 1] == 0x4E { return .null }
        switch type {
        case .numeric:
            if SQLLiterals.isPlainNumber(b, s, e, exponent: true) {
                return .number(String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self))
            }
        case .unknown:
            if SQLLiterals.isPlainNumber(b, s, e, exponent: false) {
                return .number(String(decoding: UnsafeBufferPointer(rebasing: b[s..<e]), as: UTF8.self))
            }
        case .boolean:
            if e - s == 1 && b[s] == 0x74 { return .bool(true) }
            if e - s == 1 && b[s] == 0x66 { return .bool(false) }
        case .binary:
            let text = SQLLiterals.copyField(b, s, e)
            return SQLLiterals.bytea(text).map { .blob($0) } ?? .string(text)
        case .other:
            break
        }
        return .string(SQLLiterals.copyField(b, s, e))
    }
}

/// One complete statement in the buffer, with what is needed to report positions and errors.
private struct StatementContext {
    let b: UnsafeBufferPointer<UInt8>
    let start: Int
    let end: Int
    let terminated: Bool
    let base: Int64
    let path: String

    var range: ByteRange { ByteRange(start: base + Int64(start), end: base + Int64(end)) }

    func error(_ message: String, line: Int) -> DSARError {
        DSARError(.invalidInput, "\(path): line \(line): \(message)", path: path)
    }
}
