import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Free-text recall and precision through the real binary: e-mail addresses with any RFC 5322
/// atext and internationalised domains are found (and redacted) without near misses; a numeric
/// identifier scoped to a context is found only there, and a delete redacts exactly the capture.
final class RecallE2ETests: XCTestCase {

    func lines(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
    }

    func connector(_ rec: JobRecord, _ name: String) -> Int? { rec.connectors.first { $0.name == name }?.records }

    func testEmailRecallWithApostrophesAndIDNAndNoNearMisses() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        let log = [
            "GET /unsubscribe?email=o'brien%40x.org HTTP/1.1 200",
            "From: <O'Brien@X.org> to='o'brien@x.org'",
            "joe.o'brien@x.org.evil xo'brien@x.org o'brien@x.org.evil o'brien@x.org_old",
            "GET /u/jose@xn--bcher-kva.example/profile?next=%2Fhome 200",
            "mail to “jose@bücher.example”.",
            "jose@bücher.example.evil.org and xjose@xn--bcher-kva.example and jose@xn--bcher-kva.examples",
            "",
        ]
        try writeFile(dir + "/data/web.log", log.joined(separator: "\n"))
        try writeFile(
            dir + "/web.yaml", "name: web\ntype: log\npaths: [ data/web.log ]\nmatch: [ email ]\nerase: redact\n")
        try s.initialize()
        try s.drop("o.json", #"{"request_id": "E-O", "action": "export", "subject": {"email": "o'brien@x.org"}}"#)
        try s.drop("j.json", #"{"request_id": "E-J", "action": "export", "subject": {"email": "jose@bücher.example"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let o = try XCTUnwrap(try s.record(requestID: "E-O"))
        let j = try XCTUnwrap(try s.record(requestID: "E-J"))
        XCTAssertEqual(o.status, .completed, o.error ?? "")
        XCTAssertEqual(connector(o, "web"), 2, "lines 1 and 2; never the near misses of line 3")
        XCTAssertEqual(connector(j, "web"), 2, "punycode in line 4 and UTF-8 in line 5; never line 6")

        try s.drop("do.json", #"{"request_id": "D-O", "action": "delete", "subject": {"email": "o'brien@x.org"}}"#)
        try s.drop(
            "dj.json", #"{"request_id": "D-J", "action": "delete", "subject": {"email": "jose@xn--bcher-kva.example"}}"#
        )
        let d = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(d.status, 0, d.stdout + d.stderr)
        for rid in ["D-O", "D-J"] {
            let rec = try XCTUnwrap(try s.record(requestID: rid))
            XCTAssertEqual(rec.status, .completed, "\(rid): \(rec.error ?? "")")
        }
        // Exactly the addresses are redacted (the URL-encoded form, both spellings of the domain);
        // quotes, paths and the near misses stay byte for byte.
        XCTAssertEqual(
            try lines(dir + "/data/web.log"),
            [
                "GET /unsubscribe?email=[REDACTED] HTTP/1.1 200",
                "From: <[REDACTED]> to='[REDACTED]'",
                log[2],
                "GET /u/[REDACTED]/profile?next=%2Fhome 200",
                "mail to “[REDACTED]”.",
                log[5],
                "",
            ])
    }

    func makeUserLog(_ s: TempSpool) throws -> (dir: String, log: [String]) {
        let dir = s.base + "/connectors"
        let log = [
            "203.0.113.9 - - \"GET /users/1042 HTTP/1.1\" 200 bytes 1042",
            "203.0.113.9 - - \"GET /static/app.js HTTP/1.1\" 200 bytes 1042",
            "203.0.113.9 - - \"GET /users/10420 HTTP/1.1\" 200 bytes 77",
            "203.0.113.9 - - \"POST /login?email=alice%40example.com HTTP/1.1\" 302 bytes 1042",
            "",
        ]
        try writeFile(dir + "/data/access.log", log.joined(separator: "\n"))
        try writeFile(
            dir + "/access.yaml",
            """
            name: access
            type: log
            paths: [ data/access.log ]
            match: [ email, { type: user_id, pattern: '/users/([0-9]+)' } ]
            erase: redact

            """)
        return (dir, log)
    }

    func testNumericIdentifierIsFoundOnlyInItsContextAndOnlyTheCaptureIsRedacted() throws {
        let s = try TempSpool()
        let (dir, log) = try makeUserLog(s)
        try s.initialize()
        try s.drop("e.json", #"{"request_id": "U-E", "action": "export", "subject": {"user_id": "1042"}}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let e = try XCTUnwrap(try s.record(requestID: "U-E"))
        XCTAssertEqual(e.status, .completed, e.error ?? "")
        XCTAssertEqual(
            connector(e, "access"), 1, "GET /users/1042 only; `bytes 1042` and /users/10420 are not user 1042")

        try s.drop(
            "d.json",
            #"{"request_id": "U-D", "action": "delete", "subject": {"user_id": "1042", "email": "alice@example.com"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let d = try XCTUnwrap(try s.record(requestID: "U-D"))
        XCTAssertEqual(d.status, .completed, d.error ?? "")
        // Only the capture is redacted; the byte counts that equal 1042 stay, also on matched lines.
        XCTAssertEqual(
            try lines(dir + "/data/access.log"),
            [
                "203.0.113.9 - - \"GET /users/[REDACTED] HTTP/1.1\" 200 bytes 1042",
                log[1],
                log[2],
                "203.0.113.9 - - \"POST /login?email=[REDACTED] HTTP/1.1\" 302 bytes 1042",
                "",
            ])
        let manifest =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(d.jobID)/manifest.json")))
            as! [String: Any]
        let erasure = try XCTUnwrap(manifest["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["remaining"] as? Int, 0)
    }

    func testCheckWarnsAboutBareNumericTypesAndRejectsAPatternWithoutGroup() throws {
        let s = try TempSpool()
        let (dir, _) = try makeUserLog(s)
        try s.initialize()
        // Scoped: no warning.
        let ok = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertFalse(ok.stderr.contains("warning"), ok.stderr)
        // Bare user_id (listed, or every type because `match:` is absent): a warning, exit 0.
        try writeFile(
            dir + "/bare.yaml", "name: bare\ntype: log\npaths: [ data/access.log ]\nmatch: [ email, user_id ]\n")
        try writeFile(dir + "/all.yaml", "name: all\ntype: log\npaths: [ data/access.log ]\n")
        let warned = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(warned.status, 0, warned.stderr)
        XCTAssertTrue(warned.stdout.contains("3 connectors in \(dir): OK"), warned.stdout)
        XCTAssertTrue(
            warned.stderr.contains("\(dir)/bare.yaml:4: warning: match: user_id is matched as a bare number"),
            warned.stderr)
        XCTAssertTrue(warned.stderr.contains("\(dir)/all.yaml:2: warning: match: no `match:` list"), warned.stderr)
        XCTAssertFalse(warned.stderr.contains("access.yaml"), warned.stderr)
        // A pattern without a capture group is an error.
        try writeFile(
            dir + "/nogroup.yaml",
            "name: nogroup\ntype: log\npaths: [ data/access.log ]\nmatch:\n  - email\n  - { type: user_id, pattern: '/users/[0-9]+' }\n"
        )
        let bad = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(bad.status, 78, bad.stdout + bad.stderr)
        XCTAssertTrue(bad.stderr.contains("\(dir)/nogroup.yaml:6: match[1].pattern: has no capture group"), bad.stderr)
    }

    func testWholeMatchPatternsAndCapturesOnLinesThatAreNotUTF8() throws {
        let s = try TempSpool()
        let dir = s.base + "/connectors"
        // Line 1 is not valid UTF-8 (Latin-1 "é"): offsets of the capture must still be byte offsets.
        let log: [[UInt8]] = [
            Array("caf".utf8) + [0xE9] + Array(" card=LC-123456 GET /users/1042 bytes 1042".utf8),
            Array("card=LC-1234567 GET /users/10420 bytes 1042".utf8),
            [],
        ]
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        XCTAssertTrue(
            FileManager.default.createFile(
                atPath: dir + "/data/shop.log", contents: Data(Array(log.joined(separator: [0x0A])))))
        try writeFile(
            dir + "/shop.yaml",
            """
            name: shop
            type: log
            paths: [ data/shop.log ]
            match: [ { type: user_id, pattern: '/users/([0-9]+)' } ]
            patterns: { loyalty_card: 'LC-[0-9]{6}' }

            """)
        try s.initialize(extraConfig: "identifier_types: [ loyalty_card ]\n")
        let check = try s.dsar(["connectors", "check", "--connectors", dir])
        XCTAssertEqual(check.status, 0, check.stderr)
        XCTAssertFalse(check.stderr.contains("warning"), check.stderr)
        try s.drop(
            "d.json",
            #"{"request_id": "S-D", "action": "delete", "subject": {"user_id": "1042", "loyalty_card": "LC-123456"}}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let d = try XCTUnwrap(try s.record(requestID: "S-D"))
        XCTAssertEqual(d.status, .completed, d.error ?? "")
        let after = Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/data/shop.log")))
        let expected: [UInt8] =
            Array("caf".utf8) + [0xE9] + Array(" card=[REDACTED] GET /users/[REDACTED] bytes 1042\n".utf8) + log[1] + [
                0x0A
            ]
        XCTAssertEqual(String(decoding: after, as: UTF8.self), String(decoding: expected, as: UTF8.self))
        XCTAssertEqual(after, expected)
    }
}
