#if canImport(Glibc)
import Glibc
#endif

/// INSERT / REPLACE (VALUES tuples and MySQL `SET`).
extension SQLDumpReader {
    static let insertModifiers: Set<String> = [
        "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE", "OR", "REPLACE", "ROLLBACK", "ABORT", "FAIL",
    ]

    // swiftlint:disable:next function_body_length cyclomatic_complexity
    mutating func parseInsert(
        _ st: SQLStatementContext, opts: SQLLexOptions, lines: inout SQLLineCounter, _ body: (SQLRow) throws -> Void
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
        // Not a row list (INSERT … SELECT, DEFAULT VALUES): nothing to read.
        guard cur.keyword(Array("VALUES".utf8)) || cur.keyword(Array("VALUE".utf8)) else { return }
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
                    cur.atEnd
                        ? "INSERT into \(name) ends before its VALUES (truncated dump?)"
                        : "INSERT into \(name): expected ( in VALUES",
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
            r.statementRange =
                st.terminated ? st.range : ByteRange(start: st.base + Int64(st.start), end: st.base + Int64(cur.i))
            try body(r)
        }
    }

    /// MySQL `INSERT INTO t SET a = 1, b = 'x'`: one row; its `rowRange` is the assignment list.
    mutating func parseInsertSet(
        _ st: SQLStatementContext, _ cur: inout SQLCursor, parts: [String], lines: inout SQLLineCounter,
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
            if parsed == nil
                || !(next == SQLByte.comma || cur.atEnd || next == SQLByte.semicolon || SQLByte.isLetter(next))
            {
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
            throw st.error(
                "cannot read the SET list of an INSERT into \(table.name)", line: lines.line(at: rowStart, in: b))
        }
        let stmtEnd = st.terminated ? st.end : rowEnd
        try body(
            SQLRow(
                table: parts[parts.count - 1], schema: parts.count >= 2 ? parts[parts.count - 2] : nil,
                columns: columns,
                values: values, valueRanges: ranges,
                rowRange: ByteRange(start: st.base + Int64(rowStart), end: st.base + Int64(rowEnd)),
                statementRange: ByteRange(start: st.base + Int64(st.start), end: st.base + Int64(stmtEnd)),
                tupleIndex: 0, line: lines.line(at: rowStart, in: b), kind: .insert))
    }

    /// Re-types a parsed INSERT value by the column's declared type (strings in binary columns become blobs).
    static func applyType(_ v: SQLValue, _ type: SQLColumnType, dialect: SQLDialect) -> SQLValue {
        guard type == .binary, case .string(let s) = v else { return v }
        if dialect == .postgres { return SQLLiterals.bytea(s).map { .blob($0) } ?? v }
        return .blob(s)
    }
}
