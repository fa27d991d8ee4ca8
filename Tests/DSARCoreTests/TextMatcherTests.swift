import DSARCore
import XCTest

final class TextMatcherTests: XCTestCase {
    let alice = [
        Identifier(type: "email", value: "alice@example.com"), Identifier(type: "user_id", value: "1042"),
        Identifier(type: "phone", value: "+442079460000"), Identifier(type: "ip", value: "203.0.113.7"),
        Identifier(type: "ip", value: "2001:db8::1"),
    ]
    let bob = [Identifier(type: "email", value: "bob@example.org"), Identifier(type: "user_id", value: "7")]

    func matches(_ text: String, types: Set<String>? = nil) -> [(String, String, Int)] {
        let table = IdentifierTable(jobs: [alice, bob])
        let m = TextMatcher(table: table, types: types)
        var out: [TextMatch] = []
        Array(text.utf8).withUnsafeBytes { m.scan($0, into: &out) }
        let bytes = Array(text.utf8)
        return out.flatMap { hit in
            table.hit(hit.entry).jobs.map { (table.hit(hit.entry).identifier.type, String(decoding: bytes[hit.range], as: UTF8.self), $0) }
        }
    }

    func found(_ text: String, types: Set<String>? = nil) -> [String] { matches(text, types: types).map { "\($0.0)=\($0.1)" } }

    func testExactTokensOnly() {
        XCTAssertEqual(found("login alice@example.com ok"), ["email=alice@example.com"])
        XCTAssertEqual(found("malice@example.com alice@example.com.evil.org xalice@example.com"), [])
        XCTAssertEqual(found("user 1042 logged in"), ["user_id=1042"])
        XCTAssertEqual(found("user 10420 and 21042 and 1042a and a1042"), [])
        XCTAssertEqual(found("uid=1042&x=7"), ["user_id=1042", "user_id=7"])
        XCTAssertEqual(found("order #1042."), ["user_id=1042"])
    }

    func testEmailCaseAndURLEncoding() {
        XCTAssertEqual(found("From: <ALICE@Example.COM>"), ["email=ALICE@Example.COM"])
        XCTAssertEqual(found("GET /unsubscribe?email=alice%40example.com HTTP/1.1"), ["email=alice%40example.com"])
        XCTAssertEqual(found("mailto:alice@example.com"), ["email=alice@example.com"])
        XCTAssertEqual(found("write to alice@example.com."), ["email=alice@example.com"])
        XCTAssertEqual(found("GET /unsubscribe?email=malice%40example.com"), [])
    }

    func testIPsAndPhones() {
        XCTAssertEqual(found("203.0.113.7 - - [20/Nov/2026] \"GET /\""), ["ip=203.0.113.7"])
        XCTAssertEqual(found("203.0.113.70 and 1203.0.113.7"), [])
        XCTAssertEqual(found("client [2001:DB8:0::1] connected"), ["ip=2001:DB8:0::1"])
        XCTAssertEqual(found("call +44 20 7946 0000 now"), ["phone=+44 20 7946 0000"])
        XCTAssertEqual(found("call 0044 20 7946 0000"), ["phone=0044 20 7946 0000"])
        XCTAssertEqual(found("call +44 20 7946 00001"), [])
    }

    func testTypeFilterAndJobRouting() {
        XCTAssertEqual(found("alice@example.com 1042", types: ["email"]), ["email=alice@example.com"])
        let m = matches("bob@example.org and alice@example.com")
        XCTAssertEqual(m.map(\.2).sorted(), [0, 1])
    }

    func testSharedIdentifierRoutesToBothJobs() {
        let table = IdentifierTable(jobs: [[Identifier(type: "user_id", value: "5")], [Identifier(type: "user_id", value: "5")]])
        var out: [TextMatch] = []
        Array("id 5".utf8).withUnsafeBytes { TextMatcher(table: table, types: nil).scan($0, into: &out) }
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(table.hit(out[0].entry).jobs, [0, 1])
    }

    func testFieldMatchingNormalises() {
        let table = IdentifierTable(jobs: [alice])
        var scratch: [UInt8] = []
        func field(_ type: String, _ v: String) -> Int {
            Array(v.utf8).withUnsafeBytes { table.matchField(type: type, $0, scratch: &scratch).count }
        }
        XCTAssertEqual(field("email", "  Alice@EXAMPLE.com "), 1)
        XCTAssertEqual(field("email", "malice@example.com"), 0)
        XCTAssertEqual(field("phone", "+44 (20) 7946-0000"), 1)
        XCTAssertEqual(field("user_id", "1042"), 1)
        XCTAssertEqual(field("user_id", "10420"), 0)
        XCTAssertEqual(field("ip", "2001:0db8:0000::0001"), 1)
    }
}
