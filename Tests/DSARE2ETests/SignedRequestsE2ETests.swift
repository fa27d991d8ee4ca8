import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// `require_signed_requests: true`: X.json is taken only with X.json.sig, an SSHSIG made by
/// `ssh-keygen -Y sign -n dsar-request` with a key the allowed_signers file accepts.
final class SignedRequestsE2ETests: XCTestCase {
    func keygen(_ path: String) throws {
        let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func sign(_ file: String, key: String, namespace: String = "dsar-request") throws {
        let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-Y", "sign", "-f", key, "-n", namespace, file])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testOnlyRequestsSignedByAnAllowedKeyAreTaken() throws {
        let s = try TempSpool()
        let key = s.base + "/team"
        let other = s.base + "/other"
        let expired = s.base + "/expired"
        try keygen(key)
        try keygen(other)
        try keygen(expired)
        let pub = { (p: String) in
            try String(contentsOfFile: p + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let signers = """
            privacy-team namespaces="dsar-request" \(try pub(key))
            old-laptop valid-before="20200101" \(try pub(expired))

            """
        try signers.write(toFile: s.base + "/signers", atomically: true, encoding: .utf8)
        try s.initialize(extraConfig: "require_signed_requests: true\nrequest_signers: \(s.base)/signers\n")
        func make(
            _ name: String, _ body: String, key k: String?, namespace: String = "dsar-request", tamper: Bool = false
        ) throws {
            let local = s.base + "/" + name
            try body.write(toFile: local, atomically: true, encoding: .utf8)
            if let k { try sign(local, key: k, namespace: namespace) }
            if tamper { try (body + " ").write(toFile: local, atomically: true, encoding: .utf8) }
            if k != nil { try FileSystem.rename(local + ".sig", to: s.root + "/inbox/" + name + ".sig") }
            try FileSystem.rename(local, to: s.root + "/inbox/" + name)
        }
        try make("good.json", #"{"request_id": "G", "action": "export", "user_id": "1"}"#, key: key)
        try make("unsigned.json", #"{"request_id": "U", "action": "export", "user_id": "2"}"#, key: nil)
        try make("tampered.json", #"{"request_id": "T", "action": "export", "user_id": "3"}"#, key: key, tamper: true)
        try make(
            "namespace.json", #"{"request_id": "N", "action": "export", "user_id": "4"}"#, key: key, namespace: "file")
        try make("unknown.json", #"{"request_id": "K", "action": "export", "user_id": "5"}"#, key: other)
        try make("expired.json", #"{"request_id": "E", "action": "export", "user_id": "6"}"#, key: expired)
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        let recs = try s.records()
        XCTAssertEqual(recs.map(\.requestID), ["G"])
        XCTAssertEqual(recs.first?.signer, "privacy-team")
        XCTAssertEqual(recs.first?.status, .completed)
        // The unsigned one waits (its signature may still be uploading).
        XCTAssertEqual(s.list("inbox"), ["unsigned.json"])
        func reason(_ n: String) -> String { s.text("rejected/\(n).reason") }
        XCTAssertTrue(reason("tampered.json").contains("invalid signature"), reason("tampered.json"))
        XCTAssertTrue(reason("namespace.json").contains("namespace"), reason("namespace.json"))
        XCTAssertTrue(reason("unknown.json").contains("unknown key"), reason("unknown.json"))
        XCTAssertTrue(reason("expired.json").contains("not accepted"), reason("expired.json"))
        for n in ["tampered", "namespace", "unknown", "expired"] {
            XCTAssertEqual(s.kind("rejected/\(n).json.sig"), .regular, "the signature is set aside with its request")
        }
        // The signer is in the journal, with no personal data.
        let received = try Journal(layout: s.layout, signer: nil).entries().first {
            $0.entry.type == "request.received"
        }
        XCTAssertEqual(received?.entry.details["signer"], .string("privacy-team"))
        // An unsigned drop older than --reject-after is rejected naming the missing file.
        age(s.root + "/inbox/unsigned.json", secondsAgo: 700)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 2)
        XCTAssertTrue(reason("unsigned.json").contains("unsigned.json.sig is missing"), reason("unsigned.json"))
        // The signature arriving after the request: the pickup waits for both files.
        try make("late.json", #"{"request_id": "L", "action": "export", "user_id": "7"}"#, key: nil)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        XCTAssertEqual(s.list("inbox"), ["late.json"])
        try sign(s.root + "/inbox/late.json", key: key)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        XCTAssertEqual(try s.records().compactMap(\.requestID).sorted(), ["G", "L"])
        XCTAssertEqual(s.list("inbox"), [])
        XCTAssertEqual(s.list("active"), [], "the signature leaves with its request")
    }

    func testASignatureWithoutItsRequestIsSetAsideAfterRejectAfterSeconds() throws {
        let s = try TempSpool()
        let key = s.base + "/team"
        try keygen(key)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try "privacy-team \(pub)\n".write(toFile: s.base + "/signers", atomically: true, encoding: .utf8)
        try s.initialize(
            extraConfig: "require_signed_requests: true\nrequest_signers: \(s.base)/signers\nreject_after_seconds: 60\n"
        )
        // The request was never uploaded (or the server stopped between its two writes): only the .sig.
        let name = "bob@example.com.json"
        let local = s.base + "/" + name
        try #"{"action": "export", "user_id": "7"}"#.write(toFile: local, atomically: true, encoding: .utf8)
        try sign(local, key: key)
        try FileSystem.rename(local + ".sig", to: s.root + "/inbox/" + name + ".sig")
        // A young one may still get its request: it stays.
        let young = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(young.status, 0, young.stdout + young.stderr)
        XCTAssertEqual(s.kind("inbox/" + name + ".sig"), .regular)
        // Older than reject_after_seconds: into rejected/ with the reason, journaled by pseudonym only.
        let old = Date().addingTimeInterval(-120)
        try FileManager.default.setAttributes(
            [.modificationDate: old], ofItemAtPath: s.root + "/inbox/" + name + ".sig")
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, r.stdout + r.stderr)
        XCTAssertNil(s.kind("inbox/" + name + ".sig"))
        XCTAssertEqual(s.kind("rejected/" + name + ".sig"), .regular)
        let reason = s.text("rejected/\(name).sig.reason")
        XCTAssertTrue(reason.contains("a signature without its request"), reason)
        let events = try s.journal("request.rejected")
        XCTAssertEqual(events.count, 1)
        let detail = try XCTUnwrap(events.first?["details"] as? [String: Any])
        XCTAssertTrue((detail["reason"] as? String ?? "").contains("a signature without its request"), "\(detail)")
        let journal = try s.journalEntries().map { "\($0)" }.joined()
        XCTAssertFalse(journal.contains("bob"), journal)
        XCTAssertFalse((r.stdout + r.stderr).contains("bob"), r.stderr)
        XCTAssertEqual(try s.records().count, 0)
    }

    func testANewSpoolRequiresSignedRequests() throws {
        let s = try TempSpool()
        XCTAssertEqual(try s.dsar(["init"]).status, 0)
        XCTAssertTrue(s.text("config.yaml").contains("\nrequire_signed_requests: true"))
        // Without a signers file, dsar run says what to do.
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 78)
        XCTAssertTrue(r.stderr.contains("request signers file"), r.stderr)
    }
}
