import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Two dsar processes on one spool: the spool lock makes every request exactly one job.
final class ConcurrencyE2ETests: XCTestCase {
    func testTwoRunsWithWaitProcessEveryRequestExactlyOnce() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let ids = try dropRequests(spool, prefix: "W", count: 50)
        let a = try spool.start(["run", "--wait", "--settle", "0.2"])
        let b = try spool.start(["run", "--wait", "--settle", "0.2"])
        let ra = try a.wait(timeout: 60)
        let rb = try b.wait(timeout: 60)
        XCTAssertEqual(ra.status, 0, "first: \(ra.stdout)\n\(ra.stderr.suffix(2000))")
        XCTAssertEqual(rb.status, 0, "second: \(rb.stdout)\n\(rb.stderr.suffix(2000))")
        XCTAssertFalse(ra.signaled || rb.signaled)
        // Together they claimed exactly the 50 requests.
        let claimed = [ra.stdout, rb.stdout].map { out -> Int in
            guard let r = out.range(of: #"dsar run: (\d+) claimed"#, options: .regularExpression) else { return -1 }
            return Int(out[r].split(separator: " ")[2]) ?? -1
        }
        XCTAssertEqual(claimed.reduce(0, +), 50, "claimed per run: \(claimed)")
        XCTAssertTrue(claimed.contains(0), "the lock serialises the runs, so one finds nothing left: \(claimed)")
        try assertSpoolAccountsFor(spool, expected: ids, context: "two runs --wait")
        XCTAssertEqual(spool.recordNames().count, 50)
        XCTAssertEqual(Set(try spool.records().compactMap(\.requestID)).count, 50)
    }

    func testTwoRunsWithoutWaitEitherOneIsRefusedWithExit75OrBothRunWithoutDoubleProcessing() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let ids = try dropRequests(spool, prefix: "NW", count: 50)
        let a = try spool.start(["run", "--settle", "0.5"])
        let b = try spool.start(["run", "--settle", "0.5"])
        let results = [try a.wait(timeout: 60), try b.wait(timeout: 60)]
        let codes = results.map(\.status).sorted()
        XCTAssertTrue(codes == [0, 75] || codes == [0, 0], "exit codes \(codes): \(results.map(\.stderr))")
        for r in results where r.status == 75 {
            XCTAssertTrue(r.stderr.contains("lock"), "the refusal mentions the lock: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("busy"), r.stderr)
            XCTAssertEqual(r.stdout, "", "the refused run did nothing")
        }
        try assertSpoolAccountsFor(spool, expected: ids, context: "two runs without --wait, exit codes \(codes)")
        XCTAssertEqual(spool.recordNames().count, 50)
    }

    /// Deterministic: while `dsar watch` holds the spool, `dsar run` and a second watch exit 75.
    func testRunIsRefusedWithExit75WhileWatchHoldsTheLock() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let watch = try spool.start(["watch", "--settle", "0.2", "--rescan", "60"])
        addTeardownBlock {
            if watch.process.isRunning {
                watch.signal(SIGKILL)
                _ = try? watch.wait(timeout: 5)
            }
        }
        XCTAssertTrue(
            waitUntil(timeout: 10) { watch.stderrSoFar().contains("\"message\":\"watching\"") }, watch.stderrSoFar())

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 20)
        XCTAssertEqual(run.status, 75, run.stderr)
        XCTAssertTrue(run.stderr.contains("lock"), run.stderr)
        XCTAssertTrue(run.stderr.contains("pid \(watch.pid), dsar watch"), "names the holder: \(run.stderr)")
        XCTAssertTrue(run.stderr.contains("--wait"), run.stderr)
        let second = try spool.dsar(["watch", "--settle", "0.2"], timeout: 20)
        XCTAssertEqual(second.status, 75, second.stderr)

        watch.signal(SIGTERM)
        let w = try watch.wait(timeout: 10)
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertFalse(w.signaled)
        let after = try spool.dsar(["run", "--settle", "0.1"], timeout: 20)
        XCTAssertEqual(after.status, 0, "the lock is released when watch exits: \(after.stderr)")
    }
}
