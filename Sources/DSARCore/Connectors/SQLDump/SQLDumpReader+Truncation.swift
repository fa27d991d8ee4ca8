#if canImport(Glibc)
import Glibc
#endif

/// Truncation detection: the producer's header and trailer, unterminated statements and COPY blocks.
extension SQLDumpReader {
    /// The tool named by the dump's first lines (its first 4 KiB, at most 12 lines).
    static func detectProducer(fd: Int32, path: String) throws -> Producer {
        let head = try FileSystem.readFully(fd, count: 4096, at: 0, path: path)
        let n = head.count
        var i = n >= 3 && head[0] == 0xEF && head[1] == 0xBB && head[2] == 0xBF ? 3 : 0
        var lineNo = 0
        while i < n && lineNo < 12 {
            var e = i
            while e < n && head[e] != SQLByte.lf { e += 1 }
            var te = e
            while te > i && SQLByte.isSpace(head[te - 1]) { te -= 1 }
            let line = head[i..<te]
            if lineNo == 0
                && (line.elementsEqual("PRAGMA foreign_keys=OFF;".utf8)
                    || line.elementsEqual("BEGIN TRANSACTION;".utf8))
            {
                return .sqlite
            }
            if line.elementsEqual("-- PostgreSQL database dump".utf8) { return .pgDump }
            if line.elementsEqual("-- PostgreSQL database cluster dump".utf8) { return .pgDumpAll }
            if line.starts(with: "-- MySQL dump".utf8) || line.starts(with: "-- MariaDB dump".utf8) {
                return .mysqldump
            }
            i = e + 1
            lineNo += 1
        }
        return .unknown
    }

    /// A statement's leading keyword for messages: `an INSERT`, `a CREATE statement`, or `a statement`.
    static func keywordLabel(_ kw: [UInt8]) -> String {
        guard !kw.isEmpty, kw.count <= 12, kw.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { return "a statement" }
        let w = String(decoding: kw, as: UTF8.self)
        if w == "INSERT" { return "an INSERT" }
        if w == "REPLACE" { return "a REPLACE" }
        return (w.first.map { "AEIOU".contains($0) } ?? false ? "an " : "a ") + w + " statement"
    }

    /// The 1-based line of file offset `offset` (at or before the end of what has been read), found by
    /// counting back from the end of the data: only the bytes from `offset` on are looked at again.
    func lineNumber(ofOffset offset: Int64, _ input: inout SQLInput) throws -> Int {
        let buf = input.buf
        let count = buf.count
        let endLine = buf.withUnsafeBufferPointer { input.lines.line(at: count, in: $0) }
        let end = input.base + Int64(count)
        if offset >= input.base {
            let from = Int(offset - input.base)
            return endLine
                - buf.withUnsafeBufferPointer { b in
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
    static func newlines(fd: Int32, path: String, from: Int64, to: Int64) throws -> Int {
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

    static let unrestrict = Array("\\unrestrict".utf8)

    /// At end of file: nil if the dump's last non-blank lines are the producer's trailer, else a
    /// `missingTrailer` truncation. Reads back from the end only as far as trailing blank space goes.
    func checkTrailer(_ input: inout SQLInput, trailer: String) throws -> Truncation? {
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
        if w.isEmpty {
            return Truncation(kind: .missingTrailer, line: 1, message: "the dump is empty: the dump is cut off")
        }
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
            message:
                "the \(producer.rawValue) dump does not end with its \"\(trailer)\" line (it stops at line \(line)): the dump is cut off"
        )
    }

    /// Reads `count` bytes at `from` (fewer at end of file).
    static func readBytes(fd: Int32, path: String, from: Int64, count: Int) throws -> [UInt8] {
        try FileSystem.readFully(fd, count: count, at: from, path: path)
    }
}
