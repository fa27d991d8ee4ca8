#if canImport(Glibc)
import Glibc
#endif

/// Rewrites a plain-text SQL dump (pg_dump, mysqldump, sqlite3 `.dump`) with rows deleted or
/// redacted, copying everything else byte for byte.
///
/// The source is read twice, both times streaming: ``SQLDumpReader`` walks it to find each row again
/// (and, for INSERTs, the tuples around a deleted one), while the bytes between edits are copied from
/// a second descriptor with large `pread`s. Memory stays at the reader's window (one chunk plus the
/// statement being parsed) plus one copy buffer, however big the dump.
///
/// Edits:
/// - COPY data line, delete: the line (with its `\n`) is dropped.
/// - COPY field, redact: a string becomes the placeholder escaped for COPY text format (`\\`, `\t`,
///   `\n`, `\r`); a number, bool, blob or `\N` becomes `\N`.
/// - INSERT tuple, delete: the tuple goes with the separator (comma and whitespace) on one side —
///   the one after it, or before it for the last tuple. When no tuple of the statement is left, the
///   whole statement goes, from `INSERT` through its terminator and the line break after it.
/// - INSERT value, redact: a string becomes a quoted literal of the placeholder in the dialect's
///   syntax; anything else becomes `NULL`.
///
/// The plan must have been made by reading the same file: every planned row must be found again at
/// the same byte range, or the rewrite fails (the output is then incomplete and must be discarded).
package enum SQLRewriter {
    /// Streams `source` to `output` (a file descriptor, left open) applying the plan; everything not
    /// edited is copied byte-identical. Returns the number of rows deleted and of rows redacted.
    ///
    /// Throws `DSARError(.io)` when reading or writing fails, `DSARError(.invalidInput)` when the dump
    /// cannot be parsed or does not contain a planned row (changed since it was scanned), and
    /// `DSARError(.processing)` for a plan naming a value index the row does not have.
    package static func rewrite(
        source: String, dialect: SQLDialect, plan: SQLRewritePlan, output fd: Int32, outputPath: String
    ) throws -> (deleted: Int, redacted: Int) {
        try rewrite(
            source: source, dialect: dialect, plan: plan, output: fd, outputPath: outputPath,
            bufferSize: SQLSplicer.defaultBufferSize, readerChunk: nil)
    }

    /// The same, with the copy buffer and the reader's chunk size chosen (tests use tiny ones).
    static func rewrite(
        source: String, dialect: SQLDialect, plan: SQLRewritePlan, output fd: Int32, outputPath: String,
        bufferSize: Int, readerChunk: Int?
    ) throws -> (deleted: Int, redacted: Int) {
        let src = try SourceFile.open(source)
        defer { close(src) }
        var a = stat()
        var b = stat()
        if fstat(src, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino {
            throw DSARError(
                .usage, "cannot rewrite \(source) onto itself: write to another file and rename", path: outputPath)
        }
        let out = SQLSplicer(
            source: src, sourcePath: source, output: fd, outputPath: outputPath, bufferSize: bufferSize)
        var editor = SQLRowEditor(plan: plan, dialect: dialect, out: out)
        if !plan.isEmpty {
            var reader = try SQLDumpReader(path: source, dialect: dialect)
            if let readerChunk { reader.chunkSize = readerChunk }
            try reader.forEachRow { try editor.row($0) }
            try editor.endStatement()
            if editor.matched < plan.count {
                let missing = plan.entries.filter { editor.seen[$0.key] == nil }.min { $0.key < $1.key }
                let what =
                    missing.map { "the \($0.value.table) row at line \($0.value.line) (byte \($0.key))" }
                    ?? "a planned row"
                throw DSARError(
                    .invalidInput,
                    "\(source): \(plan.count - editor.matched) planned row(s) were not found again, first \(what); "
                        + "the dump changed since it was scanned — scan it again", path: source)
            }
        }
        try editor.out.finish()
        return (editor.deleted, editor.redacted)
    }

    // MARK: - Replacement literals

    /// What replaces a redacted value: the placeholder where `original` is a string, else NULL.
    static func replacement(
        for original: SQLValue, kind: SQLRow.Kind, dialect: SQLDialect, placeholder: String
    ) -> [UInt8] {
        let isString: Bool
        if case .string = original { isString = true } else { isString = false }
        switch kind {
        case .copy:
            return isString ? copyField(placeholder) : Array(#"\N"#.utf8)
        case .insert:
            return isString ? literal(placeholder, dialect: dialect) : Array("NULL".utf8)
        }
    }

    /// A field of PostgreSQL's COPY text format.
    static func copyField(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 4)
        for c in s.utf8 {
            switch c {
            case SQLByte.backslash: out += [SQLByte.backslash, SQLByte.backslash]
            case SQLByte.tab: out += [SQLByte.backslash, 0x74]
            case SQLByte.lf: out += [SQLByte.backslash, 0x6E]
            case SQLByte.cr: out += [SQLByte.backslash, 0x72]
            default: out.append(c)
            }
        }
        return out
    }

    /// A string literal in the dialect's syntax.
    ///
    /// PostgreSQL: `'…'` with quotes doubled; with a backslash in it, `E'…'` with backslashes doubled
    /// too, so it reads the same whatever `standard_conforming_strings` is. MySQL: quotes doubled and
    /// backslash, NUL, `\n`, `\r` and Ctrl-Z escaped as mysqldump does. SQLite: quotes doubled.
    static func literal(_ s: String, dialect: SQLDialect) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 4)
        switch dialect {
        case .postgres:
            let escaped = s.utf8.contains(SQLByte.backslash)
            if escaped { out.append(0x45) }  // E
            out.append(SQLByte.quote)
            for c in s.utf8 {
                if c == SQLByte.quote { out.append(SQLByte.quote) }
                if c == SQLByte.backslash && escaped { out.append(SQLByte.backslash) }
                out.append(c)
            }
        case .mysql:
            out.append(SQLByte.quote)
            for c in s.utf8 {
                switch c {
                case SQLByte.quote: out += [SQLByte.quote, SQLByte.quote]
                case SQLByte.backslash: out += [SQLByte.backslash, SQLByte.backslash]
                case 0: out += [SQLByte.backslash, 0x30]
                case SQLByte.lf: out += [SQLByte.backslash, 0x6E]
                case SQLByte.cr: out += [SQLByte.backslash, 0x72]
                case 0x1A: out += [SQLByte.backslash, 0x5A]
                default: out.append(c)
                }
            }
        case .sqlite:
            out.append(SQLByte.quote)
            for c in s.utf8 {
                if c == SQLByte.quote { out.append(SQLByte.quote) }
                out.append(c)
            }
        }
        out.append(SQLByte.quote)
        return out
    }
}

