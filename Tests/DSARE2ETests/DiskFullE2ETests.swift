import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A full disk is an error, never a crash: the spool on a 2 MiB tmpfs, nearly filled, and an
/// export whose bundle does not fit. Connectors and data stay on the normal disk, so the bundle is
/// what fills the spool. Needs `mount` (root in CI); skipped, saying why, where it is not allowed.
final class DiskFullE2ETests: XCTestCase {

    /// Mounts a fresh tmpfs of `size` on `dir` (created); unmounted in tearDown. Skips without mount.
    func mountTmpfs(_ dir: String, size: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let m = try runTool("mount", ["-t", "tmpfs", "-o", "size=\(size),mode=0755", "tmpfs", dir])
        guard m.status == 0 else {
            throw XCTSkip("cannot mount a tmpfs on \(dir) (needs root / CAP_SYS_ADMIN): \(m.stderr)")
        }
        // A safety net if the test stops before its own unmount.
        addTeardownBlock { if FileSystem.exists(dir) { _ = try? runTool("umount", ["-l", dir]) } }
    }

    /// Bytes still free for an unprivileged-or-not writer on the file system of `path`.
    func freeBytes(_ path: String) -> Int64 {
        var st = statvfs()
        guard statvfs(path, &st) == 0 else { return -1 }
        return Int64(st.f_bavail) * Int64(st.f_frsize)
    }

