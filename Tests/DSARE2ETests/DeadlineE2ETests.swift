import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Deadlines through the CLI: `dsar extend` within and beyond the legal maximum, OVERDUE in `dsar status`.
final class DeadlineE2ETests: XCTestCase {
    /// Leaves one job open (RUNNING) by killing `dsar run` right after the job started.
    func openJob(
        _ spool: TempSpool, requestID: String, receivedAt: String, regulation: String = "gdpr"
    ) throws -> JobRecord {
        try spool.drop(
            "\(requestID).json",
            #"{"request_id": "\#(requestID)", "user_id": "4242", "action": "export", "received_at": "\#(receivedAt)", "regulation": "\#(regulation)"}"#
        )
        let r = try spool.dsar(["run", "--settle", "0.1"], env: ["DSAR_CRASH_AT": "job.running"], timeout: 30)
        guard r.signaled, r.status == SIGKILL else {
            throw TestFailure("expected the crash point to fire: \(r.status) \(r.stderr)")
        }
        guard let rec = try spool.records().first(where: { $0.requestID == requestID }) else {
            throw TestFailure("no record")
        }
        XCTAssertEqual(rec.status, .running)
        return rec
    }

    func testExtendWithinTheGDPRMaximumMovesTheDeadlineAndBeyondItIsRefused() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let job = try openJob(spool, requestID: "EXT-1", receivedAt: "2026-11-20T09:00:00Z")
        XCTAssertEqual(job.deadline, "2026-12-20T09:00:00Z")
        // GDPR maximum: two further months after the initial deadline = 2027-02-20T09:00:00Z.

