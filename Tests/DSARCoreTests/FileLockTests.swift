import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// FileLock against a real second holder: util-linux `flock(1)`, which takes the same kind of lock.
final class FileLockTests: XCTestCase {
    /// Starts `flock PATH sleep SECONDS` and waits until it holds the lock.
    func holdWithFlockTool(_ path: String, seconds: Int) throws -> Child {
        guard let tool = which("flock") else { throw XCTSkip("flock(1) (util-linux) is not installed") }
        let child = try launch(tool, [path, "sleep", String(seconds)])
        XCTAssertTrue(
            waitUntil(timeout: 10) { (try? runCommand(tool, ["-n", path, "true"]).status) == 1 },
            "flock(1) took the lock")
        return child
    }

    func testExclusiveLockIsSeenByAnotherProcessAndReleased() throws {
        guard let tool = which("flock") else { throw XCTSkip("flock(1) (util-linux) is not installed") }
        let s = try TempSpool()
        let path = s.base + "/x.lock"
        let inside: Int32 = try FileLock.withExclusive(path: path) {
            try runCommand(tool, ["-n", path, "true"]).status
        }
        XCTAssertEqual(inside, 1, "flock -n fails while dsar holds the lock")
        XCTAssertEqual(try FileSystem.lstatus(path)?.mode, 0o600, "the lock file is created 0600")
        XCTAssertEqual(try runCommand(tool, ["-n", path, "true"]).status, 0, "released after the body")
    }

    func testWaitWithTimeoutThrowsTypedTimeoutWhileHeldThenSucceeds() throws {
        let s = try TempSpool()
        let path = s.base + "/held.lock"
        let holder = try holdWithFlockTool(path, seconds: 2)
        let fd = try FileLock.openLockFile(path)
        defer { close(fd) }
        XCTAssertFalse(try FileLock.tryLock(fd: fd, path: path))
        let start = Date()
        XCTAssertThrowsError(try FileLock.lock(fd: fd, path: path, wait: .seconds(0.3))) { e in
            XCTAssertEqual(e as? FileLock.Timeout, FileLock.Timeout(path: path, seconds: 0.3))
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.3)
        XCTAssertThrowsError(try FileLock.lock(fd: fd, path: path, wait: .none)) {
            XCTAssertTrue($0 is FileLock.Timeout)
        }
        // Blocking wait: returns once the holder exits.
        try FileLock.lock(fd: fd, path: path, wait: .forever)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.0, "waited for the holder")
        FileLock.unlock(fd: fd)
        _ = try holder.wait()
    }

    func testRewriteOfALockedFileFailsWithTheOperatorMessageAndTheTimeoutAsCause() throws {
        let s = try TempSpool()
        let path = s.base + "/data.log"
        try FileSystem.writeAtomically(path, Array("a\n".utf8), mode: 0o644)
        let holder = try holdWithFlockTool(path, seconds: 3)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        XCTAssertThrowsError(try AtomicRewrite.lock(fd, path: path, wait: 0.2)) { e in
            let d = e as! DSARError
            XCTAssertEqual(d.code, .processing)
            XCTAssertEqual(
                d.message,
                "\(path) is locked by another process (flock) for more than 0 s; it was left untouched (rerun to erase)"
            )
            XCTAssertEqual(d.cause as? FileLock.Timeout, FileLock.Timeout(path: path, seconds: 0.2))
            // Equality ignores the cause.
            XCTAssertEqual(d, DSARError(.processing, d.message, path: path))
        }
        holder.signal(SIGTERM)
        _ = try holder.wait()
    }

    func testLockFileSymlinkIsRefused() throws {
        let s = try TempSpool()
        let path = s.base + "/link.lock"
        XCTAssertEqual(symlink(s.base + "/target", path), 0)
        XCTAssertThrowsError(try FileLock.withExclusive(path: path) { () }) { e in
            let d = e as! DSARError
            XCTAssertEqual(d.code, .io)
            XCTAssertEqual(d.errno, ELOOP)
            XCTAssertTrue(d.message.contains(path), d.message)
        }
        XCTAssertFalse(FileSystem.exists(s.base + "/target"), "nothing created through the link")
    }
}