    /// Writes a filler file so that about `leave` bytes stay free on the file system of `path`.
    func fill(_ path: String, leaving leave: Int64) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0xA5, count: 4096)
        var remaining = freeBytes(path) - leave
        while remaining > 0 {
            let n = chunk.withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, Int(remaining))) }
            if n <= 0 { break }
            remaining -= Int64(n)
        }
    }

    /// A CSV of `rows` rows of the subject, each with a random 48-hex-digit note (incompressible
    /// enough that 15,000 rows make a bundle of about 1 MiB); returns the connector dir and the notes.
    func makeLargeExport(_ s: TempSpool, rows: Int) throws -> (dir: String, notes: [String]) {
        let dir = s.base + "/connectors"
        var notes: [String] = []
        var csv = "email,user_id,note\n"
        csv.reserveCapacity(rows * 80)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<rows {
            var note = ""
            for _ in 0..<3 { note += String(format: "%016llx", rng.next() as UInt64) }
            notes.append(note)
            csv += "alice@example.com,1042,\(note)\n"
        }
        try writeFile(dir + "/data/orders.csv", csv)
        try writeFile(
            dir + "/orders.yaml",
            "name: orders\ntype: csv\npaths: [ data/orders.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        return (dir, notes)
    }

    /// Every 48-hex-digit run in `text` that is one of the matched rows' notes.
    func leakedNotes(_ text: String, _ notes: Set<String>) -> [String] {
        let re = try! NSRegularExpression(pattern: "[0-9a-f]{48}")
        return re.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { m in
            Range(m.range, in: text).map { String(text[$0]) }
        }.filter { notes.contains($0) }
    }

    func testDiskFullWhileSealingFailsTheJobCleanlyAtSeveralFillLevels() throws {
        for leaveKiB in [20, 100, 400] {
            try runDiskFull(leavingKiB: leaveKiB)
        }
    }

    func runDiskFull(leavingKiB: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let s = try TempSpool()
        try mountTmpfs(s.root, size: "2m")
        // Unmounted before the spool's temp directory is removed (s lives until then).
        defer { withExtendedLifetime(s) { _ = try? runTool("umount", [s.root]) } }
        let (dir, noteList) = try makeLargeExport(s, rows: 15_000)
        let notes = Set(noteList)
        try s.initialize()
        try s.drop(
            "r.json", #"{"request_id": "FULL-\#(leavingKiB)", "action": "export", "email": "alice@example.com"}"#)
        let filler = s.root + "/.test-filler"
        try fill(filler, leaving: Int64(leavingKiB) * 1024)
        let label = "[\(leavingKiB) KiB free]"

        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 300)
        XCTAssertFalse(
            r.signaled, "\(label) dsar was killed by signal \(r.status): \(r.stderr.suffix(2000))", file: file,
            line: line)
        XCTAssertLessThan(
            r.status, 128, "\(label) exit \(r.status) looks like a signal: \(r.stderr.suffix(2000))", file: file,
            line: line)
        XCTAssertNotEqual(
            r.status, 0, "\(label) a bundle that cannot fit must not end in success", file: file, line: line)
        XCTAssertEqual(
            leakedNotes(r.stderr + r.stdout, notes), [], "\(label) matched data on stderr/stdout", file: file,
            line: line)

        // The job FAILED saying which file system filled up, or (no space even to claim it) the
        // request is still queued and the run said why.
        let records = try s.records()
        let job = records.first
        if let job, job.status != .pending {
            XCTAssertEqual(job.status, .failed, "\(label) \(job.error ?? "-")", file: file, line: line)
            let error = job.error ?? ""
            XCTAssertTrue(
                error.contains("No space left on device (\(s.root)/outbox)"), "\(label) \(error)", file: file,
                line: line)
            XCTAssertTrue(error.contains("dsar retry \(job.jobID)"), "\(label) \(error)", file: file, line: line)
            XCTAssertNil(job.outbox, "\(label)", file: file, line: line)
        } else {
            XCTAssertTrue(
                r.stderr.contains("No space left on device"), "\(label) \(r.stderr.suffix(2000))", file: file,
                line: line)
        }
        // Nothing half-published: no staging directory, no entry, no temp file in outbox/.
        XCTAssertEqual(try FileSystem.list(s.root + "/outbox"), [], "\(label)", file: file, line: line)
        // The journal is whole and its chain verifies.
        let v = try s.dsar(["audit", "verify"])
        XCTAssertEqual(v.status, 0, "\(label) audit verify: \(v.stdout) \(v.stderr)", file: file, line: line)
        XCTAssertEqual(s.allFiles("journal").filter { $0.hasSuffix(".torn") }, [], "\(label)", file: file, line: line)

        // Space again: a FAILED job stays FAILED with its reason until retried; then it completes.
        try FileSystem.remove(filler)
        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 300)
        XCTAssertFalse(again.signaled, "\(label) \(again.stderr.suffix(2000))", file: file, line: line)
        var rec = try XCTUnwrap(try s.records().first, "\(label) no job after the second run", file: file, line: line)
        if rec.status == .failed {
            XCTAssertTrue(
                rec.error?.contains("No space left on device") == true, "\(label) \(rec.error ?? "-")", file: file,
                line: line)
            let retry = try s.dsar(["retry", rec.jobID])
            XCTAssertEqual(retry.status, 0, "\(label) \(retry.stderr)", file: file, line: line)
            let third = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: 300)
            XCTAssertEqual(third.status, 0, "\(label) \(third.stderr.suffix(2000))", file: file, line: line)
            rec = try XCTUnwrap(try s.records().first { $0.jobID == rec.jobID })
        }
        XCTAssertEqual(rec.status, .completed, "\(label) \(rec.error ?? "-")", file: file, line: line)
        XCTAssertEqual(
            rec.connectors.first { $0.name == "orders" }?.records, noteList.count, "\(label)", file: file, line: line)
        XCTAssertEqual(s.list("outbox").count, 1, "\(label)", file: file, line: line)
        XCTAssertEqual(
            try FileSystem.list(s.root + "/outbox").filter { $0.hasSuffix(".partial") }, [], "\(label)", file: file,
            line: line)
        let v2 = try s.dsar(["audit", "verify"])
        XCTAssertEqual(v2.status, 0, "\(label) audit verify: \(v2.stdout) \(v2.stderr)", file: file, line: line)
    }
}
