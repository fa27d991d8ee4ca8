#if canImport(Glibc)
import Glibc
#endif

/// PostgreSQL COPY … FROM stdin blocks.
extension SQLDumpReader {
    /// Reads `COPY name (cols) FROM stdin …;`; returns the table, the columns and `COPY schema.name`
    /// (for messages) when data lines follow.
    mutating func parseCopyHeader(_ st: SQLStatementContext, opts: SQLLexOptions) -> (SQLTableInfo, [String], String)? {
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
    enum CopyEnd { case terminated, endOfFile, cutLine }

    /// Reads the data lines after `COPY … FROM stdin;` up to the `\.` line, emitting one row per line.
    /// At end of file without `\.` a last line with no `\n` is cut off: it is not emitted (`.cutLine`).
    func readCopyData(
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
            if ce - ls == 2 && input.buf[ls] == SQLByte.backslash && input.buf[ls + 1] == SQLByte.dot {
                return .terminated
            }
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
    static func copyValue(_ b: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, _ type: SQLColumnType) -> SQLValue {
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
