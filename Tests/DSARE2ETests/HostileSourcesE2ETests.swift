import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Sources that are not regular files (a FIFO, a symlink to `/dev/urandom`) and sources that take
/// longer than the connector's `timeout:`, through the real binary. Every run is bounded, so that a
/// regression fails instead of hanging CI.
final class HostileSourcesE2ETests: XCTestCase {
    let email = "alice@example.com"

    /// A log connector over `data/*.log` with one regular file holding one line of the subject.
    func logConnector(_ s: TempSpool, extra: String = "") throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/app.log", "2026-01-01 login \(email) ok\n2026-01-01 login bob@example.org ok\n")
        try writeFile(dir + "/app.yaml", "name: app\ntype: log\npaths: [ data/*.log ]\n" + extra)
        return dir
    }

    /// Runs `dsar run` once, bounded; returns the result and how long it took.
    func run(_ s: TempSpool, _ dir: String, bound: Double = 60) throws -> (CommandResult, Double) {
        let t0 = now()
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir], timeout: bound)
        return (r, now() - t0)
    }

    func testFIFOAmongLogFilesIsReportedNotWaitedFor() throws {
        let s = try TempSpool()
        let dir = try logConnector(s, extra: "timeout: 5\n")
        XCTAssertEqual(mkfifo(dir + "/data/pipe.log", 0o644), 0)
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "\#(email)"}"#)
        let (r, took) = try run(s, dir)
        XCTAssertLessThan(took, 20, "the FIFO was waited for")
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        let error = rec.error ?? ""
        XCTAssertTrue(
            error.contains("\(dir)/data/pipe.log") && error.contains("FIFO (named pipe), not a regular file"), error)
        XCTAssertFalse(error.contains(email), error)
        // The regular file beside it was searched all the same.
        XCTAssertEqual(rec.connectors.first { $0.name == "app" }?.records, 1)
        // The manifest states the gap with its kind.
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(rec.jobID)/manifest.json"))
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("unreadable_source"))

        // connectors check flags it with its kind (exit 78), and the next run is not locked out.
        let check = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 30)
        XCTAssertEqual(check.status, 78, check.stdout + check.stderr)
        XCTAssertTrue(
            check.stderr.contains(
                "\(dir)/app.yaml:3: paths: \(dir)/data/pipe.log is not read: a FIFO (named pipe), not a regular file"),
            check.stderr)
        let (again, _) = try run(s, dir, bound: 30)
        XCTAssertNotEqual(again.status, 75, again.stderr)

        // A delete never hangs on it either, and erases nothing it cannot account for: PARTIAL.
        try s.drop("d.json", #"{"action": "delete", "email": "\#(email)"}"#)
        let (d, dtook) = try run(s, dir)
        XCTAssertLessThan(dtook, 20)
        XCTAssertEqual(d.status, 1, d.stdout + d.stderr)
        let del = try XCTUnwrap(try s.records().first { $0.action == .delete })
        XCTAssertEqual(del.status, .partial, del.error ?? "")
        XCTAssertTrue((del.error ?? "").contains("pipe.log"), del.error ?? "")
        XCTAssertEqual(FileSystem.Status.Kind.fifo, try FileSystem.lstatus(dir + "/data/pipe.log")?.kind)
    }

    func testSymlinkToDevURandomIsRefusedWhetherLinksAreFollowedOrNot() throws {
        let s = try TempSpool()
        let dir = try logConnector(s, extra: "timeout: 10\n")
        XCTAssertEqual(symlink("/dev/urandom", dir + "/data/random.log"), 0)
        try writeFile(dir + "/real/target.txt", "2026-01-02 logout \(email)\n")
        XCTAssertEqual(symlink(dir + "/real/target.txt", dir + "/data/linked.log"), 0)
        try s.initialize()

        // Not followed: both links are refused as symbolic links, app.log is read.
        try s.drop("r1.json", #"{"request_id": "R-1", "action": "export", "email": "\#(email)"}"#)
        let (r1, took1) = try run(s, dir)
        XCTAssertLessThan(took1, 20, "/dev/urandom was read")
        XCTAssertEqual(r1.status, 1, r1.stdout + r1.stderr)
        let first = try XCTUnwrap(try s.record(requestID: "R-1"))
        XCTAssertEqual(first.status, .partial)
        XCTAssertTrue(
            (first.error ?? "").contains("\(dir)/data/random.log: not read: a symbolic link"), first.error ?? "")
        XCTAssertTrue(
            (first.error ?? "").contains("\(dir)/data/linked.log: not read: a symbolic link"), first.error ?? "")
        XCTAssertEqual(first.connectors.first { $0.name == "app" }?.records, 1)
        let check = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 30)
        XCTAssertEqual(check.status, 78)
        XCTAssertTrue(check.stderr.contains("\(dir)/data/random.log is not read: a symbolic link"), check.stderr)

        // follow_symlinks: the link to a regular file is read, the one to the device still refused.
        try writeFile(
            dir + "/app.yaml", "name: app\ntype: log\npaths: [ data/*.log ]\ntimeout: 10\nfollow_symlinks: true\n")
        try s.drop("r2.json", #"{"request_id": "R-2", "action": "export", "email": "\#(email)"}"#)
        let (r2, took2) = try run(s, dir)
        XCTAssertLessThan(took2, 20, "/dev/urandom was read")
        XCTAssertEqual(r2.status, 1, r2.stdout + r2.stderr)
        let second = try XCTUnwrap(try s.record(requestID: "R-2"))
        XCTAssertEqual(second.status, .partial)
        XCTAssertTrue(
            (second.error ?? "").contains("\(dir)/data/random.log: not read: a device, not a regular file"),
            second.error ?? "")
        XCTAssertFalse((second.error ?? "").contains("linked.log"), second.error ?? "")
        XCTAssertEqual(
            second.connectors.first { $0.name == "app" }?.records, 2, "app.log and the file linked.log leads to")
        let check2 = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 30)
        XCTAssertEqual(check2.status, 78)
        XCTAssertTrue(check2.stderr.contains("\(dir)/data/random.log is not read: a device"), check2.stderr)

        // Without the device, check lists each file with its kind.
        XCTAssertEqual(unlink(dir + "/data/random.log"), 0)
        let ok = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 30)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let size = "2026-01-02 logout \(email)\n".utf8.count
        XCTAssertTrue(ok.stdout.contains("\(dir)/data/linked.log  \(size) B  regular file"), ok.stdout)

        // A delete through the followed link rewrites the file it leads to; the link stays a link.
        try s.drop("d.json", #"{"request_id": "D-1", "action": "delete", "email": "\#(email)"}"#)
        let (d, _) = try run(s, dir)
        XCTAssertEqual(d.status, 0, d.stdout + d.stderr)
        let del = try XCTUnwrap(try s.record(requestID: "D-1"))
        XCTAssertEqual(del.status, .completed, del.error ?? "")
        XCTAssertEqual(try FileSystem.lstatus(dir + "/data/linked.log")?.kind, .symlink)
        XCTAssertEqual(
            try String(contentsOfFile: dir + "/real/target.txt", encoding: .utf8), "2026-01-02 logout [REDACTED]\n")
        let grep = try runCommand("/bin/grep", ["-rF", email, dir + "/data", dir + "/real"])
        XCTAssertEqual(grep.status, 1, "grep still finds the subject: \(grep.stdout)")
    }

    func testFIFOsAmongCSVAndSQLDumpSourcesAndFilesOverTheSizeLimit() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        try writeFile(dir + "/data/people.csv", "email,name\n\(email),Alice\n")
        XCTAssertEqual(mkfifo(dir + "/data/pipe.csv", 0o644), 0)
        try writeFile(
            dir + "/people.yaml",
            "name: people\ntype: csv\npaths: [ data/*.csv ]\ncolumns: { email: email }\ntimeout: 5\n")
        XCTAssertEqual(mkfifo(dir + "/data/shop.sql", 0o644), 0)
        try writeFile(
            dir + "/shop.yaml",
            "name: shop\ntype: sqldump\npaths: [ data/shop.sql ]\ntables:\n  customers: { match: { email: email } }\ntimeout: 5\n"
        )
        // Over a 50-byte limit: refused, not read.
        let big = String(repeating: "2026-01-01 login \(email) ok   \n", count: 2)
        try writeFile(dir + "/data/big.log", big)
        try writeFile(dir + "/big.yaml", "name: big\ntype: log\npaths: [ data/big.log ]\nmax_file_bytes: 50\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "\#(email)"}"#)
        let (r, took) = try run(s, dir)
        XCTAssertLessThan(took, 20, "a FIFO was waited for")
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .partial)
        let error = rec.error ?? ""
        XCTAssertTrue(error.contains("\(dir)/data/pipe.csv: not read: a FIFO (named pipe)"), error)
        XCTAssertTrue(error.contains("\(dir)/data/shop.sql: not read: a FIFO (named pipe)"), error)
        XCTAssertTrue(
            error.contains(
                "\(dir)/data/big.log: not read: it is \(big.utf8.count) bytes, more than max_file_bytes: 50"), error)
        XCTAssertEqual(rec.connectors.first { $0.name == "people" }?.records, 1)
        XCTAssertEqual(rec.connectors.first { $0.name == "big" }?.records, 0)
        let check = try s.dsar(["connectors", "check", "--connectors", dir], timeout: 30)
        XCTAssertEqual(check.status, 78)
        for name in ["pipe.csv", "shop.sql", "big.log"] {
            XCTAssertTrue(check.stderr.contains("\(dir)/data/\(name) is not read: "), check.stderr)
        }
    }

    func testTimeoutStopsABuiltInReaderAndReleasesTheSpool() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        // A CSV whose header is followed by 1 TiB of zeros (a sparse file, no line break): a regular
        // file that takes far longer than a second to read.
        try writeFile(dir + "/data/huge.csv", "email,note\n")
        let fd = open(dir + "/data/huge.csv", O_WRONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        guard ftruncate(fd, 1 << 40) == 0 else {
            close(fd)
            throw XCTSkip("the temp file system cannot hold a sparse 1 TiB file")
        }
        close(fd)
        try writeFile(
            dir + "/huge.yaml",
            "name: huge\ntype: csv\npaths: [ data/huge.csv ]\ncolumns: { email: email }\ntimeout: 1\nretries: 0\n")
        try s.initialize()
        try s.drop("r.json", #"{"action": "export", "email": "\#(email)"}"#)
        let (r, took) = try run(s, dir)
        XCTAssertLessThan(took, 15, "the reader outlived its timeout")
        let rec = try XCTUnwrap(try s.records().first)
        XCTAssertEqual(rec.status, .failed, "its only connector timed out")
        XCTAssertTrue((rec.error ?? "").contains("huge: connector huge timed out after 1 s"), rec.error ?? "")
        XCTAssertNotEqual(r.status, 75)

        // The spool was released: the next run takes the lock at once.
        let (again, took2) = try run(s, dir, bound: 30)
        XCTAssertNotEqual(again.status, 75, again.stderr)
        XCTAssertLessThan(took2, 15)

        // With a second, healthy connector the job is PARTIAL, naming the one that timed out.
        try writeFile(dir + "/data/people.csv", "email\n\(email)\n")
        try writeFile(
            dir + "/people.yaml", "name: people\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email }\n")
        try s.drop("r2.json", #"{"request_id": "P-2", "action": "export", "email": "\#(email)"}"#)
        let (r3, took3) = try run(s, dir)
        XCTAssertLessThan(took3, 15)
        XCTAssertEqual(r3.status, 1, r3.stderr)
        let partial = try XCTUnwrap(try s.record(requestID: "P-2"))
        XCTAssertEqual(partial.status, .partial)
        XCTAssertTrue((partial.error ?? "").contains("timed out"), partial.error ?? "")
        XCTAssertEqual(partial.connectors.first { $0.name == "people" }?.records, 1)
    }
}
