import DSARCore
import XCTest

final class JSONParserTests: XCTestCase {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    func testParsesNestedValuesKeepingOrderAndNumberText() throws {
        let v = try parse(#"{"b": [1, 2.50, -3e2, true, null], "a": {"x": "y\n\u00e9\ud83d\ude00"}}"#)
        guard case .object(let m) = v else { return XCTFail("not an object") }
        XCTAssertEqual(m.map(\.key), ["b", "a"])
        XCTAssertEqual(v["b"], .array([.number("1"), .number("2.50"), .number("-3e2"), .bool(true), .null]))
        XCTAssertEqual(v["a"]?["x"], .string("y\né😀"))
    }

    func testReportsLineAndColumn() {
        XCTAssertThrowsError(try parse("{\n  \"a\": 1,\n  \"b\" 2\n}")) { e in
            let e = e as! JSONParseError
            XCTAssertEqual(e.position, JSONPosition(line: 3, column: 7))
            XCTAssertFalse(e.truncated)
        }
    }

    func testTruncatedInputIsFlagged() {
        for s in [#"{"a": "#, #"{"a": "abc"#, "[1, 2", #"{"a": tr"#, "{", #"{"a": "\u00"#] {
            XCTAssertThrowsError(try parse(s), s) { e in XCTAssertTrue((e as! JSONParseError).truncated, s) }
        }
        // A multi-byte character cut off at the end of the file also counts as truncated.
        XCTAssertThrowsError(try JSONParser.parse(Array(#"{"a": "caf"#.utf8) + [0xC3])) { e in
            XCTAssertTrue((e as! JSONParseError).truncated)
        }
    }

    func testRejectsInvalidUTF8DuplicateKeysAndTrailingText() {
        for bytes: [UInt8] in [
            Array(#"{"a": ""#.utf8) + [0xFF] + Array(#""}"#.utf8),
            Array(#"{"a": ""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8),  // overlong
            Array(#"{"a": ""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8),  // surrogate
            Array(#"{"a": 1, "a": 2}"#.utf8), Array("{} x".utf8), Array("[01]".utf8), Array(#"{"a": 'x'}"#.utf8),
        ] {
            XCTAssertThrowsError(try JSONParser.parse(bytes)) { e in XCTAssertFalse((e as! JSONParseError).truncated) }
        }
    }

    func testWriterRoundTripsAndSortsKeys() throws {
        let v = try parse(#"{"z": "a\"b\\c\u0001", "a": [1, {"k": null}]}"#)
        let compact = JSONWriter(sortKeys: true).string(v)
        XCTAssertEqual(compact, #"{"a":[1,{"k":null}],"z":"a\"b\\c\u0001"}"#)
        XCTAssertEqual(try JSONParser.parse(Array(JSONWriter(indent: 2).string(v).utf8)), v)
    }
}
