import DSARTestSupport
import Foundation
import XCTest

@testable import DSARCore

/// The JSON-lines fast path must never disagree with the full parser: on thousands of generated
/// lines (valid, mutated, with escapes, duplicates, Unicode, deep nesting), whenever the extractor
/// answers, `JSONParser` accepts the line and `LogConnector.lookup` gives the same value for every path.
final class JSONFieldExtractorTests: XCTestCase {
    typealias SplitMix = SplitMix64

    let paths = ["user_id", "user.email", "a.b.c", "email", "n"]

    func randomString(_ rng: inout SplitMix) -> String {
        let pieces = [
            "alice@example.com", "1042", "x", "é", "e\u{301}", "\\\"", "\\\\", "\\/", "\\n", "\\u0041",
            "\\ud83d\\ude00", "日本", "a b", "\\t", "user", "email",
        ]
        return (0..<Int.random(in: 0...3, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
    }

    func randomKey(_ rng: inout SplitMix) -> String {
        ["user_id", "user", "email", "a", "b", "c", "n", "msg", "é", "e\u{301}", "us\\u0065r", "ts", ""].randomElement(
            using: &rng)!
    }

    func randomValue(_ rng: inout SplitMix, depth: Int) -> String {
        switch Int.random(in: 0..<(depth > 4 ? 5 : 8), using: &rng) {
        case 0: return "\"\(randomString(&rng))\""
        case 1: return ["0", "-1", "1042", "3.25", "1e5", "-0.5E-3", "10420"].randomElement(using: &rng)!
        case 2: return ["true", "false", "null"].randomElement(using: &rng)!
        case 3: return "\"\(["alice@example.com", "1042", "ALICE@EXAMPLE.COM"].randomElement(using: &rng)!)\""
        case 4: return "\"\(randomString(&rng))\""
        case 5, 6: return randomObject(&rng, depth: depth + 1)
        default:
            return "["
                + (0..<Int.random(in: 0...3, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) }.joined(
                    separator: ",") + "]"
        }
    }

    func randomObject(_ rng: inout SplitMix, depth: Int) -> String {
        let n = Int.random(in: 0...5, using: &rng)
        let ws = [" ", "", "\t", " \r "]
        return "{"
            + (0..<n).map { _ in
                "\(ws.randomElement(using: &rng)!)\"\(randomKey(&rng))\"\(ws.randomElement(using: &rng)!):\(ws.randomElement(using: &rng)!)\(randomValue(&rng, depth: depth))"
            }.joined(separator: ",") + ws.randomElement(using: &rng)! + "}"
    }

    func mutate(_ s: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        guard !s.isEmpty else { return s }
        var b = s
        let k = Int.random(in: 0..<b.count, using: &rng)
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: b.remove(at: k)
        case 1: b.insert([0x2C, 0x7D, 0x22, 0x5C, 0x00, 0xFF, 0xC0, 0xED, 0x0A].randomElement(using: &rng)!, at: k)
        case 2: b = Array(b[..<k])
        case 3: b[k] = [0x20, 0x22, 0x3A, 0x5B, 0x30, 0x80].randomElement(using: &rng)!
        case 4: b += Array(" x".utf8)
        default: b.insert(contentsOf: Array("\"n\":1,".utf8), at: 1)
        }
        return b
    }

    func check(
        _ line: [UInt8], _ fx: JSONFieldExtractor, _ scratch: inout JSONFieldExtractor.Scratch, answered: inout Int
    ) {
        let said = line.withUnsafeBytes { fx.extract($0, &scratch) }
        guard said else { return }
        answered += 1
        let text = String(decoding: line, as: UTF8.self)
        guard let v = try? JSONParser.parse(line) else {
            XCTFail("the extractor accepted what JSONParser rejects: \(text)")
            return
        }
        for (k, path) in paths.enumerated() {
            let expected = LogConnector.lookup(v, path: path)
            let got: [UInt8]? = {
                if case .bytes(let r) = scratch.values[k] { return Array(line[r]) } else { return nil }
            }()
            XCTAssertEqual(got, expected, "path \(path) in \(text)")
        }
    }

    func testAgreesWithTheFullParserOnGeneratedLines() throws {
        let fx = try XCTUnwrap(JSONFieldExtractor(paths: paths))
        var scratch = JSONFieldExtractor.Scratch()
        var rng = SplitMix(state: 20_261_129)
        var answered = 0
        var validSimple = 0
        var answeredSimple = 0
        for _ in 0..<20_000 {
            let line = Array(randomObject(&rng, depth: 0).utf8)
            check(line, fx, &scratch, answered: &answered)
            if !line.contains(0x5C) && !line.contains(where: { $0 >= 0x80 }), (try? JSONParser.parse(line)) != nil {
                validSimple += 1
                if line.withUnsafeBytes({ fx.extract($0, &scratch) }) { answeredSimple += 1 }
            }
            for _ in 0..<3 { check(mutate(line, &rng), fx, &scratch, answered: &answered) }
        }
        XCTAssertGreaterThan(answered, 10_000)
        XCTAssertEqual(answeredSimple, validSimple, "every valid line without escapes or non-ASCII is answered")
    }

    func testHandPickedCases() throws {
        let fx = try XCTUnwrap(JSONFieldExtractor(paths: paths))
        var scratch = JSONFieldExtractor.Scratch()
        func values(_ s: String) -> [String?]? {
            let b = Array(s.utf8)
            guard b.withUnsafeBytes({ fx.extract($0, &scratch) }) else { return nil }
            return scratch.values.map {
                if case .bytes(let r) = $0 { String(decoding: b[r], as: UTF8.self) } else { nil }
            }
        }
        XCTAssertEqual(
            values(#"{"user_id": 1042, "user": {"email": "a@b.c"}, "a": {"b": {"c": -1.5e3}}}"#),
            ["1042", "a@b.c", "-1.5e3", nil, nil])
        XCTAssertEqual(values(#"{"email": "x\"y"}"#), nil, "an escaped wanted value goes to the full parser")
        XCTAssertEqual(values(#"{"msg": "say \"hi\" \u00e9 \ud83d\ude00", "n": 7}"#), [nil, nil, nil, nil, "7"])
        XCTAssertEqual(values(#"{"n": 1, "n": 2}"#), nil, "duplicate member")
        XCTAssertEqual(values(#"{"n": 01}"#), nil)
        XCTAssertEqual(values(#"{"n": 1,}"#), nil)
        XCTAssertEqual(values(#"{"n": "\udc00"}"#), nil, "a lone low surrogate")
        XCTAssertEqual(values("{\"n\": \"\u{1}\"}"), nil, "a raw control character")
        XCTAssertEqual(
            values(#"{"user": "a@b.c", "email": true, "a": [{"b": {"c": 1}}]}"#), [nil, nil, nil, nil, nil],
            "arrays are not descended, objects and literals are no value")
        XCTAssertEqual(
            values(String(repeating: "{\"a\":", count: 60) + "1" + String(repeating: "}", count: 60)), nil,
            "deep nesting")
        XCTAssertNil(JSONFieldExtractor(paths: ["usér"]), "non-ASCII paths are left to the full parser")
    }
}
