import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The phases of a batch's writes (records: all written, all fsynced, all renamed, one directory
/// fsync; outbox: a group of entries staged, then renamed together, one fsync of outbox/): a real
/// SIGKILL between the phases loses nothing, and the next run completes every request exactly once,
/// each COMPLETED job with its outbox entry, the journal verifying.
final class BatchedDurabilityE2ETests: XCTestCase {
    /// `records.synced` is hit at the claim (1), at the batch start (2) and before the final records
    /// (3); `publish.grouped` once the group's entries are staged.
    func testAKillBetweenTheBatchPhasesLosesNothingAndTheNextRunCompletesEveryJob() throws {
        let cases: [(String, Int)] = [
            ("records.synced", 1), ("records.synced", 2), ("records.synced", 3), ("publish.grouped", 1),
        ]
        let problems = inParallel(cases.count, width: 2) { k in
            let (point, hit) = cases[k]
            return try Self.crashBetweenPhases(point: point, hit: hit).map { "DSAR_CRASH_AT=\(point):\(hit): \($0)" }
        }
        XCTAssertEqual(problems, [])
    }

    static func crashBetweenPhases(point: String, hit: Int) throws -> [String] {
        var problems: [String] = []
        let spool = try TempSpool()
        try spool.initialize()
        let ids = try dropRequests(spool, prefix: "BP", count: 5)
        let crashed = try spool.dsar(
            ["run", "--settle", "0.1"], env: ["DSAR_CRASH_AT": "\(point):\(hit)"], timeout: 60)
        if !(crashed.signaled && crashed.status == SIGKILL) {
            problems.append(
                "expected a SIGKILL at the crash point, got \(crashed.status): \(crashed.stderr.suffix(500))")
        }
        // At the kill: no COMPLETED job without its outbox entry, and every request somewhere.
        let records = try spool.records()
        for r in records where r.status == .completed && spool.kind("outbox/\(r.jobID)") != .directory {
            problems.append("job \(r.jobID) is COMPLETED without outbox/\(r.jobID)")
        }
        for (k, rid) in ids.enumerated() {
            let inInbox = spool.kind("inbox/req-BP-\(k + 1).json") != nil
            let claimed = spool.list("active").contains { spool.text("active/" + $0).contains("\"\(rid)\"") }
            if !(inInbox || claimed || records.contains { $0.requestID == rid }) {
                problems.append("\(rid) vanished after the crash")
            }
        }
        if point == "records.synced" {
            // Fsynced but not renamed: the records are as before the phase, whole (never a torn record).
            for name in spool.recordNames() where !name.hasPrefix(".") {
                if (try? JSONDecoder().decode(JobRecord.self, from: Data(spool.text("jobs/" + name).utf8))) == nil {
                    problems.append("jobs/\(name) does not decode after the crash")
                }
            }
        }
        let again = try spool.dsar(["run", "--settle", "0.1"], timeout: 60)
        if again.status != 0 { problems.append("rerun exited \(again.status): \(again.stderr.suffix(1000))") }
        problems += try spoolProblems(spool, expected: ids)
        let verify = try spool.dsar(["audit", "verify"])
        if verify.status != 0 { problems.append("audit verify: \(verify.status) \(verify.stdout) \(verify.stderr)") }
        // Each bundle is the one its record names (the manifest hash recorded with the outbox path).
        for r in try spool.records() where r.status == .completed {
            let manifest = try FileSystem.readFile(spool.root + "/outbox/\(r.jobID)/manifest.json")
            var h = StreamingSHA256()
            h.update(manifest)
            if r.manifestSHA256 != h.hexDigest() { problems.append("manifest of \(r.jobID) differs from its record") }
        }
        return problems
    }
}