        let ok = try spool.dsar(["extend", job.jobID, "--days", "30", "--reason", "complex request, subject informed"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("deadline now 2027-01-19T09:00:00Z"), ok.stdout)
        var rec = try spool.records().first { $0.jobID == job.jobID }
        XCTAssertEqual(rec?.deadline, "2027-01-19T09:00:00Z")
        XCTAssertEqual(rec?.initialDeadline, "2026-12-20T09:00:00Z")
        XCTAssertEqual(rec?.extensions.map(\.days), [30])
        XCTAssertEqual(rec?.extensions.first?.reason, "complex request, subject informed")

        // One day past the maximum: refused, naming the maximum, nothing changes.
        let tooFar = try spool.dsar(["extend", job.jobID, "--days", "33", "--reason", "more time"])
        XCTAssertNotEqual(tooFar.status, 0)
        XCTAssertFalse(tooFar.signaled)
        XCTAssertTrue(tooFar.stderr.contains("maximum"), tooFar.stderr)
        XCTAssertTrue(tooFar.stderr.contains("2027-02-20"), "names the maximum date: \(tooFar.stderr)")
        XCTAssertTrue(tooFar.stderr.contains("at most 32 more days"), tooFar.stderr)
        rec = try spool.records().first { $0.jobID == job.jobID }
        XCTAssertEqual(rec?.deadline, "2027-01-19T09:00:00Z")
        XCTAssertEqual(rec?.extensions.count, 1)

        // Far beyond: refused too.
        let wayOff = try spool.dsar(["extend", job.jobID, "--days", "365", "--reason", "more time"])
        XCTAssertNotEqual(wayOff.status, 0)
        XCTAssertTrue(wayOff.stderr.contains("maximum"), wayOff.stderr)

        // Exactly up to the maximum is allowed.
        let toMax = try spool.dsar(["extend", job.jobID, "--days", "32", "--reason", "still complex"])
        XCTAssertEqual(toMax.status, 0, toMax.stderr)
        rec = try spool.records().first { $0.jobID == job.jobID }
        XCTAssertEqual(rec?.deadline, "2027-02-20T09:00:00Z")
        XCTAssertEqual(rec?.extensions.map(\.days), [30, 32])
        let none = try spool.dsar(["extend", job.jobID, "--days", "1", "--reason", "one more"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("at most 0 more days"), none.stderr)

        // The extension is in the job's timeline.
        let events = try spool.dsar(["events", job.jobID])
        XCTAssertEqual(events.stdout.components(separatedBy: "deadline.extended").count - 1, 2, events.stdout)
    }

    func testExtendUnderCCPAIsLimitedTo45FurtherDays() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let job = try openJob(spool, requestID: "CCPA-1", receivedAt: "2026-11-20T09:00:00Z", regulation: "ccpa")
        XCTAssertEqual(job.deadline, "2027-01-04T09:00:00Z", "CCPA: 45 days")
        let tooFar = try spool.dsar(["extend", job.jobID, "--days", "46", "--reason", "complex"])
        XCTAssertNotEqual(tooFar.status, 0)
        XCTAssertTrue(tooFar.stderr.contains("maximum 2027-02-18"), tooFar.stderr)
        XCTAssertTrue(tooFar.stderr.contains("CCPA"), tooFar.stderr)
        let ok = try spool.dsar(["extend", job.jobID, "--days", "45", "--reason", "complex"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try spool.records().first?.deadline, "2027-02-18T09:00:00Z")
    }

    func testStatusMarksEveryOpenJobPastItsDeadlineOverdueUntilItIsClosed() throws {
        let spool = try TempSpool()
        try spool.initialize()
        // An old request that finished (but nobody answered the person), then an old one left open by a crash.
        try spool.drop(
            "done.json",
            #"{"request_id": "OLD-DONE", "user_id": "1", "action": "export", "received_at": "2020-01-01T00:00:00Z"}"#)
        let done = try spool.dsar(["run", "--settle", "0.1"], timeout: 30)
        XCTAssertEqual(done.status, 0, done.stderr)
        let open = try openJob(spool, requestID: "OLD-OPEN", receivedAt: "2020-01-01T00:00:00Z")
        XCTAssertEqual(open.deadline, "2020-02-01T00:00:00Z")

        let status = try spool.dsar(["status"])
        XCTAssertEqual(status.status, 0, status.stderr)
        let lines = status.stdout.split(separator: "\n").map(String.init)
        let openRow = try XCTUnwrap(lines.first { $0.contains("OLD-OPEN") }, status.stdout)
        let doneRow = try XCTUnwrap(lines.first { $0.contains("OLD-DONE") }, status.stdout)
        XCTAssertTrue(openRow.contains("OVERDUE"), openRow)
        XCTAssertTrue(openRow.contains("RUNNING"), openRow)
        XCTAssertTrue(openRow.contains("2020-02-01"), openRow)
        // COMPLETED is not answered: the case is still open, so it is overdue too.
        XCTAssertTrue(doneRow.contains("OVERDUE"), doneRow)
        XCTAssertTrue(doneRow.contains("COMPLETED"), doneRow)
        XCTAssertTrue(doneRow.contains("open"), doneRow)
        XCTAssertTrue(status.stdout.contains("2 jobs, 2 open, 2 overdue, 0 due soon"), status.stdout)

        let detail = try spool.dsar(["status", open.jobID])
        XCTAssertTrue(detail.stdout.contains("OVERDUE by"), detail.stdout)
        XCTAssertTrue(detail.stdout.contains("case:       open"), detail.stdout)

        // A finished job cannot be extended.
        let doneID = try XCTUnwrap(try spool.records().first { $0.requestID == "OLD-DONE" }?.jobID)
        let ended = try spool.dsar(["extend", doneID, "--days", "1", "--reason", "late"])
        XCTAssertNotEqual(ended.status, 0)
        XCTAssertTrue(ended.stderr.contains("already ended"), ended.stderr)

        // Closing the answered one (by its request id) ends its overdue; the other stays overdue.
        let close = try spool.dsar(["close", "OLD-DONE", "--reason", "answered"])
        XCTAssertEqual(close.status, 0, close.stderr)
        XCTAssertTrue(close.stdout.contains("after the deadline 2020-02-01T00:00:00Z"), close.stdout)
        let closed = try spool.dsar(["status"])
        let closedRow = try XCTUnwrap(closed.stdout.split(separator: "\n").first { $0.contains("OLD-DONE") })
        XCTAssertFalse(closedRow.contains("OVERDUE"), String(closedRow))
        XCTAssertTrue(closedRow.contains("closed (answered)"), String(closedRow))
        XCTAssertTrue(closed.stdout.contains("2 jobs, 1 open, 1 overdue"), closed.stdout)

        // Once the open job is finished by the next run it is still overdue: nobody answered yet.
        let rerun = try spool.dsar(["run", "--settle", "0.1"], timeout: 30)
        XCTAssertEqual(rerun.status, 0, rerun.stderr)
        let after = try spool.dsar(["status"])
        XCTAssertTrue(after.stdout.contains("2 jobs, 1 open, 1 overdue"), after.stdout)
        XCTAssertEqual(try spool.records().first { $0.requestID == "OLD-OPEN" }?.status, .completed)
        XCTAssertEqual(try spool.dsar(["close", open.jobID, "--reason", "answered"]).status, 0)
        let final = try spool.dsar(["status"])
        XCTAssertFalse(final.stdout.contains("OVERDUE"), final.stdout)
        XCTAssertTrue(final.stdout.contains("2 jobs, 0 open, 0 overdue"), final.stdout)
    }
}
