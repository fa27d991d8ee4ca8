import DSARCore
import DSARTestSupport
import Foundation
import XCTest

final class AtomicRewriteTests: XCTestCase {
    func testSourceChangedDuringRewriteIsLeftUntouched() throws {
        let s = try TempSpool()
        let path = s.base + "/data.csv"
        try "a\nb\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o640)
        XCTAssertThrowsError(
            try AtomicRewrite.rewrite(path) { _, out, tmp in
                try FileSystem.writeAll(out, UnsafeRawBufferPointer(start: "a\n", count: 2), path: tmp)
                // Another writer appends while we rewrite.
                let h = FileHandle(forWritingAtPath: path)!
                h.seekToEndOfFile()
                h.write(Data("c\n".utf8))
                h.closeFile()
            }
        ) { e in XCTAssertTrue("\(e)".contains("changed while it was being rewritten"), "\(e)") }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\nb\nc\n")
        XCTAssertEqual(try FileSystem.list(s.base).filter { $0.hasPrefix(".") }, [], "no temp file left")
    }

    func testRewriteKeepsModeAndReportsHashes() throws {
        let s = try TempSpool()
        let path = s.base + "/data.csv"
        try "a\nb\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o640)
        let before = try AtomicRewrite.hash(path: path)
        let r = try AtomicRewrite.rewrite(path) { inFD, out, tmp in
            try AtomicRewrite.splice(from: inFD, path: path, edits: [(2..<4, [])]) { try FileSystem.writeAll(out, $0, path: tmp) }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n")
        XCTAssertEqual(r.before, before)
        XCTAssertEqual(r.after, try AtomicRewrite.hash(path: path))
        XCTAssertEqual(try FileSystem.status(path)!.mode & 0o777, 0o640)
    }
}
