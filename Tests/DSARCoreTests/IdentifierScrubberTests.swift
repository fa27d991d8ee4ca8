import DSARCore
import XCTest

final class IdentifierScrubberTests: XCTestCase {
    let ids = [
        Identifier(type: "email", value: "alice+dsar@example.com"), Identifier(type: "user_id", value: "42"),
        Identifier(type: "email", value: "al@example.com"),
    ]

    func testEveryFormIsReplacedCaseInsensitively() {
        let s = IdentifierScrubber(ids)
        XCTAssertEqual(s.scrub("no such customer: ALICE+DSAR@Example.COM"), "no such customer: <email>")
        XCTAssertEqual(s.scrub("GET /u?e=alice%2Bdsar%40example.com"), "GET /u?e=<email>")
        XCTAssertEqual(s.scrub("q=alice+dsar%40example.com"), "q=<email>")
        // The longest value wins where one contains another.
        XCTAssertEqual(s.scrub("to al@example.com and alice+dsar@example.com"), "to <email> and <email>")
    }

    func testAlphanumericValuesOnlyAsWholeRuns() {
        let s = IdentifierScrubber(ids)
        XCTAssertEqual(s.scrub("user 42 failed"), "user <user_id> failed")
        XCTAssertEqual(s.scrub("id=42,"), "id=<user_id>,")
        XCTAssertEqual(s.scrub("1042 and 421 and 4.2"), "1042 and 421 and 4.2")
        XCTAssertEqual(s.scrub("customer42 not found"), "customer<user_id> not found")
        let card = IdentifierScrubber([Identifier(type: "loyalty_card", value: "ab12")])
        XCTAssertEqual(card.scrub("card ab12, xab12, ab123"), "card <loyalty_card>, xab12, ab123")
        XCTAssertEqual(Processor.scrub("user 42, 1042", ids), "user <user_id>, 1042")
    }

    func testManyIdentifiersAndNoneAtAll() {
        let many = (0..<5000).map { Identifier(type: "email", value: "user\($0)@example.com") }
        let s = IdentifierScrubber(many)
        XCTAssertEqual(s.scrub("a user4999@example.com b user0@example.com c"), "a <email> b <email> c")
        XCTAssertEqual(IdentifierScrubber([]).scrub("alice@example.com"), "alice@example.com")
        XCTAssertEqual(s.scrub("ünïcödé stays"), "ünïcödé stays")
    }

    func testInboxEscapesInvalidUTF8() {
        XCTAssertEqual(Inbox.escape(Array("caf".utf8) + [0xFF] + Array(".json".utf8)), #"caf\xff.json"#)
        XCTAssertEqual(Inbox.escape(Array("café".utf8)), "café")
        XCTAssertEqual(Inbox.escape([0x0A, 0x5C]), #"\x0a\x5c"#)
    }

    func testReceivedAtMoreThanADayAheadIsRefused() throws {
        var p = RequestParser()
        p.now = { Date(timeIntervalSince1970: 1_800_000_000) }
        let soon = Timestamp.format(Date(timeIntervalSince1970: 1_800_000_000 + 3600))
        let late = Timestamp.format(Date(timeIntervalSince1970: 1_800_000_000 + 2 * 86400))
        XCTAssertNoThrow(try p.parse(Array(#"{"action": "export", "user_id": "1", "received_at": "\#(soon)"}"#.utf8)))
        XCTAssertThrowsError(
            try p.parse(Array(#"{"action": "export", "user_id": "1", "received_at": "\#(late)"}"#.utf8))
        ) { e in
            XCTAssertTrue("\(e)".contains("more than a day after now"), "\(e)")
        }
    }
}
