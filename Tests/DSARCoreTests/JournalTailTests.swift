import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// The journal head is read from the segment's tail only; entries larger than the read window still work.
final class JournalTailTests: XCTestCase {
    func testHeadOfLongSegmentsAndHugeEntries() throws {
        let s = try TempSpool()
        let j = try Journal(dir: s.base + "/journal", signer: nil)
        for k in 0..<300 { try j.append(AuditEvent("t", details: [JSONMember(key: "k", value: .int(k))])) }
        try j.append(AuditEvent("big", details: [JSONMember(key: "blob", value: .string(String(repeating: "x", count: 200_000)))]))
        try j.append(AuditEvent("after", details: []))
        try j.append(AuditEvent("big2", details: [JSONMember(key: "blob", value: .string(String(repeating: "y", count: 300_000)))]))
        let head = try XCTUnwrap(try j.head())
        XCTAssertEqual(head.seq, 303)
        let all = try j.entries()
        XCTAssertEqual(all.count, 303)
        XCTAssertEqual(all.last?.entry.hash, head.hash)
        let summary = try JournalVerifier.verify(dir: s.base + "/journal") { _, _ in nil }
        XCTAssertEqual(summary.entries, 303)
    }
}
