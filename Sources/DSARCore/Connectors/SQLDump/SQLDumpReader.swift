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
package struct SQLDumpReader: Sendable {
    /// The dump file.
    package let path: String
    /// How the file is opened (``SourceFile``).
    package let options: SourceFile.Options
    /// The dialect used for reading (given, or detected from the start of the file).
    package let dialect: SQLDialect
    var tableInfos: [SQLTableInfo] = []
    var tableIndex: [String: [Int]] = [:]
    /// Bytes read so far.
    package internal(set) var bytesRead: Int64 = 0
    /// Bytes per read (tests of the buffer-boundary handling use tiny ones).
    var chunkSize = SQLInput.defaultChunk
    /// The tool that wrote the dump, recognised by its header (after `forEachRow`).
    package internal(set) var producer: Producer = .unknown
    /// Why the dump is known to be incomplete, or nil when it is complete (after `forEachRow` has
    /// returned; also set when it threw because the file ends inside an INSERT).
    ///
    /// Rules: a COPY block must end with its `\.` line; no statement or `/* */` comment may be open
    /// at end of file; and a dump whose header names its producer must end with that producer's
    /// trailer (``Producer/trailer``), followed by nothing but blank lines (and, for pg_dump, `--`
    /// lines and psql `\unrestrict` commands). Only the last bytes of the file are read for the trailer.
    package internal(set) var truncation: Truncation?
    /// Opt-in: ``forEachRow(_:)`` keeps a running digest of the bytes it reads, so that ``digest``
    /// describes the file without reading it again.
    package var keepsDigest = false
    /// After a ``forEachRow(_:)`` that read the file from offset 0 to its end without an error, with
    /// ``keepsDigest``: its size, SHA-256 and last byte as stored; nil otherwise.
    package internal(set) var digest: SourceDigest?

    /// The tool that wrote a dump, as told by its first lines.
    package enum Producer: String, Sendable, CaseIterable {
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
        package var trailer: String? {
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
    package struct Truncation: Sendable, Equatable, CustomStringConvertible {
        /// What is missing.
        package enum Kind: String, Sendable, CaseIterable {
            /// A COPY block has no `\.` line (its last data line may be cut mid-line).
            case copyUnterminated = "copy_unterminated"
            /// Every statement is complete but the producer's trailer line is missing.
            case missingTrailer = "missing_trailer"
            /// The file ends inside a statement (no terminating `;`).
            case insideStatement = "inside_statement"
            /// The file ends inside a `/* … */` comment (MySQL `/*! … */` included).
            case insideComment = "inside_comment"
        }

        package let kind: Kind
        /// 1-based line: where the open COPY block, statement or comment began; for `missingTrailer`
        /// the last non-blank line of the file.
        package let line: Int
        /// What is wrong, for an operator (names tables and lines, never data values).
        package let message: String

        /// `line N: message`.
        package var description: String { "line \(line): \(message)" }
    }

    /// Tables seen so far (after `forEachRow`: all) with their columns from CREATE TABLE or COPY/INSERT
    /// column lists, in file order.
    package var tables: [(name: String, columns: [String])] { tableInfos.map { ($0.name, $0.columns) } }

    /// Opens a dump. With `dialect` nil it is detected from the first 64 KiB: a pg_dump header, `COPY`,
    /// `SET search_path` → postgres; `-- MySQL dump`/`-- MariaDB dump`, `/*!40101`, backticks → mysql;
    /// `PRAGMA foreign_keys`, `BEGIN TRANSACTION` → sqlite; nothing conclusive → postgres.
    /// The file must be a regular file (``SourceFile``: a FIFO, device, directory or, unless
    /// `options.followSymlinks`, a symlink is refused).
    package init(path: String, dialect: SQLDialect? = nil, options: SourceFile.Options = SourceFile.Options()) throws {
        self.path = path
        self.options = options
        let fd = try SourceFile.open(path, options: options)
        defer { close(fd) }
        if let dialect {
            self.dialect = dialect
            return
        }
        let size = 64 * 1024
        let head = try FileSystem.readFully(fd, count: size, at: 0, path: path)
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

    static let kwInsert = Array("INSERT".utf8)
    static let kwReplace = Array("REPLACE".utf8)
    static let kwCopy = Array("COPY".utf8)
    static let kwCreate = Array("CREATE".utf8)
    static let kwDelimiter = Array("DELIMITER".utf8)

    /// Streams the file once, calling `body` for every row of every INSERT and every COPY data line.
    ///
    /// Throws `DSARError(.io)` when the file cannot be read and `DSARError(.invalidInput)` for an INSERT
    /// whose VALUES cannot be parsed (a truncated dump, say) — rows are never silently dropped.
    /// A dump that is cut off elsewhere is read to its end and ``truncation`` says where and why (a COPY
    /// data line cut mid-line at end of file is not emitted). Calling it again re-reads the file from the start.
    package mutating func forEachRow(_ body: (SQLRow) throws -> Void) throws {
        let fd = try SourceFile.open(path, options: options)
        defer { close(fd) }
        tableInfos = []
        tableIndex = [:]
        bytesRead = 0
        truncation = nil
        digest = nil
        producer = try Self.detectProducer(fd: fd, path: path)
        var input = SQLInput(fd: fd, path: path, chunk: chunkSize)
        if keepsDigest { input.digest = RunningDigest() }
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
            let isTrigger =
                isCreate && dialect == .sqlite && words.dropFirst().prefix(3).contains(Array("TRIGGER".utf8))
            let keep = isInsert || isCopy || (isCreate && words.dropFirst().prefix(5).contains(Array("TABLE".utf8)))
            let stmtOffset = input.base + Int64(input.mark)
            let (end, terminated) = try scanStatement(
                &input, opts: opts, delimiter: delimiter, keep: keep, trigger: isTrigger)
            let stmtStart = input.mark
            input.pos = end
            if !terminated {
                // Only at end of file: the statement has no terminator, so the dump is cut off in it.
                let what = Self.keywordLabel(kw)
                truncation = Truncation(
                    kind: .insideStatement, line: try lineNumber(ofOffset: stmtOffset, &input),
                    message:
                        "the dump ends inside \(what) that has no terminating \(String(decoding: delimiter, as: UTF8.self)): the dump is cut off"
                )
            }
            guard keep else { continue }
            let path = self.path
            var lines = input.lines
            let base = input.base
            var copyColumns: (SQLTableInfo, [String], label: String, line: Int)? = nil
            do {
                try input.buf.withUnsafeBufferPointer { b in
                    let st = SQLStatementContext(
                        b: b, start: stmtStart, end: end, terminated: terminated, base: base, path: path)
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
                        message: "the dump ends inside an INSERT (line \(t.line)) cut off in a row: the dump is cut off"
                    )
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
                    digest = input.digest?.finish(atEnd: input.eof)
                    return
                }
            }
        }
        if truncation == nil, input.eof, let trailer = producer.trailer {
            truncation = try checkTrailer(&input, trailer: trailer)
        }
        digest = input.digest?.finish(atEnd: input.eof)
    }
}

/// One complete statement in the buffer, with what is needed to report positions and errors.
struct SQLStatementContext {
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