/// Applies the plan to the rows as the reader finds them, in file order.
///
/// INSERT tuples are handled one statement at a time with O(1) state: a run of deleted tuples is cut
/// from its first tuple up to the next kept tuple (taking the comma after it), or — when the run is at
/// the end — from the end of the previous kept tuple (taking the comma before it); a statement with no
/// kept tuple goes whole.
struct SQLRowEditor {
    let plan: SQLRewritePlan
    let dialect: SQLDialect
    var out: SQLSplicer
    var matched = 0
    var seen: [Int64: Bool] = [:]
    var deleted = 0
    var redacted = 0

    /// The INSERT statement being edited.
    private var statement: ByteRange?
    /// End of the last kept tuple of `statement`.
    private var keptEnd: Int64?
    /// Start of the run of deleted tuples not cut yet, and its end.
    private var runStart: Int64?
    private var runEnd: Int64 = 0

    init(plan: SQLRewritePlan, dialect: SQLDialect, out: SQLSplicer) {
        self.plan = plan
        self.dialect = dialect
        self.out = out
    }

    mutating func row(_ r: SQLRow) throws {
        let entry = plan.entries[r.rowRange.start]
        if let entry {
            guard entry.rowEnd == r.rowRange.end, seen[r.rowRange.start] == nil else {
                throw DSARError(
                    .invalidInput,
                    "\(out.sourcePath): line \(r.line): the planned \(entry.table) row at byte \(r.rowRange.start) is not where the plan says; "
                        + "the dump changed since it was scanned — scan it again", path: out.sourcePath)
            }
            seen[r.rowRange.start] = true
            matched += 1
        }
        switch r.kind {
        case .copy:
            try endStatement()
            guard let entry else { return }
            if entry.delete {
                try out.cut(r.rowRange.start, r.rowRange.end)
                deleted += 1
            } else {
                try redact(r, entry)
            }
        case .insert:
            if statement != r.statementRange {
                try endStatement()
                statement = r.statementRange
            }
            if entry?.delete == true {
                if runStart == nil { runStart = r.rowRange.start }
                runEnd = r.rowRange.end
                deleted += 1
            } else {
                if let s = runStart {
                    try out.cut(s, r.rowRange.start)
                    runStart = nil
                }
                if let entry { try redact(r, entry) }
                keptEnd = r.rowRange.end
            }
        }
    }

    /// Finishes the INSERT statement being edited (cuts a trailing run of deleted tuples).
    mutating func endStatement() throws {
        defer {
            statement = nil
            keptEnd = nil
            runStart = nil
        }
        guard let st = statement, runStart != nil else { return }
        if let k = keptEnd {
            try out.cut(k, runEnd)
        } else {
            var end = st.end
            let next = try out.peek(at: end, count: 2)
            if next.first == SQLByte.lf {
                end += 1
            } else if next == [SQLByte.cr, SQLByte.lf] {
                end += 2
            }
            try out.cut(st.start, end)
        }
    }

