import DSARCore
import DSARTestSupport
import Foundation
import XCTest

final class TempFileTests: XCTestCase {
    func testCreatesAnExclusiveDotSiblingWithTheExactModeAndTheRecoveryPattern() throws {
        let s = try TempSpool()
        let target = s.base + "/report.json"
        let old = umask(0o077)
        defer { umask(old) }
        let t = try TempFile.create(near: target, mode: 0o640)
        defer {
            close(t.fd)
            unlink(t.path)
        }
        let name = (t.path as NSString).lastPathComponent
        XCTAssertEqual((t.path as NSString).deletingLastPathComponent, s.base, "same directory as the target")
        XCTAssertTrue(name.hasPrefix(".report.json.dsar-\(getpid())-") && name.hasSuffix(".tmp"), name)
        // What start-up recovery (Processor.recover) removes: a dot file ending in .tmp.
        XCTAssertTrue(name.hasPrefix(".") && name.hasSuffix(".tmp"))
        XCTAssertEqual(TempFile.owner(of: name, base: "report.json"), getpid())
        XCTAssertEqual(try FileSystem.lstatus(t.path)?.mode, 0o640, "mode exact despite the umask")
        XCTAssertEqual(try FileSystem.lstatus(t.path)?.size, 0)
        XCTAssertGreaterThanOrEqual(fcntl(t.fd, F_GETFD) & FD_CLOEXEC, 1, "close-on-exec")
        let t2 = try TempFile.create(near: target)
        defer {
            close(t2.fd)
            unlink(t2.path)
        }
        XCTAssertNotEqual(t.path, t2.path)
        XCTAssertFalse(FileSystem.exists(target), "the target itself is not created")
    }

    func testRemoveStaleKeepsOnlyTempsOfOtherLiveProcesses() throws {
        let s = try TempSpool()
        let target = s.base + "/data.csv"
        let done = try runCommand("/bin/sh", ["-c", "echo $$"])
        let deadPID = try XCTUnwrap(Int32(done.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        let dead = s.base + "/.data.csv.dsar-\(deadPID)-7.tmp"
        let mine = s.base + "/.data.csv.dsar-\(getpid())-8.tmp"
        let sleeper = try launch("/bin/sleep", ["30"])
        defer {
            sleeper.signal(SIGKILL)
            _ = try? sleeper.wait()
        }
        let live = s.base + "/.data.csv.dsar-\(sleeper.pid)-9.tmp"
        let other = s.base + "/.other.csv.dsar-\(deadPID)-1.tmp"
        for p in [dead, mine, live, other] { try FileSystem.writeScratch(p, [1]) }
        TempFile.removeStale(near: target)
        XCTAssertEqual(
            try FileSystem.list(s.base).filter { $0.hasSuffix(".tmp") }.sorted(),
            [".data.csv.dsar-\(sleeper.pid)-9.tmp", ".other.csv.dsar-\(deadPID)-1.tmp"].sorted())
    }

    func testAtomicWritersLeaveNoTempAndKeepTheMode() throws {
        let s = try TempSpool()
        let path = s.base + "/out/file.txt"
        try FileSystem.makeDirectory(s.base + "/out", mode: 0o700)
        try FileSystem.writeAtomically(path, Array("hello\n".utf8), mode: 0o640)
        XCTAssertEqual(try FileSystem.list(s.base + "/out"), ["file.txt"])
        XCTAssertEqual(try FileSystem.lstatus(path)?.mode, 0o640)
        XCTAssertEqual(try FileSystem.readFile(path), Array("hello\n".utf8))
        // A failed write (the target is a directory) removes its temp file.
        try FileSystem.makeDirectory(s.base + "/out/dir", mode: 0o700)
        try FileSystem.writeScratch(s.base + "/out/dir/x", [1])
        XCTAssertThrowsError(try FileSystem.writeAtomically(s.base + "/out/dir", [1]))
        XCTAssertEqual(try FileSystem.list(s.base + "/out"), ["dir", "file.txt"])
    }
}
