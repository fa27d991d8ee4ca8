import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// Rejection reasons outside `rejected/<name>.reason` quote no value of the drop (red team F1) and
/// name the drop by its pseudonym without rewriting the rest of the sentence (red team F2).
final class RejectionPrivacyE2ETests: XCTestCase {
    func recorder(_ dir: String) -> String {
        """
        notify:
          - name: team
            on: [rejected]
            timeout_seconds: 10
            command: 'mkdir -p \(dir) && cat > "\(dir)/${DSAR_DROP}.json"'

        """
    }

    /// Every file of `dir` (recursively) as text.
    func texts(_ dir: String) -> [(String, String)] {
        let e = FileManager.default.enumerator(atPath: dir)
        var out: [(String, String)] = []
        while let p = e?.nextObject() as? String {
            if let t = try? String(contentsOfFile: dir + "/" + p, encoding: .utf8) { out.append((p, t)) }
        }
        return out
    }

    /// Personal data typed into every place a rejection reason used to quote: none of it reaches the
    /// journal, the JSON log, stdout or the notification; each `.reason` file still has it.
    func testRejectionReasonsQuoteNoValueOfTheDropOutsideTheReasonFile() throws {
        let s = try TempSpool()
        let got = s.base + "/got"
        try s.initialize(extraConfig: "max_request_bytes: 4096\n" + recorder(got))
        // The first one is claimed; a second one with its request_id is a duplicate.
        try s.drop("first.json", #"{"request_id": "+49 170 1234567", "action": "export", "user_id": "701"}"#)
        let first = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(first.status, 0, first.stderr)

        // (drop name, body, a value of it that must stay in its .reason file only)
        let cases: [(String, String, String)] = [
            (
                "unknown.json", #"{"email":"x@example.com","action":"export","jane.doe@example.com":1}"#,
                "jane.doe@example.com"
            ),
            (
                "lang.json", #"{"email":"y@example.com","action":"export","language":"Jane Doe, +49 170 2222222"}"#,
                "Jane Doe, +49 170 2222222"
            ),
            ("action.json", #"{"user_id":"1","action":"Erika Mustermann"}"#, "Erika Mustermann"),
            ("reg.json", #"{"user_id":"1","action":"export","regulation":"Max Power 0171"}"#, "Max Power 0171"),
            (
                "recv.json", #"{"user_id":"1","action":"export","received_at":"Hans Wurst born 1970"}"#,
                "Hans Wurst born 1970"
            ),
            ("future.json", #"{"user_id":"1","action":"export","received_at":"2999-07-04T00:00:00Z"}"#, "2999-07-04"),
            (
                "dup.json", #"{"request_id": "+49 170 1234567", "action": "export", "user_id": "702"}"#,
                "+49 170 1234567"
            ),
            ("type.json", #"{"subject": {"janedoe_ssn": "1"}, "action": "export"}"#, "janedoe_ssn"),
            ("typename.json", #"{"subject": {"Jane Roe": "1"}, "action": "export"}"#, "Jane Roe"),
            (
                "twice.json", #"{"action":"export","user_id":"1","Kim.Secret@x.org":1,"Kim.Secret@x.org":2}"#,
                "Kim.Secret@x.org"
            ),
            ("number.json", #"{"action":"export","user_id":4917099.5}"#, "4917099.5"),
            ("Lisa Smith at home.json", #"{"action":"export","user_id":"1","x":1}"#, "Lisa Smith"),
            (
                "big-bob@example.org.json",
                #"{"action":"export","user_id":"1","pad":""# + String(repeating: "a", count: 5000) + "\"}",
                "big-bob"
            ),
        ]
        for (name, body, _) in cases { try s.drop(name, body) }
        let r = try s.dsar(["run", "--settle", "0", "--reject-after", "0"])
        XCTAssertEqual(r.status, 2, r.stderr)

        let journal = texts(s.root + "/journal").filter { $0.0.hasSuffix(".jsonl") }.map(\.1).joined()
        let notified = texts(got).map(\.1).joined() + texts(s.root + "/notify").map(\.1).joined()
        let outside = [
            ("journal", journal), ("log", first.stderr + r.stderr), ("stdout", r.stdout), ("notification", notified),
        ]
        XCTAssertEqual(texts(got).count, cases.count, "one notification per rejected drop")
        XCTAssertEqual(try s.journal("request.rejected").count + s.journal("request.duplicate").count, cases.count)
        for (name, _, value) in cases {
            XCTAssertTrue(
                s.reason(name).contains(value), "\(name): the .reason file keeps the full text: \(s.reason(name))")
            for (what, text) in outside {
                XCTAssertFalse(text.contains(value), "\(name): \(what) quotes \(value)")
            }
        }
        // The redacted reasons still say what is wrong, naming the fields dsar knows.
        let reasons = try (s.journal("request.rejected") + s.journal("request.duplicate")).compactMap {
            ($0["details"] as? [String: Any])?["reason"] as? String
        }
        for expected in [
            #"unknown field <value> at line 1, column"#, #"field "language" at line 1, column"#,
            #"field "action" at line 1, column"#, #"is <value>; expected "export" or "delete""#,
            #"field "regulation""#, #"expected one of: "gdpr", "ccpa""#,
            "duplicate: request_id <value> was already received",
            "identifier type <value> is not known", "is a number other than a non-negative integer", "appears twice",
            "requests may be at most 4096 bytes",
        ] {
            XCTAssertTrue(reasons.contains { $0.contains(expected) }, "\(expected) in \(reasons)")
        }
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    /// Signature failures (signed by a key not allowed, a signature that does not match): the
    /// drop's name is in the .reason file only, the rest of the sentence stays readable.
    func testSignatureRejectionsNameTheDropByItsPseudonymOnly() throws {
        let s = try TempSpool()
        let key = s.base + "/team"
        let other = s.base + "/other"
        for k in [key, other] {
            let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", k])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try "privacy-team \(pub)\n".write(toFile: s.base + "/signers", atomically: true, encoding: .utf8)
        try s.initialize(extraConfig: "require_signed_requests: true\nrequest_signers: \(s.base)/signers\n")
        let names = ["anna.sig@example.com.json", "s.json"]
        for (name, k) in zip(names, [other, key]) {
            let local = s.base + "/" + name
            try #"{"action": "export", "user_id": "5"}"#.write(toFile: local, atomically: true, encoding: .utf8)
            let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-Y", "sign", "-f", k, "-n", "dsar-request", local])
            XCTAssertEqual(r.status, 0, r.stderr)
            if name == "s.json" {
                try #"{"action": "delete", "user_id": "5"}"#.write(toFile: local, atomically: true, encoding: .utf8)
            }
            try FileSystem.rename(local + ".sig", to: s.root + "/inbox/" + name + ".sig")
            try FileSystem.rename(local, to: s.root + "/inbox/" + name)
        }
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, r.stderr)
        let events = try s.journal("request.rejected").compactMap { $0["details"] as? [String: Any] }
        XCTAssertEqual(events.count, 2)
        let journal = texts(s.root + "/journal").map(\.1).joined()
        XCTAssertFalse(journal.contains("anna"), journal)
        XCTAssertFalse((r.stderr + r.stdout).contains("anna"), r.stderr)
        XCTAssertTrue(
            s.reason("anna.sig@example.com.json").contains("anna.sig@example.com.json.sig is by an unknown key"))
        for e in events {
            let drop = try XCTUnwrap(e["drop"] as? String)
            let reason = try XCTUnwrap(e["reason"] as? String)
            XCTAssertTrue(
                reason.hasPrefix("signature \(drop).sig is by an unknown key SHA256:")
                    || reason.hasPrefix("invalid signature \(drop).sig: "), reason)
            XCTAssertEqual(
                reason.components(separatedBy: drop).count, 2, "the name once, nothing else replaced: \(reason)")
        }
    }

    /// One-letter drop names: only the name itself is replaced by the pseudonym, the sentence
    /// (which holds those letters many times) is journaled as written.
    func testAShortDropNameReplacesOnlyTheNameInTheJournaledReason() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("c.json", #"{"email":"z@example.com","action":"export","zed":1}"#)
        try s.drop("e.json", #"{"email":"not an email","action":"export"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--reject-after", "0"])
        XCTAssertEqual(r.status, 2, r.stderr)
        let reasons = try s.journal("request.rejected").compactMap {
            ($0["details"] as? [String: Any])?["reason"] as? String
        }
        XCTAssertEqual(reasons.count, 2)
        XCTAssertTrue(
            reasons.contains {
                $0.hasPrefix("unknown field <value> at line 1, column ")
                    && $0.hasSuffix(
                        "; expected one of: request_id, action, subject, received_at, regulation, dry_run, language, email, user_id, phone, ip. Identifiers of other types go inside \"subject\""
                    )
            }, "\(reasons)")
        XCTAssertTrue(
            reasons.contains {
                $0.hasPrefix("identifier \"email\" at line 1, column ") && $0.contains("is not an email address")
            },
            "\(reasons)")
        for reason in reasons { XCTAssertFalse(reason.contains("drop-"), "nothing in \(reason) was rewritten") }
    }
}
