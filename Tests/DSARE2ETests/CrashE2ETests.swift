import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` at any moment, then `dsar run` again: every request ends exactly once, nothing is lost.
///
/// The scenarios are independent spools, so they run a few at a time (the work is mostly waiting
/// for fsync); problems are collected and asserted on the test's thread.
final class CrashE2ETests: XCTestCase {
    /// Points passed once per batch rather than once per job (so there is no second hit).
    /// `publish.grouped` is passed once per group of up to 64 sealed jobs: once for these three.
    static let oncePerBatch: Set<String> = ["job.scanned", "publish.grouped"]
    /// Points only passed while erasing or by `dsar retry` or `dsar deliver` (not by this file's
    /// export scenarios; RetryE2ETests kills at the identity and retry points, DeliverE2ETests at
    /// deliver.renamed, SparkE2ETests at spark.swapped).
    static let erasureOnly: Set<String> = [
        "erase.synced", "erase.renamed", "identity.written", "retry.moved", "live.erased", "live.verified",
        "deliver.renamed", "spark.swapped",
    ]

    /// Every `CrashPoint.hit("…")` name in Sources/ (found by reading the code).
    static func pointsInSources() -> Set<String> {
        var found = Set<String>()
        let root = repoRoot + "/Sources"
        guard let e = FileManager.default.enumerator(atPath: root) else { return found }
        let marker = "CrashPoint.hit(\""
        while let rel = e.nextObject() as? String {
            guard rel.hasSuffix(".swift"), let text = try? String(contentsOfFile: root + "/" + rel, encoding: .utf8)
            else { continue }
            var rest = text[...]
            while let r = rest.range(of: marker) {
                let after = rest[r.upperBound...]
                if let q = after.firstIndex(of: "\"") { found.insert(String(after[..<q])) }
                rest = after
            }
        }
        return found
    }

    /// `CrashPoint.all` is what crash tests loop over, so it must name every point in the code.
    func testCrashPointListNamesEveryPointInTheCode() {
        let inCode = Self.pointsInSources()
        XCTAssertFalse(inCode.isEmpty, "no CrashPoint.hit found under \(repoRoot)/Sources")
        XCTAssertEqual(
            inCode.subtracting(CrashPoint.all).sorted(), [],
            "crash points in the code but missing from CrashPoint.all (so never crash-tested by loops over it)")
        XCTAssertEqual(
            Set(CrashPoint.all).subtracting(inCode).sorted(), [], "CrashPoint.all names points the code never hits")
    }

    /// Each crash point (those in `CrashPoint.all` and any other the code hits), at its first and
    /// (for points passed once per job) second hit, on a fresh spool of three export requests.
    /// Every point of `CrashPoint.all` must fire in this scenario; other points found in the code
    /// that this scenario never reaches (e.g. erasure points, which need delete jobs with data
    /// sources) only have to leave the spool consistent.
    func testEveryCrashPointRecoversWithEachRequestCompletedExactlyOnce() throws {
        let points = CrashPoint.all + Self.pointsInSources().subtracting(CrashPoint.all).sorted()
        let cases = points.flatMap { p in (Self.oncePerBatch.contains(p) ? [1] : [1, 2]).map { (p, $0) } }
        let problems = inParallel(cases.count, width: 3) { k in
            let (point, hit) = cases[k]
            // The erasure points need delete jobs over data sources; ErasureE2ETests kills there.
            let mustFire = CrashPoint.all.contains(point) && !Self.erasureOnly.contains(point)
            return try Self.crashAndRecover(point: point, hit: hit, mustFire: mustFire).map {
                "DSAR_CRASH_AT=\(point):\(hit): \($0)"
            }
        }
        XCTAssertEqual(problems, [])
    }

    static func crashAndRecover(point: String, hit: Int, mustFire: Bool = true) throws -> [String] {
        var problems: [String] = []
        let spool = try TempSpool()
        try spool.initialize()
        let ids = try dropRequests(spool, prefix: "CP", count: 3)

        let crashed = try spool.dsar(
            ["run", "--settle", "0.1"], env: ["DSAR_CRASH_AT": "\(point):\(hit)"], timeout: 30)
        let fired = crashed.signaled && crashed.status == SIGKILL
        if !fired && (mustFire || crashed.signaled || crashed.status != 0) {
            problems.append(
                "expected the crash point to SIGKILL dsar, got status \(crashed.status): \(crashed.stderr.suffix(500))")
        }
        // Right after the crash nothing is lost: each request is still in the inbox, claimed in
        // active/, or has a job record.
        let records = try spool.records()
        for (k, rid) in ids.enumerated() {
            let inInbox = spool.kind("inbox/req-CP-\(k + 1).json") != nil
            let hasRecord = records.contains { $0.requestID == rid }
            let claimed = spool.list("active").contains { spool.text("active/" + $0).contains("\"\(rid)\"") }
            if !(inInbox || hasRecord || claimed) { problems.append("\(rid) vanished after the crash") }
        }

        let again = try spool.dsar(["run", "--settle", "0.1"], timeout: 30)
        if again.status != 0 {
            problems.append("rerun exited \(again.status): \(again.stdout) \(again.stderr.suffix(1000))")
        }
        problems += try spoolProblems(spool, expected: ids)

        // A third run finds nothing left to do and changes nothing.
        let before = try spool.records()
        let third = try spool.dsar(["run", "--settle", "0.1"], timeout: 30)
        if third.status != 0 || !third.stdout.contains("0 claimed, 0 finished") {
            problems.append("third run: \(third.status) \(third.stdout)")
        }
        if try spool.records() != before { problems.append("a third run changed job records") }
        return problems
    }

    /// A real SIGKILL at a random moment on a batch of 200 requests, three times in a row (later kills
    /// may land in recovery or in a half-recovered batch), then a clean run; on three fresh spools.
    ///
    /// So that the kills land in every phase whatever the machine's speed, each one waits for a random
    /// milestone (a plain delay, N more jobs claimed, or N more jobs published) plus a small random delay.
    func testRandomKill9DuringABatchOf200LosesNothing() throws {
        let rounds = 3
        let midBatch = Counter()
        let problems = inParallel(rounds, width: rounds) { round in
            try Self.killRound(round, midBatch: midBatch)
        }
        // Requests: each completed exactly once, nothing lost, nothing left in inbox/active/tmp.
        XCTAssertEqual(problems.filter { !$0.contains("temp file left behind") }, [])
        XCTAssertGreaterThan(midBatch.value, 0, "no kill landed in the middle of a batch; the test proved nothing")
        // Housekeeping: recovery removes every temp file a killed process left.
        XCTAssertEqual(
            problems.filter { $0.contains("temp file left behind") }, [], "stale temp files survive recovery")
    }

    /// A job in hand every time a run dies (here: a SIGKILL at the same point, three runs in a row)
    /// is set aside as FAILED at the next start, with its request kept in failed/, so it cannot stop
    /// every run; a job that arrives later runs normally, and `dsar retry` gives the poison job a
    /// fresh start.
    func testAJobThatCrashedThreeRunsIsSetAsideAsFailed() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("poison.json", requestJSON("POISON", user: "7001"))
        for k in 1...3 {
            let r = try s.dsar(["run", "--settle", "0"], env: ["DSAR_CRASH_AT": "job.scanned"], timeout: 60)
            XCTAssertTrue(
                r.signaled && r.status == SIGKILL,
                "run \(k) should die at the crash point: \(r.status) \(r.stderr.suffix(300))")
        }
        XCTAssertEqual(try s.record(requestID: "POISON")?.status, .running)
        XCTAssertEqual(try s.record(requestID: "POISON")?.crashes, 2, "two recoveries so far")
        try s.drop("innocent.json", requestJSON("INNOCENT", user: "7002"))
        let r = try s.dsar(["run", "--settle", "0"], timeout: 60)
        XCTAssertEqual(r.status, 1, "a job FAILED: \(r.stderr.suffix(500))")
        let poison = try XCTUnwrap(try s.record(requestID: "POISON"))
        XCTAssertEqual(poison.status, .failed)
        XCTAssertEqual(poison.crashes, 3)
        XCTAssertTrue((poison.error ?? "").contains("3 times (max_crashes: 3)"), poison.error ?? "")
        XCTAssertEqual(try s.record(requestID: "INNOCENT")?.status, .completed)
        XCTAssertTrue(s.list("failed").contains("\(poison.jobID).json"), "the request is kept")
        let events = try s.dsar(["events", poison.jobID, "--json"])
        XCTAssertTrue(
            events.stdout.contains("\"crashes\":3") || events.stdout.contains("\"crashes\": 3"), events.stdout)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
        // Fixed (no more crash point): a retry runs it to the end.
        XCTAssertEqual(try s.dsar(["retry", poison.jobID]).status, 0)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        XCTAssertEqual(try s.record(requestID: "POISON")?.status, .completed)
        XCTAssertNil(try s.record(requestID: "POISON")?.crashes)
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }

    static func killRound(_ round: Int, midBatch: Counter) throws -> [String] {
        var rng = SystemRandomNumberGenerator()
        var problems: [String] = []
        let spool = try TempSpool()
        // Killed on purpose up to 3 times per job: more than the default max_crashes allows.
        try spool.initialize(extraConfig: "max_crashes: 10\n")
        let ids = try dropRequests(spool, prefix: "K\(round)", count: 200)
        var log: [String] = []
        for _ in 1...3 {
            let claimedBefore = spool.recordNames().count
            let publishedBefore = spool.list("outbox").count
            let child = try spool.start(["run", "--settle", "0.1"])
            let n = Int.random(in: 1...60, using: &rng)
            let milestone: String
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                let d = Double.random(in: 0.02...0.6, using: &rng)
                usleep(UInt32(d * 1e6))
                milestone = "\(Int(d * 1000)) ms"
            case 1:
                waitUntil(timeout: 30) { spool.recordNames().count >= claimedBefore + n || !child.process.isRunning }
                milestone = "\(n) more claimed"
            default:
                waitUntil(timeout: 30) { spool.list("outbox").count >= publishedBefore + n || !child.process.isRunning }
                milestone = "\(n) more published"
            }
            usleep(UInt32.random(in: 0...30_000, using: &rng))
            child.signal(SIGKILL)
            let r = try child.wait(timeout: 60)
            let claimed = spool.recordNames().count
            let published = spool.list("outbox").count
            if r.signaled && published < ids.count { midBatch.add() }
            log.append(
                "kill after \(milestone): \(r.signaled ? "signal \(r.status)" : "had exited \(r.status)"), \(claimed) claimed, \(published) published"
            )
            if !r.signaled && r.status != 0 { problems.append("a run exited \(r.status): \(r.stderr.suffix(1000))") }
        }
        let context = "round \(round) (\(log.joined(separator: "; ")))"
        let final = try spool.dsar(["run", "--settle", "0.1"], timeout: 120)
        if final.status != 0 { problems.append("final run exited \(final.status): \(final.stderr.suffix(2000))") }
        problems += try spoolProblems(spool, expected: ids)
        if spool.recordNames().count != ids.count {
            problems.append("\(spool.recordNames().count) job records for \(ids.count) requests")
        }
        return problems.map { "\(context): \($0)" }
    }
}