    private mutating func redact(_ r: SQLRow, _ e: SQLRewritePlan.Entry) throws {
        var did = false
        for c in e.redact.keys.sorted() {
            guard c >= 0, c < r.valueRanges.count, c < r.values.count, let placeholder = e.redact[c] else {
                throw DSARError(
                    .processing,
                    "\(out.sourcePath): line \(r.line): cannot redact value \(c) of a \(r.table) row with \(r.values.count) values",
                    path: out.sourcePath)
            }
            let range = r.valueRanges[c]
            try out.copy(upTo: range.start)
            try out.emit(
                SQLRewriter.replacement(for: r.values[c], kind: r.kind, dialect: dialect, placeholder: placeholder))
            try out.skip(to: range.end)
            did = true
        }
        if did { redacted += 1 }
    }
}

/// Copies ranges of the source to the output through one buffer, with edits spliced in between.
/// `pos` is the source offset up to which everything has been copied or skipped; it only grows.
struct SQLSplicer {
    static let defaultBufferSize = 1 << 20

    let source: Int32
    let sourcePath: String
    let output: Int32
    let outputPath: String
    private(set) var pos: Int64 = 0
    private var buf: [UInt8]
    private var used = 0

    init(source: Int32, sourcePath: String, output: Int32, outputPath: String, bufferSize: Int) {
        self.source = source
        self.sourcePath = sourcePath
        self.output = output
        self.outputPath = outputPath
        buf = [UInt8](repeating: 0, count: max(16, bufferSize))
    }

    /// Copies the source from `pos` to `end`.
    mutating func copy(upTo end: Int64) throws {
        try order(end)
        while pos < end {
            if used == buf.count { try flush() }
            let want = Int(min(Int64(buf.count - used), end - pos))
            let n = try readSource(at: pos, into: used, count: want)
            if n == 0 {
                throw DSARError(
                    .invalidInput,
                    "\(sourcePath) ended at byte \(pos), before byte \(end): it changed while being rewritten",
                    path: sourcePath)
            }
            used += n
            pos += Int64(n)
        }
    }

    /// Drops the source from `pos` to `end`.
    mutating func skip(to end: Int64) throws {
        try order(end)
        pos = end
    }

    /// Copies up to `start` and drops `[start, end)`.
    mutating func cut(_ start: Int64, _ end: Int64) throws {
        try copy(upTo: start)
        try skip(to: end)
    }

    /// Writes bytes of its own.
    mutating func emit(_ bytes: [UInt8]) throws {
        if bytes.count > buf.count - used { try flush() }
        if bytes.count > buf.count {
            try bytes.withUnsafeBufferPointer { try writeAll($0) }
            return
        }
        buf.withUnsafeMutableBufferPointer { b in
            for (k, c) in bytes.enumerated() { b[used + k] = c }
        }
        used += bytes.count
    }

    /// Copies the rest of the source and writes out what is buffered.
    mutating func finish() throws {
        while true {
            if used == buf.count { try flush() }
            let n = try readSource(at: pos, into: used, count: buf.count - used)
            if n == 0 { break }
            used += n
            pos += Int64(n)
        }
        try flush()
    }

    /// Up to `count` source bytes at `offset` (fewer at end of file); does not move `pos`.
    func peek(at offset: Int64, count: Int) throws -> [UInt8] {
        try FileSystem.readFully(source, count: count, at: offset, path: sourcePath)
    }

    mutating func flush() throws {
        guard used > 0 else { return }
        let n = used
        try buf.withUnsafeBufferPointer { try writeAll(UnsafeBufferPointer(rebasing: $0[0..<n])) }
        used = 0
    }

    private func order(_ end: Int64) throws {
        if end < pos {
            throw DSARError(
                .processing, "\(sourcePath): overlapping edits at byte \(end) (already past byte \(pos))",
                path: sourcePath)
        }
    }

    private mutating func readSource(at offset: Int64, into index: Int, count: Int) throws -> Int {
        let src = source
        let path = sourcePath
        return try buf.withUnsafeMutableBufferPointer { b in
            while true {
                let n = pread(src, b.baseAddress! + index, count, off_t(offset))
                if n >= 0 { return n }
                if errno != EINTR { throw DSARError.syscall("cannot read", path: path) }
            }
        }
    }

    private func writeAll(_ p: UnsafeBufferPointer<UInt8>) throws {
        try FileSystem.writeAll(output, UnsafeRawBufferPointer(p), path: outputPath)
    }
}
