import DSARCore
import Foundation
import XCTest

/// The fake clock's parsing and the e-mail masking of the `rejected` notification's reason.
final class CaseLifecycleTests: XCTestCase {
    func testDSARNowIsRFC3339OrAnErrorNamingTheVariable() throws {
        XCTAssertEqual(
            try DSARClock.override(["DSAR_NOW": "2027-01-10T00:00:00Z"]), Timestamp.parse("2027-01-10T00:00:00Z"))
        XCTAssertNil(try DSARClock.override([:]))
        XCTAssertNil(try DSARClock.override(["DSAR_NOW": ""]), "empty means unset")
        XCTAssertThrowsError(try DSARClock.override(["DSAR_NOW": "2027-01-10"])) { error in
            let e = error as? DSARError
            XCTAssertEqual(e?.code, .usage)
            XCTAssertTrue(e?.message.contains("DSAR_NOW=\"2027-01-10\" is not an RFC 3339 time") ?? false, "\(error)")
        }
    }

    func testTheRejectedReasonHasEveryEmailAddressMasked() {
        XCTAssertEqual(
            Notifications.maskingEmails(#"duplicate: request_id "alice@example.com" was already received"#),
            #"duplicate: request_id "<email>" was already received"#)
        XCTAssertEqual(Notifications.maskingEmails("see alice%40example.com, bob@x.org."), "see <email>, <email>")
        XCTAssertEqual(
            Notifications.maskingEmails("field \"regulation\" at 1:50 must be gdpr or ccpa"),
            "field \"regulation\" at 1:50 must be gdpr or ccpa", "text without addresses is unchanged")
        XCTAssertEqual(Notifications.maskingEmails("Grüße: a@b"), "Grüße: <email>")
    }

    func testDaysOverdueIsWholeDaysAndAtLeastOne() throws {
        let deadline = try XCTUnwrap(Timestamp.parse("2027-01-10T00:00:00Z"))
        XCTAssertEqual(Deadline.daysOverdue(deadline, now: deadline), 0)
        XCTAssertEqual(Deadline.daysOverdue(deadline, now: deadline.addingTimeInterval(3600)), 1)
        XCTAssertEqual(Deadline.daysOverdue(deadline, now: deadline.addingTimeInterval(2 * 86400 + 60)), 2)
        XCTAssertEqual(Deadline.daysLeft(deadline, now: deadline.addingTimeInterval(-3 * 86400)), 3)
    }
}
