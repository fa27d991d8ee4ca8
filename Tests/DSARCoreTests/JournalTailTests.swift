import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// The journal head is read from the segment's tail only; entries larger than the read window still work.
final class JournalTailTests: XCTestCase {
    func testHeadOfLongSegmentsAndHugeEntries() throws {
        let s = try TempSpool()
        let j = try Journal(dir: s.base + "/journal", signer: nil)
        for k in 0..<300 { try j.append(AuditEvent.outboxExpired(job: "t", retentionDays: k)) }
        try j.append(
            AuditEvent.witnessFailed(
                signedSeq: 1, reason: String(repeating: "x", count: 200_000), pending: 0, durationMs: 0, retry: "-"))
        try j.append(AuditEvent.journalRecovered(tornBytes: 0, tornFile: nil))
        try j.append(
            AuditEvent.witnessFailed(
                signedSeq: 2, reason: String(repeating: "y", count: 300_000), pending: 0, durationMs: 0, retry: "-"))
        let head = try XCTUnwrap(try j.head())
        XCTAssertEqual(head.seq, 303)
        let all = try j.entries()
        XCTAssertEqual(all.count, 303)
        XCTAssertEqual(all.last?.entry.hash, head.hash)
        let summary = try JournalVerifier.verify(dir: s.base + "/journal") { _, _ in nil }
        XCTAssertEqual(summary.entries, 303)
    }
}
