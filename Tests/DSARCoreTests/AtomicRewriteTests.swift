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
            try AtomicRewrite.splice(from: inFD, path: path, edits: [(2..<4, [])]) {
                try FileSystem.writeAll(out, $0, path: tmp)
            }
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n")
        XCTAssertEqual(r.before, before)
        XCTAssertEqual(r.after, try AtomicRewrite.hash(path: path))
        XCTAssertEqual(try FileSystem.status(path)!.mode & 0o777, 0o640)
    }

    /// Appends `text` to `path` the way a logger does (O_APPEND).
    func append(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_APPEND)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// Copies the bytes `range` of `fd` upper-cased (a stand-in for redaction) to `out`.
    func upper(_ fd: Int32, _ range: Range<Int64>, to out: Int32, _ tmp: String) throws {
        var buf = [UInt8](repeating: 0, count: Int(range.count))
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(range.lowerBound)) }
        XCTAssertEqual(n, buf.count)
        let u = buf.map { $0 >= 0x61 && $0 <= 0x7A ? $0 - 32 : $0 }
        try u.withUnsafeBytes { try FileSystem.writeAll(out, $0, path: tmp) }
    }

    func testAppendOnlyRewriteProcessesWhatWasAppendedMeanwhile() throws {
        let s = try TempSpool()
        let path = s.base + "/app.log"
        try "a\nb\n".write(toFile: path, atomically: true, encoding: .utf8)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var calls: [Range<Int64>] = []
        let r = try AtomicRewrite.rewriteAppendOnly(path, sourceFD: fd) { out, tmp, range, first in
            XCTAssertEqual(first, calls.isEmpty)
            calls.append(range)
            try upper(fd, range, to: out, tmp)
            // A writer appends during the first three rounds.
            if calls.count <= 3 { append(path, "line\(calls.count)\n") }
        }
        XCTAssertEqual(calls, [0..<4, 4..<10, 10..<16, 16..<22])
        XCTAssertEqual(r.rounds, 4)
        XCTAssertEqual(r.consumed, 22)
        XCTAssertTrue(r.result.changed)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "A\nB\nLINE1\nLINE2\nLINE3\n")
        // Written into the old inode after the rename (a writer holding it open): taken over.
        let old = open("/proc/self/fd/\(fd)", O_WRONLY | O_APPEND)
        _ = write(old, "late\n", 5)
        close(old)
        let rescued = try AtomicRewrite.rescueTail(path, sourceFD: fd, consumed: r.consumed, settle: 0.05) {
            out, p, range in
            try upper(fd, range, to: out, p)
        }
        XCTAssertEqual(rescued.bytes, 5)
        XCTAssertFalse(rescued.stillGrowing)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "A\nB\nLINE1\nLINE2\nLINE3\nLATE\n")
    }

    func testAppendOnlyRewriteGivesUpOnAFileThatKeepsGrowing() throws {
        let s = try TempSpool()
        let path = s.base + "/app.log"
        try "a\n".write(toFile: path, atomically: true, encoding: .utf8)
        var before = stat()
        stat(path, &before)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var rounds = 0
        XCTAssertThrowsError(
            try AtomicRewrite.rewriteAppendOnly(path, sourceFD: fd, maxRounds: 5) { out, tmp, range, _ in
                rounds += 1
                try upper(fd, range, to: out, tmp)
                append(path, "more\n")
            }
        ) { e in XCTAssertTrue("\(e)".contains("kept growing while it was being rewritten (5 rounds"), "\(e)") }
        XCTAssertEqual(rounds, 5)
        var after = stat()
        stat(path, &after)
        XCTAssertEqual(after.st_ino, before.st_ino, "left untouched")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "a\n" + String(repeating: "more\n", count: 5))
        XCTAssertEqual(try FileSystem.list(s.base).filter { $0.hasPrefix(".") }, [], "no temp file left")
    }

    func testAppendOnlyRewriteRefusesATruncatedFile() throws {
        let s = try TempSpool()
        let path = s.base + "/app.log"
        try "abc\ndef\n".write(toFile: path, atomically: true, encoding: .utf8)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        XCTAssertThrowsError(
            try AtomicRewrite.rewriteAppendOnly(path, sourceFD: fd) { out, tmp, range, _ in
                try upper(fd, range, to: out, tmp)
                truncate(path, 0)  // copytruncate by someone else
            }
        ) { e in XCTAssertTrue("\(e)".contains("was truncated while it was being rewritten"), "\(e)") }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "")
    }

    /// A default ACL on the directory is inherited by the temp file; the original has no ACL, so
    /// neither may the rewritten file.
    func testInheritedACLIsNotAddedAndOwnACLIsKept() throws {
        guard let setfacl = which("setfacl"), let getfacl = which("getfacl") else {
            throw XCTSkip("setfacl/getfacl are not installed (Debian package acl)")
        }
        let s = try TempSpool()
        let dir = s.base + "/logs"
        try FileSystem.makeDirectory(dir, mode: 0o755)
        let plain = dir + "/plain.log"
        let withACL = dir + "/acl.log"
        try "a\nb\n".write(toFile: plain, atomically: false, encoding: .utf8)
        try "a\nb\n".write(toFile: withACL, atomically: false, encoding: .utf8)
        chmod(plain, 0o640)
        let set = try runCommand(setfacl, ["-d", "-m", "u:nobody:rwx", dir])
        if set.status != 0 { throw XCTSkip("the filesystem of \(dir) does not take ACLs: \(set.stderr)") }
        XCTAssertEqual(try runCommand(setfacl, ["-m", "u:nobody:r", withACL]).status, 0)
        for p in [plain, withACL] {
            let before = try runCommand(getfacl, ["-p", p]).stdout
            _ = try AtomicRewrite.rewrite(p) { _, out, tmp in
                try FileSystem.writeAll(out, UnsafeRawBufferPointer(start: "a\n", count: 2), path: tmp)
            }
            XCTAssertEqual(try String(contentsOfFile: p, encoding: .utf8), "a\n")
            XCTAssertEqual(try runCommand(getfacl, ["-p", p]).stdout, before, p)
        }
        XCTAssertEqual(try FileSystem.status(plain)!.mode & 0o777, 0o640)
    }
}
