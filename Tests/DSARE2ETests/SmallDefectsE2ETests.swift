import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Small command-line defects from the red-team pass (issue 13), each through the real binary.
final class SmallDefectsE2ETests: XCTestCase {
    /// A drop whose name is not valid UTF-8 is rejected under a safe name, its name shown escaped.
    func testNonUTF8FileNameIsRejectedWithTheNameEscaped() throws {
        let s = try TempSpool()
        try s.initialize()
        let raw = Array((s.root + "/inbox/caf").utf8) + [0xFF] + Array(".json".utf8) + [0]
        let fd = raw.withUnsafeBufferPointer { p in
            p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_EXCL, 0o644) }
        }
        XCTAssertGreaterThanOrEqual(fd, 0)
        _ = #"{"action": "export", "user_id": "5"}"#.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        // An upload in progress with such a name is left alone, as any *.part.
        let part = Array((s.root + "/inbox/x").utf8) + [0xFE] + Array(".json.part".utf8) + [0]
        close(
            part.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT, 0o644) }
            })

        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, "\(r.stdout)\n\(r.stderr)")
        XCTAssertTrue(
            r.stdout.contains("0 claimed, 0 finished (0 completed, 0 partial, 0 failed), 1 rejected, 0 waiting"),
            r.stdout)
        XCTAssertEqual(try FileSystem.list(s.root + "/inbox").count, 1, "only the .part upload is left")
        let stored = s.list("rejected").filter { !$0.hasSuffix(".reason") }
        XCTAssertEqual(stored.count, 1, "\(s.list("rejected"))")
        let name = try XCTUnwrap(stored.first)
        XCTAssertTrue(name.hasPrefix("drop-") && name.hasSuffix(".json"), name)
        XCTAssertEqual(s.text("rejected/" + name), #"{"action": "export", "user_id": "5"}"#)
        let reason = s.reason(name)
        XCTAssertTrue(reason.contains(#"caf\xff.json"#), reason)
        XCTAssertTrue(reason.contains("not valid UTF-8"), reason)
        XCTAssertTrue(r.stderr.contains("request rejected"), r.stderr)
        let journal = s.allFiles("journal").map { s.text($0) }.joined()
        XCTAssertTrue(journal.contains("\"type\":\"request.rejected\""), "\(s.allFiles("journal")) \(r.stderr)")
    }

    /// `received_at` more than a day ahead is refused: that job would never become overdue.
    func testReceivedAtInTheFutureIsRejected() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("future.json", #"{"action": "export", "user_id": "7", "received_at": "2099-01-01T00:00:00Z"}"#)
        let soon = Timestamp.format(Date().addingTimeInterval(3600))
        try s.drop("skew.json", #"{"request_id": "S", "action": "export", "user_id": "8", "received_at": "\#(soon)"}"#)
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, "\(r.stdout)\n\(r.stderr)")
        XCTAssertTrue(s.reason("future.json").contains("more than a day after now"), s.reason("future.json"))
        XCTAssertTrue(s.reason("future.json").contains("received_at"), s.reason("future.json"))
        XCTAssertEqual(try s.record(requestID: "S")?.status, .completed, "an hour of clock skew is accepted")
        let sub = try s.dsar([
            "submit", "--user-id", "9", "--action", "export", "--received-at", "2099-01-01T00:00:00Z",
        ])
        XCTAssertEqual(sub.status, 65, sub.stderr)
        XCTAssertTrue(sub.stderr.contains("more than a day after now"), sub.stderr)
    }

    /// Only `dsar init` creates a spool; every other command exits 66 naming it.
    func testCommandsOnAMissingSpoolExit66AndCreateNothing() throws {
        let s = try TempSpool()
        for args in [
            ["run", "--settle", "0"], ["watch"], ["status"], ["status", "--json"],
            ["submit", "--user-id", "1", "--action", "export"],
        ] {
            let r = try s.dsar(args, timeout: 30)
            XCTAssertEqual(r.status, 66, "\(args): \(r.stdout) \(r.stderr)")
            XCTAssertTrue(
                r.stderr.contains("no spool at \(s.root)") && r.stderr.contains("dsar init"), "\(args): \(r.stderr)")
            XCTAssertNil(s.kind(""), "\(args) created the spool")
        }
        // Without --spool: the default ./spool in the working directory is not created either.
        let cwd = s.base + "/cwd"
        try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
        let r = try runCommand("/bin/sh", ["-c", "cd \(cwd) && DSAR_SPOOL= exec \(dsarBinary) run --settle 0"])
        XCTAssertEqual(r.status, 66, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cwd + "/spool"))
        XCTAssertEqual(try s.dsar(["init"]).status, 0)
        XCTAssertEqual(try s.dsar(["status"]).status, 0)
    }

    func keygen(_ path: String) throws {
        let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// `submit --sign KEY` writes X.json.sig (ssh-keygen verifies it) before X.json; without it a
    /// spool requiring signatures is refused; an unsigned drop is logged as waiting for its .sig.
    func testSubmitSignsAndUnsignedDropsSayWhatTheyWaitFor() throws {
        let s = try TempSpool()
        let key = s.base + "/team"
        try keygen(key)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try "privacy-team namespaces=\"dsar-request\" \(pub)\n".write(
            toFile: s.base + "/signers", atomically: true, encoding: .utf8)
        try s.initialize(extraConfig: "require_signed_requests: true\nrequest_signers: \(s.base)/signers\n")

        let unsigned = try s.dsar(["submit", "--user-id", "1", "--action", "export"])
        XCTAssertEqual(unsigned.status, 64, unsigned.stderr)
        XCTAssertTrue(unsigned.stderr.contains("--sign"), unsigned.stderr)
        XCTAssertEqual(s.list("inbox"), [], "nothing written")

        let signed = try s.dsar([
            "submit", "--user-id", "2", "--action", "export", "--request-id", "SIG-1", "--sign", key,
        ])
        XCTAssertEqual(signed.status, 0, signed.stderr)
        let path = signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = (path as NSString).lastPathComponent
        XCTAssertEqual(Set(s.list("inbox")), [name, name + ".sig"])
        // The oracle: ssh-keygen accepts the signature for the principal and namespace.
        let verify = try runCommand(
            "/bin/sh",
            [
                "-c",
                "/usr/bin/ssh-keygen -Y verify -f \(s.base)/signers -I privacy-team -n dsar-request -s \(path).sig < \(path)",
            ])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        // An unsigned drop: the log and the summary name what it waits for.
        try s.drop("plain.json", #"{"request_id": "U-1", "action": "export", "user_id": "3"}"#)
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 0, "\(r.stdout)\n\(r.stderr)")
        XCTAssertEqual(try s.record(requestID: "SIG-1")?.signer, "privacy-team")
        let drop = try Pseudonymizer.load(s.layout).dropName("plain.json")
        XCTAssertTrue(r.stdout.contains("waiting  \(drop) for its .sig"), r.stdout)
        XCTAssertFalse(r.stdout.contains("plain.json"), "the summary names drops by pseudonym: \(r.stdout)")
        XCTAssertTrue(r.stderr.contains("waiting for its .sig"), r.stderr)
        XCTAssertFalse(r.stderr.contains("plain.json"), "the log names drops by pseudonym: \(r.stderr)")
    }

    /// `status --json` prints numbers as JSON numbers.
    func testStatusJSONPrintsNumbersAsNumbers() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("a.json", #"{"request_id": "N-1", "action": "export", "user_id": "42"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        let rec = try XCTUnwrap(try s.statusJSON().first)
        let connectors = try XCTUnwrap(rec["connectors"] as? [[String: Any]])
        let details = try XCTUnwrap(connectors.first?["details"] as? [String: Any], "\(connectors)")
        let bytes = try XCTUnwrap(details["bytes_scanned"])
        XCTAssertTrue(bytes is NSNumber && !(bytes is String), "bytes_scanned is \(type(of: bytes)): \(bytes)")
        XCTAssertGreaterThan((bytes as? NSNumber)?.intValue ?? 0, 0)
        XCTAssertTrue(rec["records"] == nil || rec["records"] is NSNumber)
        // One job in detail, too.
        let one = try s.dsar(["status", "--json", try XCTUnwrap(rec["jobID"] as? String ?? rec["job_id"] as? String)])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(
            one.stdout.range(of: #""bytes_scanned"\s*:\s*[0-9]+"#, options: .regularExpression) != nil, one.stdout)
    }
}
