import DSARCore
import XCTest

final class RequestParserTests: XCTestCase {
    let parser = RequestParser()

    func parse(_ s: String) throws(RequestProblem) -> DSARRequest { try parser.parse(Array(s.utf8)) }

    func problem(_ s: String) -> RequestProblem? {
        do {
            _ = try parse(s)
            return nil
        } catch { return error }
    }

    func testMinimalShape() throws {
        let r = try parse(#"{"user_id": "12345", "action": "export"}"#)
        XCTAssertEqual(r.action, .export)
        XCTAssertEqual(r.identifiers, [Identifier(type: "user_id", value: "12345")])
        XCTAssertNil(r.requestID)
        XCTAssertEqual(r.regulation, .gdpr)
    }

    func testFullShapeNormalisesIdentifiers() throws {
        let r = try parse(
            #"{"request_id": "TICKET-4711", "action": "export", "subject": {"email": " Alice@Example.COM ", "user_id": 1042, "phone": "+44 20 7946 0000", "ip": "2001:DB8:0:0:0:0:0:1", "loyalty_card": ["A-1", "B-2"]}, "received_at": "2026-11-20T09:00:00Z", "regulation": "gdpr"}"#
        )
        XCTAssertEqual(r.requestID, "TICKET-4711")
        XCTAssertEqual(
            Set(r.identifiers),
            [
                Identifier(type: "email", value: "alice@example.com"), Identifier(type: "user_id", value: "1042"),
                Identifier(type: "phone", value: "+442079460000"), Identifier(type: "ip", value: "2001:db8::1"),
                Identifier(type: "loyalty_card", value: "A-1"), Identifier(type: "loyalty_card", value: "B-2"),
            ])
        XCTAssertEqual(r.receivedAt, Timestamp.parse("2026-11-20T09:00:00Z"))
    }

    func testUnknownFieldIsNamedWithPosition() {
        let p = problem("{\"action\": \"export\",\n \"emial\": \"a@b.c\", \"user_id\": \"1\"}")
        XCTAssertNotNil(p)
        XCTAssertTrue(p!.message.contains("\"emial\""), p!.message)
        XCTAssertTrue(p!.message.contains("line 2, column 2"), p!.message)
        XCTAssertFalse(p!.mayBeIncomplete)
    }

    func testSpecificMessages() {
        let cases: [(String, String)] = [
            (#"{"user_id": "1"}"#, "\"action\" is missing"),
            (#"{"user_id": "1", "action": "erase"}"#, "expected \"export\" or \"delete\""),
            (#"{"action": "export"}"#, "names no identifier"),
            (#"{"action": "export", "email": "not-an-address"}"#, "not an email address"),
            (#"{"action": "export", "phone": "call me"}"#, "not a phone number"),
            (#"{"action": "export", "ip": "300.1.1.1"}"#, "not an IPv4 or IPv6"),
            (#"{"action": "export", "user_id": "1", "regulation": "hipaa"}"#, "\"gdpr\", \"ccpa\""),
            (#"{"action": "export", "user_id": "1", "received_at": "yesterday"}"#, "RFC 3339"),
            (
                #"{"action": "export", "user_id": "1", "request_id": "\#(String(repeating: "x", count: 129))"}"#,
                "at most 128"
            ),
            (#"{"action": "export", "subject": {"Bad-Type": "1"}}"#, "not a valid name"),
            (#"{"action": "export", "subject": {"user_id": {"a": 1}}}"#, "string or a list"),
            (#"["export"]"#, "must be a JSON object"),
        ]
        for (input, expected) in cases {
            let p = problem(input)
            XCTAssertNotNil(p, input)
            XCTAssertTrue(p?.message.contains(expected) ?? false, "\(input) → \(p?.message ?? "accepted")")
        }
    }

    func testTruncationIsMarkedAsPossiblyIncomplete() {
        XCTAssertEqual(problem(#"{"user_id": "1", "act"#)?.mayBeIncomplete, true)
        XCTAssertEqual(problem("")?.mayBeIncomplete, true)
        XCTAssertEqual(problem(#"{"user_id": 1 "action"}"#)?.mayBeIncomplete, false)
    }

    func testInvalidUTF8IsRejected() {
        let bytes = Array(#"{"action": "export", "user_id": ""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        XCTAssertThrowsError(try parser.parse(bytes)) { e in
            XCTAssertTrue((e as! RequestProblem).message.contains("UTF-8"))
        }
    }

    func testCanonicalJSONRoundTrips() throws {
        let r = try parse(
            #"{"request_id": "T", "action": "delete", "subject": {"email": "a@b.co", "user_id": ["1", "2"]}, "dry_run": true}"#
        )
        let again = try parser.parse(JSONWriter().encode(r.json()))
        XCTAssertEqual(again, r)
    }

    /// The redacted sentence (journal, logs, notifications) keeps the field names, positions and
    /// dsar's choices and holds no value of the request; the message (the .reason file) has it.
    func testTheRedactedProblemQuotesNoValueOfTheRequest() throws {
        let cases: [(String, String, String)] = [
            (
                #"{"user_id": "1", "action": "export", "jane@x.org": 1}"#, "jane@x.org",
                "unknown field <value> at line 1, column 38; expected one of: request_id, action"
            ),
            (
                #"{"user_id": "1", "action": "Jane Doe"}"#, "Jane Doe",
                #"field "action" at line 1, column 18 is <value>; expected "export" or "delete""#
            ),
            (
                #"{"user_id": "1", "action": "export", "regulation": "Jane"}"#, "Jane",
                #"field "regulation" at line 1, column 38 is <value>; expected one of: "gdpr", "ccpa""#
            ),
            (
                #"{"user_id": "1", "action": "export", "received_at": "Jane"}"#, "Jane",
                #"field "received_at" at line 1, column 38 is <value>; expected an RFC 3339 time such as "2026-11-20T09:00:00Z""#
            ),
            (
                #"{"user_id": "1", "action": "export", "language": "Jane"}"#, "Jane",
                #"field "language" at line 1, column 38 is <value>; this spool answers in: en"#
            ),
            (
                #"{"subject": {"Jane Roe": "1"}, "action": "export"}"#, "Jane Roe",
                "identifier type <value> at line 1, column 14 is not a valid name"
            ),
            (
                #"{"user_id": 49170.5, "action": "export"}"#, "49170",
                #"identifier "user_id" at line 1, column 2 is a number other than a non-negative integer"#
            ),
            (
                #"{"action": "export", "jane@x.org": 1, "jane@x.org": 2}"#, "jane@x.org",
                "the JSON is malformed: member <value> appears twice"
            ),
        ]
        for (input, value, redacted) in cases {
            let p = try XCTUnwrap(problem(input), input)
            XCTAssertTrue(p.message.contains(value), p.message)
            XCTAssertFalse(p.redacted.contains(value), p.redacted)
            XCTAssertFalse("\(p)".contains(value), "interpolating the problem gives the redacted sentence")
            XCTAssertTrue(
                p.redacted.hasPrefix(redacted) || p.redacted.contains(redacted), "\(p.redacted) ~ \(redacted)")
        }
        // A non-string value is named by its kind, which is not the drop's data.
        XCTAssertEqual(
            problem(#"{"user_id": "1", "action": 7}"#)?.redacted,
            #"field "action" at line 1, column 18 is a number; expected "export" or "delete""#)
    }

    func testTheScrubberKeepsOnlyQuotesDsarWrites() {
        XCTAssertEqual(
            RequestProblem.scrub(#"member "Jane" after "action", "subject.email" and "subject.shoe_size" or "open"#),
            #"member <value> after "action", "subject.email" and <value> or <value>"#)
        XCTAssertEqual(RequestProblem.scrub("no quotes at all"), "no quotes at all")
    }
}
