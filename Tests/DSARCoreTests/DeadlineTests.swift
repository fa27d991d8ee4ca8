import DSARCore
import XCTest

final class DeadlineTests: XCTestCase {
    func d(_ s: String) -> Date { Timestamp.parse(s)! }

    func testGDPROneCalendarMonthClampedToMonthEnd() {
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2026-11-20T09:00:00Z"), regulation: .gdpr), d("2026-12-20T09:00:00Z"))
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2026-01-31T10:00:00Z"), regulation: .gdpr), d("2026-02-28T10:00:00Z"))
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2028-01-31T10:00:00Z"), regulation: .gdpr), d("2028-02-29T10:00:00Z"))
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2026-12-15T00:00:00Z"), regulation: .gdpr), d("2027-01-15T00:00:00Z"))
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2026-03-31T00:00:00Z"), regulation: .gdpr), d("2026-04-30T00:00:00Z"))
    }

    func testCCPA45Days() {
        XCTAssertEqual(
            Deadline.initial(receivedAt: d("2026-11-20T09:00:00Z"), regulation: .ccpa), d("2027-01-04T09:00:00Z"))
    }

    func testMaximumExtension() {
        XCTAssertEqual(
            Deadline.maximum(initial: d("2026-12-20T09:00:00Z"), regulation: .gdpr), d("2027-02-20T09:00:00Z"))
        XCTAssertEqual(
            Deadline.maximum(initial: d("2026-12-31T09:00:00Z"), regulation: .gdpr), d("2027-02-28T09:00:00Z"))
        XCTAssertEqual(
            Deadline.maximum(initial: d("2027-01-04T09:00:00Z"), regulation: .ccpa), d("2027-02-18T09:00:00Z"))
    }

    func testTimestampParsing() {
        XCTAssertEqual(d("2026-11-20T10:00:00+01:00"), d("2026-11-20T09:00:00Z"))
        XCTAssertEqual(Timestamp.format(d("2026-11-20T09:00:00.750Z")), "2026-11-20T09:00:00Z")
        for bad in ["2026-11-20", "2026-02-30T00:00:00Z", "2026-11-20T25:00:00Z", "2026-11-20T09:00:00", "x"] {
            XCTAssertNil(Timestamp.parse(bad), bad)
        }
    }

    func testUUIDv7IsTimeOrderedAndValid() {
        let a = UUIDv7.make(now: d("2026-11-20T09:00:00Z"))
        let b = UUIDv7.make(now: d("2026-11-20T09:00:01Z"))
        XCTAssertTrue(UUIDv7.isValid(a))
        XCTAssertLessThan(a, b)
        XCTAssertEqual(Array(a)[14], "7")
        XCTAssertFalse(UUIDv7.isValid("../../etc/passwd"))
    }

    func testUUIDv7MadeInTheSameMillisecondStillSortInCreationOrder() {
        let now = Date()
        let ids = (0..<5000).map { _ in UUIDv7.make(now: now) }
        XCTAssertEqual(ids, ids.sorted(), "creation order is sort order")
        XCTAssertEqual(Set(ids).count, ids.count)
        XCTAssertTrue(ids.allSatisfy { UUIDv7.isValid($0) && Array($0)[14] == "7" && "89ab".contains(Array($0)[19]) })
        // A clock that steps back does not break the order either.
        let earlier = UUIDv7.make(now: now.addingTimeInterval(-5))
        XCTAssertGreaterThan(earlier, ids.last!)
    }
}
