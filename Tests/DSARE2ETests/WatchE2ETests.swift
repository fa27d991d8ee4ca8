import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar watch`: the settle rule for files written in place, prompt pickup of renamed files, and a
/// clean stop on SIGTERM.
final class WatchE2ETests: XCTestCase {
    /// Starts `dsar watch` and waits until it watches the inbox.
    func startWatch(_ spool: TempSpool, settle: Double, extra: [String] = []) throws -> Child {
        let w = try spool.start(["watch", "--settle", "\(settle)", "--rescan", "60"] + extra)
        addTeardownBlock {
            // Never leave a watch running when a test stops early.
            if w.process.isRunning {
                w.signal(SIGKILL)
                _ = try? w.wait(timeout: 5)
            }
        }
        guard waitUntil(timeout: 10, { w.stderrSoFar().contains("\"message\":\"watching\"") }) else {
            throw TestFailure("dsar watch did not start: \(w.stderrSoFar())")
        }
        return w
    }

    /// Sends SIGTERM and checks that watch exits 0 promptly.
    func stop(_ w: Child, file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
        let t0 = Date()
        w.signal(SIGTERM)
        let r = try w.wait(timeout: 10)
        XCTAssertFalse(r.signaled, "watch died of signal \(r.status)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "watch exit status: \(r.stderr.suffix(2000))", file: file, line: line)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 3, "watch took too long to stop", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("stopping"), r.stderr.suffix(1000).description, file: file, line: line)
        return r
    }

    /// The job was claimed no earlier than `earliest` (claimed_at has whole seconds, so compare floors).
    func assertClaimedAfter(_ rec: JobRecord?, _ earliest: Date, file: StaticString = #filePath, line: UInt = #line) {
        guard let rec, let claimed = Timestamp.parse(rec.claimedAt) else {
            return XCTFail("no claimed_at", file: file, line: line)
        }
        XCTAssertGreaterThanOrEqual(
            claimed.timeIntervalSince1970, floor(earliest.timeIntervalSince1970),
            "claimed at \(rec.claimedAt), before the file had been unchanged for --settle (\(Timestamp.format(earliest)))",
            file: file, line: line)
    }

    /// Writes `chunks` into a new inbox file in place (one open file, appended), `gap` seconds apart.
    /// Returns the time of the last write and the largest gap seen.
    func slowWrite(_ path: String, _ chunks: [String], gap: Double) throws -> (last: Date, maxGap: Double) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw TestFailure("cannot create \(path)") }
        defer { close(fd) }
        var last = Date()
        var maxGap = 0.0
        for (k, c) in chunks.enumerated() {
            if k > 0 { usleep(UInt32(gap * 1e6)) }
            let bytes = Array(c.utf8)
            guard write(fd, bytes, bytes.count) == bytes.count else { throw TestFailure("short write") }
            if k > 0 { maxGap = max(maxGap, Date().timeIntervalSince(last)) }
            last = Date()
        }
        return (last, maxGap)
    }

    func testFileWrittenInPlaceInSlowWritesIsNotTakenHalfWritten() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let w = try startWatch(spool, settle: 1.0)
        let path = spool.root + "/inbox/slow.json"
        let chunks = [
            #"{"request_id": "SLOW-1", "#, #""action": "export", "#, #""subject": {"user_id": "31", "#,
            #""email": "slow@example.com"}}"#,
        ]
        let (last, maxGap) = try slowWrite(path, chunks, gap: 0.5)
        if maxGap >= 0.95 {
            throw XCTSkip("the machine stalled \(maxGap) s between writes; the settle rule then allows taking the file")
        }

        XCTAssertTrue(waitUntil(timeout: 10) { (try? spool.records().first?.status) == .completed }, w.stderrSoFar())
        let appeared = Date()
        _ = try stop(w)
        XCTAssertEqual(spool.list("rejected"), [], "a half-written file was rejected: \(spool.reason("slow.json"))")
        XCTAssertEqual(spool.list("inbox"), [])
        let recs = try spool.records()
        XCTAssertEqual(recs.count, 1)
        XCTAssertEqual(recs.first?.requestID, "SLOW-1")
        XCTAssertEqual(recs.first?.status, .completed)
        XCTAssertEqual(
            Set(recs.first?.identifiers.map(\.type) ?? []), ["user_id", "email"], "taken with all its content")
        XCTAssertGreaterThanOrEqual(appeared.timeIntervalSince(last), 0.95)
        assertClaimedAfter(recs.first, last.addingTimeInterval(1.0 - 0.05))
    }

    /// A writer that rewrites the file in place several times: every version is a valid request, so
    /// only the settle rule keeps dsar from taking an early version.
    func testFileRewrittenInPlaceIsTakenOnlyInItsFinalVersion() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let w = try startWatch(spool, settle: 1.0)
        let path = spool.root + "/inbox/rewrite.json"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var last = Date()
        var maxGap = 0.0
        for v in 1...4 {
            if v > 1 { usleep(500_000) }
            let bytes = Array(requestJSON("REWRITE-\(v)", user: "7\(v)").utf8)
            XCTAssertEqual(pwrite(fd, bytes, bytes.count, 0), bytes.count)
            if v > 1 { maxGap = max(maxGap, Date().timeIntervalSince(last)) }
            last = Date()
        }
        close(fd)
        if maxGap >= 0.95 {
            throw XCTSkip("the machine stalled \(maxGap) s between writes; the settle rule then allows taking the file")
        }

        XCTAssertTrue(waitUntil(timeout: 10) { (try? spool.records().first?.status) == .completed }, w.stderrSoFar())
        let appeared = Date()
        _ = try stop(w)
        let recs = try spool.records()
        XCTAssertEqual(recs.map { $0.requestID ?? "-" }, ["REWRITE-4"], "only the final version becomes a job")
        XCTAssertEqual(recs.first?.status, .completed)
        XCTAssertGreaterThanOrEqual(appeared.timeIntervalSince(last), 0.95)
        assertClaimedAfter(recs.first, last.addingTimeInterval(1.0 - 0.05))
        XCTAssertEqual(spool.list("rejected"), [])
        XCTAssertEqual(spool.list("inbox"), [])
    }

    func testFileRenamedIntoTheInboxIsTakenWithinSettlePlusOneSecond() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let settle = 0.5
        let w = try startWatch(spool, settle: settle)
        let staged = spool.base + "/upload.json"
        _ = FileManager.default.createFile(atPath: staged, contents: Data(requestJSON("RENAME-1", user: "88").utf8))
        XCTAssertEqual(rename(staged, spool.root + "/inbox/renamed.json"), 0)
        let t0 = Date()
        let seen = waitUntil(timeout: settle + 5) { !spool.recordNames().isEmpty || !spool.list("outbox").isEmpty }
        let elapsed = Date().timeIntervalSince(t0)
        XCTAssertTrue(seen, "never taken: \(w.stderrSoFar())")
        XCTAssertLessThanOrEqual(elapsed, settle + 1.0, "taken \(elapsed) s after the rename")
        XCTAssertGreaterThanOrEqual(elapsed, settle - 0.05, "taken before --settle \(settle) elapsed: \(elapsed) s")
        XCTAssertTrue(waitUntil(timeout: 5) { (try? spool.records().first?.status) == .completed })
        _ = try stop(w)
        XCTAssertEqual(try spool.records().map { $0.requestID ?? "-" }, ["RENAME-1"])
        XCTAssertEqual(spool.list("inbox"), [])
    }

    func testSigtermStopsAnIdleWatchWithExitZero() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let w = try startWatch(spool, settle: 0.2)
        usleep(300_000)
        _ = try stop(w)
    }

    /// SIGTERM in the middle of a batch: watch exits 0, jobs it did not finish are left PENDING (never
    /// RUNNING), and the next `dsar run` finishes them; every request ends exactly once.
    /// SIGTERM mid-seal (4 of 60 bundles sealed, the 5th paused): within the grace period the jobs
    /// in hand are all sealed and published, none is requeued, and watch exits 0.
    func testSigtermMidSealFinishesTheJobsInHandAndExitsZero() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let ids = try dropRequests(spool, prefix: "TERM", count: 60)
        // The 5th seal pauses for 1.5 s: the signal lands while the batch is being sealed.
        let w = try spool.start(
            ["watch", "--settle", "0.1", "--rescan", "60"], env: ["DSAR_PAUSE_AT": "seal.writing:5:1.5"])
        addTeardownBlock {
            if w.process.isRunning {
                w.signal(SIGKILL)
                _ = try? w.wait(timeout: 5)
            }
        }
        // Sealed bundles are published a group at a time (fsynced together, then renamed): the first
        // "bundle sealed" means the batch is being sealed, and the pause holds it there.
        XCTAssertTrue(
            waitUntil(timeout: 20) { w.stderrSoFar().components(separatedBy: "bundle sealed").count > 4 },
            w.stderrSoFar())
        let publishedAtSignal = spool.list("outbox").count
        XCTAssertLessThan(
            publishedAtSignal, ids.count, "the signal must land mid-batch for this test to prove anything")
        _ = try stop(w)
        let records = try spool.records()
        let byStatus = Dictionary(grouping: records, by: \.status).mapValues(\.count)
        XCTAssertEqual(byStatus[.running], nil, "no job may be left RUNNING after a clean stop: \(byStatus)")
        XCTAssertEqual(Set(records.map(\.status)).subtracting([.completed, .pending]), [], "\(byStatus)")
        XCTAssertGreaterThan(byStatus[.completed] ?? 0, 0)
        // The batch was in hand: sealing went on through the stop (only jobs claimed by a later pass
        // of the inbox, which SIGTERM prevents, could still be PENDING, and they have no record).
        XCTAssertEqual(byStatus[.pending], nil, "jobs in hand were requeued instead of finished: \(byStatus)")
        XCTAssertTrue(records.allSatisfy { $0.attempts <= 1 }, "no job was started twice")
        for r in records where r.status == .pending {
            XCTAssertEqual(spool.kind("active/\(r.jobID).json"), .regular, "a queued job keeps its claimed request")
            XCTAssertNil(spool.kind("tmp/\(r.jobID)"), "work dir of a requeued job is removed")
        }
        let run = try spool.dsar(["run", "--settle", "0.1"], timeout: 60)
        XCTAssertEqual(run.status, 0, run.stderr.suffix(2000).description)
        try assertSpoolAccountsFor(spool, expected: ids, context: "after SIGTERM (\(byStatus)) and a run")
    }

    /// A connector that takes `seconds` to scan (a plugin that reads its request and sleeps).
    func slowConnectors(_ spool: TempSpool, seconds: Double) throws -> String {
        let dir = spool.base + "/connectors"
        try writeFile(dir + "/slow.sh", "#!/bin/sh\ncat >/dev/null\nsleep \(seconds)\n", mode: 0o755)
        try writeFile(dir + "/slow.yaml", "name: slowcrm\ntype: exec\ncommand: [ ./slow.sh ]\nretries: 0\n")
        return dir
    }

    /// SIGTERM while the job in hand is being searched: the search ends, the job is sealed and
    /// published, and watch exits 0; nothing is left to scan again.
    func testSigtermLetsTheJobInHandFinishWithinTheGracePeriod() throws {
        let spool = try TempSpool()
        let dir = try slowConnectors(spool, seconds: 2)
        try spool.initialize()
        let w = try startWatch(spool, settle: 0.1, extra: ["--connectors", dir, "--grace", "30"])
        try spool.drop("a.json", requestJSON("GRACE-1", user: "4711"))
        XCTAssertTrue(
            waitUntil(timeout: 20) {
                ((try? spool.records()) ?? []).contains { $0.requestID == "GRACE-1" && $0.status == .running }
            }, w.stderrSoFar())
        let t0 = Date()
        w.signal(SIGTERM)
        let r = try w.wait(timeout: 40)
        XCTAssertFalse(r.signaled)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(1000).description)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 20)
        let rec = try XCTUnwrap(try spool.record(requestID: "GRACE-1"))
        XCTAssertEqual(rec.status, .completed, "the job in hand finished instead of going back to PENDING")
        XCTAssertEqual(rec.attempts, 1)
        XCTAssertEqual(spool.kind("outbox/\(rec.jobID)"), .directory)
        let again = try spool.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertTrue(again.stdout.contains("0 claimed, 0 finished"), "nothing is scanned again: \(again.stdout)")
    }

    /// Past the grace period the search is abandoned: watch exits 0 promptly, the job is PENDING with
    /// its request kept, and the next run completes it.
    func testPastTheGracePeriodTheJobGoesBackToPending() throws {
        let spool = try TempSpool()
        let dir = try slowConnectors(spool, seconds: 60)
        try spool.initialize()
        let w = try startWatch(spool, settle: 0.1, extra: ["--connectors", dir, "--grace", "1"])
        try spool.drop("a.json", requestJSON("GRACE-2", user: "4712"))
        XCTAssertTrue(
            waitUntil(timeout: 20) {
                ((try? spool.records()) ?? []).contains { $0.requestID == "GRACE-2" && $0.status == .running }
            }, w.stderrSoFar())
        let t0 = Date()
        w.signal(SIGTERM)
        let r = try w.wait(timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr.suffix(1000).description)
        XCTAssertLessThan(Date().timeIntervalSince(t0), 10, "the 60 s scan was abandoned after the 1 s grace period")
        let rec = try XCTUnwrap(try spool.record(requestID: "GRACE-2"))
        XCTAssertEqual(rec.status, .pending)
        XCTAssertEqual(spool.kind("active/\(rec.jobID).json"), .regular)
        XCTAssertNil(rec.crashes, "a clean stop is not a crash")
        _ = try slowConnectors(spool, seconds: 0)
        XCTAssertEqual(try spool.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        XCTAssertEqual(try spool.record(requestID: "GRACE-2")?.status, .completed)
    }

    /// An incomplete drop that is still young waits, and watch waits with it: it must not spin
    /// re-reading the file and logging in a tight loop until reject_after passes.
    func testWatchDoesNotSpinOnAnIncompleteDrop() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let w = try startWatch(spool, settle: 0.2)
        try spool.drop("cut.json", #"{"user_id": "5", "action": "exp"#)
        usleep(2_000_000)
        let cpu = cpuSeconds(w.pid)
        let r = try stop(w)
        let looks = r.stderr.components(separatedBy: "drop is incomplete").count - 1
        XCTAssertGreaterThanOrEqual(looks, 1, "the drop was looked at")
        XCTAssertLessThanOrEqual(
            looks, 5, "watch re-read the incomplete drop \(looks) times in 2 s (busy loop); CPU used: \(cpu) s")
        XCTAssertEqual(spool.list("inbox"), ["cut.json"], "a young incomplete drop stays in the inbox")
        XCTAssertEqual(spool.list("rejected"), [])
    }

    /// User+system CPU seconds a process has used (from /proc), or -1.
    func cpuSeconds(_ pid: Int32) -> Double {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = s.lastIndex(of: ")")
        else { return -1 }
        let f = s[s.index(after: close)...].split(separator: " ")
        guard f.count > 13, let u = Double(f[11]), let k = Double(f[12]) else { return -1 }
        return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
