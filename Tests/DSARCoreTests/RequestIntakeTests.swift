import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Intake through the library on a real spool: the settle rule, the refusal rules, and claiming.
final class RequestIntakeTests: XCTestCase {
    func testADropIsTakenOnlyAfterTwoUnchangedLooksTheSettleTimeApart() throws {
        let s = try PipelineSpool(config: "settle_seconds: 5\n")
        var c = Processor.Configuration()
        c.settleSeconds = 2
        let p = try s.processor(c)
        try s.drop("a.json", #"{"user_id": "1042", "action": "export"}"#)
        let t0 = Date()
        let first = try p.intake(now: t0)
        XCTAssertEqual(first.claims, [])
        XCTAssertEqual(first.waiting, ["a.json"])
        XCTAssertEqual(p.settleSeconds, 2, "the configuration overrides settle_seconds")
        let early = try p.intake(now: t0.addingTimeInterval(1))
        XCTAssertEqual(early.claims, [], "1 s after the first look is not settled yet")
        XCTAssertEqual(s.list("inbox"), ["a.json"])
        let settled = try p.intake(now: t0.addingTimeInterval(2.1))
        XCTAssertEqual(settled.claims.count, 1)
        XCTAssertEqual(settled.waiting, [])
        XCTAssertEqual(s.list("inbox"), [])
    }

    func testAnUnparseableDropIsRejectedWithTheReasonUnderItsPseudonym() throws {
        let s = try PipelineSpool()
        var c = Processor.Configuration()
        c.rejectAfterSeconds = 0
        let p = try s.processor(c)
        try s.drop("alice@example.com.json", #"{"user_id": "1042", "action": "shred"}"#)
        _ = try p.intake()
        let r = try p.intake()
        XCTAssertEqual(r.claims, [])
        XCTAssertEqual(r.rejected.map(\.name), ["alice@example.com.json"])
        let reason = try XCTUnwrap(r.rejected.first?.reason)
        XCTAssertTrue(reason.contains("shred"), reason)
        XCTAssertTrue(s.list("rejected").contains("alice@example.com.json"), "\(s.list("rejected"))")
        let events = try s.entries("request.rejected")
        XCTAssertEqual(events.count, 1)
        let journaled = "\(events[0].details)"
        XCTAssertFalse(journaled.contains("alice"), "the journal names the drop by its pseudonym only: \(journaled)")
        XCTAssertTrue(journaled.contains(p.pseudonymizer.dropName("alice@example.com.json")), journaled)
        XCTAssertEqual(p.stats.rejected, 1)
    }

    func testAnUnknownIdentifierTypeIsRejectedWithASuggestion() throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        try s.drop("a.json", #"{"subject": {"emial": "alice@example.com"}, "action": "export"}"#)
        _ = try p.intake()
        let r = try p.intake()
        XCTAssertEqual(r.claims, [])
        let reason = try XCTUnwrap(r.rejected.first?.reason)
        XCTAssertTrue(reason.contains("identifier type \"emial\" is not known (did you mean \"email\"?)"), reason)
        XCTAssertTrue(reason.contains("identifier_types: [ emial ]"), reason)
    }

    func testASecondRequestWithTheSameRequestIDIsADuplicateUnlessTheFirstWasAnEndedDryRun() async throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        try s.drop("a.json", #"{"request_id": "R-1", "user_id": "1042", "action": "export"}"#)
        _ = try p.intake()
        let first = try p.intake()
        XCTAssertEqual(first.claims.count, 1)
        let jobID = first.claims[0]
        try s.drop("b.json", #"{"request_id": "R-1", "user_id": "1042", "action": "export"}"#)
        _ = try p.intake()
        let second = try p.intake()
        XCTAssertEqual(second.claims, [])
        XCTAssertEqual(
            second.rejected.first?.reason,
            "duplicate: request_id \"R-1\" was already received as job \(jobID) (PENDING); no second job was started")
        XCTAssertEqual(try s.entries("request.duplicate").count, 1)

        // A dry run that has ended does not use up its request_id.
        try s.drop("c.json", #"{"request_id": "R-2", "user_id": "2001", "action": "export", "dry_run": true}"#)
        _ = try p.intake()
        XCTAssertEqual(try p.intake().claims.count, 1)
        let finished = try await p.runPending()
        XCTAssertTrue(
            finished.contains { $0.requestID == "R-2" && $0.dryRun && $0.status == .completed },
            "\(finished.map(\.status))")
        try s.drop("d.json", #"{"request_id": "R-2", "user_id": "2001", "action": "export"}"#)
        _ = try p.intake()
        let again = try p.intake()
        XCTAssertEqual(again.claims.count, 1, "\(again.rejected)")
    }

    func testAClaimMovesTheDropIntoActiveWritesAPendingRecordAndJournalsIt() throws {
        let s = try PipelineSpool()
        let p = try s.processor()
        try s.drop("bob.json", #"{"request_id": "R-9", "email": "bob@example.com", "action": "delete"}"#)
        _ = try p.intake()
        let r = try p.intake()
        let jobID = try XCTUnwrap(r.claims.first)
        XCTAssertEqual(s.list("active"), ["\(jobID).json"])
        let rec = try JobStore(layout: s.layout).load(jobID)
        XCTAssertEqual(rec.status, .pending)
        XCTAssertEqual(rec.requestID, "R-9")
        XCTAssertEqual(rec.action, .delete)
        XCTAssertEqual(rec.identifiers.map(\.type), ["email"])
        XCTAssertFalse(s.text("jobs/\(jobID).json").contains("bob@example.com"), "the record holds pseudonyms only")
        XCTAssertEqual(try s.events(), ["job.claimed", "request.received"])
        XCTAssertEqual(try s.entries("job.claimed").first?.jobID, jobID)
    }
}
