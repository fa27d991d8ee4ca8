import Foundation
import XCTest

@testable import DSARCore

/// gzip inflated on its own thread: the same lines as the plain file across many 1 MiB chunks, an
/// early stop by the reader neither hangs nor leaks the thread, and a truncated stream still
/// delivers every line before the error.
final class GzipPrefetcherTests: XCTestCase {
    func makeFiles() throws -> (dir: String, plain: String, gz: String, lines: Int) {
        let dir = NSTemporaryDirectory() + "dsar-gzpf-\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.makeDirectory(dir, mode: 0o700)
        var text: [UInt8] = []
        var n = 0
        while text.count < 6 << 20 {
            n += 1
            text += Array("line \(n) user\(n % 997)@example.com \(String(repeating: "x", count: n % 300))\n".utf8)
        }
        try FileSystem.writeAtomically(dir + "/a.log", text)
        let fd = open(dir + "/a.log.gz", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let w = try GzipWriter(fd: fd, path: dir + "/a.log.gz")
        try text.withUnsafeBytes { try w.write($0) }
        try w.finish()
        close(fd)
        return (dir, dir + "/a.log", dir + "/a.log.gz", n)
    }

    func lines(_ path: String) throws -> [[UInt8]] {
        var r = try LineReader(path: path)
        var out: [[UInt8]] = []
        try r.forEachLine { line, _, _, _ in out.append(Array(line)) }
        return out
    }

    func testSameLinesAsThePlainFileAndEarlyStop() throws {
        let f = try makeFiles()
        defer { try? FileSystem.removeTree(f.dir) }
        let plain = try lines(f.plain)
        XCTAssertEqual(plain.count, f.lines)
        XCTAssertEqual(try lines(f.gz), plain)
        // The reader stops after 100 lines, 20 times in a row: no hang, the thread is gone each time.
        struct Stop: Error {}
        for _ in 0..<20 {
            var r = try LineReader(path: f.gz)
            var seen = 0
            XCTAssertThrowsError(
                try r.forEachLine { _, _, _, _ in
                    seen += 1
                    if seen == 100 { throw Stop() }
                })
            XCTAssertEqual(seen, 100)
        }
    }

    func testTruncatedStreamDeliversTheLinesBeforeTheError() throws {
        let f = try makeFiles()
        defer { try? FileSystem.removeTree(f.dir) }
        let gz = try FileSystem.readFile(f.gz)
        try FileSystem.writeAtomically(f.gz, Array(gz[0..<(gz.count * 2 / 3)]))
        var r = try LineReader(path: f.gz)
        var got = 0
        XCTAssertThrowsError(try r.forEachLine { _, _, _, _ in got += 1 }) { e in
            XCTAssertTrue("\(e)".contains("truncated gzip data"), "\(e)")
        }
        XCTAssertGreaterThan(got, f.lines / 3, "the lines before the cut were delivered")
        XCTAssertLessThan(got, f.lines)
    }
}
