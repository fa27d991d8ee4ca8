import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

#if canImport(Glibc)
import Glibc
#endif

/// The single-pass digest (``SourceDigest``) the readers keep of the bytes they read: for a whole
/// read it equals ``RawVerifier/hash(_:options:)`` (and `sha256sum`), and in every other case there is none.
final class ScanDigestTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "dsar-digest-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
        dir = String(cString: p)
    }

    override func tearDownWithError() throws {
        try FileSystem.removeTree(dir)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = dir + "/" + name
        try FileSystem.writeAtomically(path, bytes, mode: 0o644)
        return path
    }

    /// `sha256sum` and the size on disk: the oracle.
    func stored(_ path: String) throws -> (Int64, String) {
        let r = try runCommand(try XCTUnwrap(which("sha256sum")), [path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let size = try XCTUnwrap(try FileSystem.status(path)).size
        return (Int64(size), String(r.stdout.prefix(64)))
    }

    func assertMatchesHash(
        _ d: SourceDigest?, _ path: String, file: StaticString = #filePath, line: UInt = #line
    )
        throws
    {
        let d = try XCTUnwrap(d, "no digest for \(path)", file: file, line: line)
        let h = try RawVerifier.hash(path)
        XCTAssertEqual(
            d, SourceDigest(bytes: h.bytes, sha256: h.sha256, endsWithNewline: h.endsWithNewline),
            path, file: file, line: line)
        let (size, sha) = try stored(path)
        XCTAssertEqual(d.bytes, size, path, file: file, line: line)
        XCTAssertEqual(d.sha256, sha, path, file: file, line: line)
    }

    /// Lines of varying length, so that lines and CSV records straddle the 1 MiB read blocks.
    func bulk(_ lines: Int, _ row: (Int) -> String) -> [UInt8] {
        var out: [UInt8] = []
        for k in 0..<lines { out += Array(row(k).utf8) }
        return out
    }

    func lineDigest(_ path: String, range: Range<Int64>? = nil, keeps: Bool = true) throws -> SourceDigest? {
        var r = try LineReader(path: path)
        r.keepsDigest = keeps
        r.range = range
        var n = 0
        try r.forEachLine { _, _, _, _ in n += 1 }
        return r.digest
    }

    func testLineReaderDigestEqualsTheHashPlainAndGzip() throws {
        let big = bulk(40_000) { k in "{\"user\":\"u\(k)\",\"pad\":\"\(String(repeating: "x", count: k % 97))\"}\n" }
        XCTAssertGreaterThan(big.count, 2 << 20)
        let cases: [(String, [UInt8])] = [
            ("nl.log", Array("a\nb\n".utf8)), ("no-nl.log", Array("a\nb".utf8)), ("empty.log", []),
            ("crlf.log", Array("a\r\nb\r\n".utf8)), ("big.log", big), ("big-cut.log", big + Array("tail".utf8)),
        ]
        for (name, bytes) in cases {
            let path = try write(name, bytes)
            try assertMatchesHash(try lineDigest(path), path)
            // Real gzip of the same content: the digest is of the compressed bytes as stored.
            let gz = try runCommand(try XCTUnwrap(which("gzip")), ["-k", "-n", path])
            XCTAssertEqual(gz.status, 0, gz.stderr)
            try assertMatchesHash(try lineDigest(path + ".gz"), path + ".gz")
        }
        XCTAssertEqual(try lineDigest(try write("e2.log", []))?.endsWithNewline, true)
        XCTAssertEqual(try lineDigest(try write("n2.log", Array("a".utf8)))?.endsWithNewline, false)
    }

    func testNoDigestForAPartOrWhenNotAskedOrOnError() throws {
        let path = try write("p.log", Array("one\ntwo\nthree\n".utf8))
        XCTAssertNil(try lineDigest(path, range: 4..<8), "a part of a file describes no file")
        XCTAssertNil(try lineDigest(path, range: 0..<14), "a range is never a claim about the whole file")
        XCTAssertNil(try lineDigest(path, keeps: false))
        var r = try LineReader(path: path)
        r.keepsDigest = true
        struct Stop: Error {}
        XCTAssertThrowsError(try r.forEachLine { _, n, _, _ in if n == 2 { throw Stop() } })
        XCTAssertNil(r.digest, "an early stop")
        try r.forEachLine { _, _, _, _ in }
        XCTAssertNotNil(r.digest)
        // A truncated gzip: lines are delivered, then the error; no digest.
        let gzPath = path + ".gz"
        XCTAssertEqual(try runCommand(try XCTUnwrap(which("gzip")), ["-k", "-n", path]).status, 0)
        let gz = Array(try XCTUnwrap(FileManager.default.contents(atPath: gzPath)))
        let cut = try write("cut.log.gz", Array(gz.prefix(gz.count - 6)))
        var c = try LineReader(path: cut)
        c.keepsDigest = true
        XCTAssertThrowsError(try c.forEachLine { _, _, _, _ in })
        XCTAssertNil(c.digest)
    }

    func testRunningDigestHashesEachByteOnceAndASkipSpoilsIt() {
        let bytes = Array("0123456789".utf8)
        bytes.withUnsafeBytes { b in
            var d = RunningDigest()
            d.feed(UnsafeRawBufferPointer(rebasing: b[0..<6]), at: 0)
            d.feed(UnsafeRawBufferPointer(rebasing: b[3..<8]), at: 3)  // a re-read after a resume
            d.feed(UnsafeRawBufferPointer(rebasing: b[8..<10]), at: 8)
            XCTAssertEqual(d.finish(atEnd: true)?.sha256, StreamingSHA256.hex(bytes))
            XCTAssertNil(d.finish(atEnd: false), "not at the end of the file")
            var s = RunningDigest()
            s.feed(UnsafeRawBufferPointer(rebasing: b[0..<4]), at: 0)
            s.feed(UnsafeRawBufferPointer(rebasing: b[6..<10]), at: 6)
            XCTAssertNil(s.finish(atEnd: true), "bytes 4..<6 were never read")
        }
    }

    func csvDigest(_ path: String, header: Bool = true) throws -> SourceDigest? {
        var r = try CSVReader(path: path, delimiter: UInt8(ascii: ","), hasHeader: header)
        r.keepsDigest = true
        try r.forEachRecord({ _ in }, onProblem: { _ in })
        return r.digest
    }

    func testCSVDigestEqualsTheHash() throws {
        let rows = bulk(30_000) { k in "u\(k)@example.com,\(k),\"note \(String(repeating: "y", count: k % 113))\"\n" }
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let cases: [(String, [UInt8])] = [
            ("h.csv", Array("email,id,note\na@b.co,1,x\n".utf8)),
            ("no-nl.csv", Array("email,id,note\na@b.co,1,x".utf8)),
            ("bom.csv", bom + Array("email,id,note\na@b.co,1,x\n".utf8)), ("header-only.csv", Array("a,b,c\n".utf8)),
            ("empty.csv", []), ("bom-only.csv", bom), ("big.csv", Array("email,id,note\n".utf8) + rows),
            // A stray quote: the reader gives up at EOF and resumes on the next line (re-reading blocks).
            ("stray.csv", Array("email,id,note\n".utf8) + rows + Array("a@b.co,1,\"open\nb@c.co,2,x\n".utf8)),
            // A record over 64 MiB is not needed here: the resume path is the same re-read.
        ]
        for (name, bytes) in cases {
            let path = try write(name, bytes)
            try assertMatchesHash(try csvDigest(path), path)
            try assertMatchesHash(try csvDigest(path, header: false), path)
        }
        var r = try CSVReader(path: try write("n.csv", Array("a,b\n1,2\n".utf8)))
        try r.forEachRecord({ _ in }, onProblem: { _ in })
        XCTAssertNil(r.digest, "only when asked")
    }

    func sqlDigest(_ path: String, chunk: Int? = nil) throws -> (SourceDigest?, SQLDumpReader) {
        var r = try SQLDumpReader(path: path, dialect: .postgres)
        if let chunk { r.chunkSize = chunk }
        r.keepsDigest = true
        try r.forEachRow { _ in }
        return (r.digest, r)
    }

    func testSQLDumpDigestEqualsTheHash() throws {
        let head = "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (id integer, email text);\n\n"
        let copy = bulk(30_000) { k in "\(k)\tu\(k)@example.com\n" }
        let complete =
            Array((head + "COPY public.t (id, email) FROM stdin;\n").utf8) + copy
            + Array("\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n".utf8)
        let cut = Array((head + "COPY public.t (id, email) FROM stdin;\n").utf8) + copy + Array("77\tcut@ex".utf8)
        let inserts = Array(
            (head + "INSERT INTO public.t VALUES (1, 'a@b.co');\nINSERT INTO public.t VALUES (2, 'c").utf8)
        for (name, bytes) in [("c.sql", complete), ("cut.sql", cut), ("empty.sql", []), ("i.sql", inserts)] {
            let path = try write(name, bytes)
            do {
                let (d, _) = try sqlDigest(path)
                try assertMatchesHash(d, path)
                let (small, _) = try sqlDigest(path, chunk: 7)
                try assertMatchesHash(small, path)
            } catch let e as DSARError where name == "i.sql" {
                // An INSERT cut in a row is an error: no coverage claim is made at all.
                XCTAssertEqual(e.code, .invalidInput)
            }
        }
        let (_, reader) = try sqlDigest(try write("cut2.sql", cut))
        XCTAssertEqual(reader.truncation?.kind, .copyUnterminated)
    }
}
