#if canImport(Glibc)
import Glibc
#endif

/// Statement boundaries (trivia, comments, lines, delimiters) and the table registry.
extension SQLDumpReader {
    /// Skips whitespace, comments and empty statements between statements; false at end of file.
    mutating func skipTrivia(_ input: inout SQLInput, opts: SQLLexOptions, atStart: Bool) throws -> Bool {
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
    func skipLine(_ input: inout SQLInput) throws {
        while true {
            let found = input.buf.withUnsafeBufferPointer {
                SQLScanner.find(SQLByte.lf, $0, from: input.pos, to: $0.count)
            }
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
    func skipComment(_ input: inout SQLInput, opts: SQLLexOptions) throws -> Bool {
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
    func readLine(_ input: inout SQLInput) throws -> (start: Int, end: Int) {
        input.mark = input.pos
        var search = input.pos
        while true {
            let from = search
            if let nl = input.buf.withUnsafeBufferPointer({ SQLScanner.find(SQLByte.lf, $0, from: from, to: $0.count) })
            {
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
    func scanStatement(
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
    func readDelimiter(_ input: inout SQLInput) throws -> [UInt8] {
        let (s, e) = try readLine(&input)
        var j = s + Self.kwDelimiter.count
        while j < e && SQLByte.isSpace(input.buf[j]) { j += 1 }
        var k = j
        while k < e && !SQLByte.isSpace(input.buf[k]) { k += 1 }
        let d = Array(input.buf[j..<k])
        return d.isEmpty ? [SQLByte.semicolon] : d
    }

    /// Up to six upper-cased leading words of the statement at `from` (comments between them skipped).
    static func leadingWords(_ b: UnsafeBufferPointer<UInt8>, from: Int, opts: SQLLexOptions) -> [[UInt8]] {
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

    func tableInfo(schema: String?, name: String) -> SQLTableInfo? {
        guard let idx = tableIndex[name] else { return nil }
        if let exact = idx.first(where: { tableInfos[$0].schema == schema }) { return tableInfos[exact] }
        return tableInfos[idx[0]]
    }

    mutating func register(_ info: SQLTableInfo, replace: Bool) {
        if let idx = tableIndex[info.name], let k = idx.first(where: { tableInfos[$0].schema == info.schema }) {
            if replace || tableInfos[k].columns.isEmpty { tableInfos[k] = info }
            return
        }
        tableIndex[info.name, default: []].append(tableInfos.count)
        tableInfos.append(info)
    }

    /// The table's known info, or a new entry for a table first seen in an INSERT or COPY.
    mutating func resolve(_ parts: [String], listed: [String]?) -> SQLTableInfo {
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
}
