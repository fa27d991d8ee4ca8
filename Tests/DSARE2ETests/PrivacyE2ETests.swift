import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// No personal data in the journal, job records, manifests or the log: every identifier of every
/// test subject (and its upper-case and URL-encoded forms) is searched for after intake, rejection
/// (a drop named after the e-mail), duplicate, failure (a plugin printing the e-mail on stderr),
/// partial and success, with both log formats.
final class PrivacyE2ETests: XCTestCase {
    /// Every form of a value that must not appear.
    func forms(_ v: String) -> [String] {
        var out = [v, v.uppercased(), v.replacingOccurrences(of: "@", with: "%40")]
        out.append(v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? v)
        return Array(Set(out))
    }

    /// Runs `dsar ARGS` with `--log-format text` (TempSpool.dsar uses json).
    func dsarText(_ s: TempSpool, _ args: [String]) throws -> CommandResult {
        try runCommand(dsarBinary, args + ["--spool", s.root, "--log-format", "text"], timeout: 120)
    }

    func testNoIdentifierInJournalRecordsManifestsOrLogs() throws {
        let s = try TempSpool()
        try s.initialize()
        let alice = "alice.privacy@example.com"
        let aliceID = "510042"
        let bob = "bob.privacy@example.org"
        let carol = "carol.dup@example.net"
        let dave = "dave.fails@example.com"
        let erin = "erin.partial@example.com"
        let erinID = "730071"
        let frank = "frank.text@example.com"
        let secrets = [alice, aliceID, bob, carol, dave, erin, erinID, frank]

        // Sources: a CSV with the subjects, and plugins that echo the e-mail on stderr.
        let ok = s.base + "/conn-ok"
        let partial = s.base + "/conn-partial"
        let failing = s.base + "/conn-fail"
        let csv = "email,user_id,name\n\(alice),\(aliceID),Alice\n\(carol),1,Carol\n\(erin),\(erinID),Erin\n"
        let chatty =
            "#!/bin/sh\nin=$(cat)\nemail=$(printf '%s' \"$in\" | sed -n 's/.*\"value\":\"\\([^\"]*@[^\"]*\\)\".*/\\1/p')\necho \"looking up $email\" >&2\n"
        let broken = chatty + "echo \"no such customer: $email\" >&2\nexit 1\n"
        for dir in [ok, partial] {
            try writeFile(dir + "/data/people.csv", csv)
            try writeFile(
                dir + "/people.yaml",
                "name: people\ntype: csv\npaths: [ data/people.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        }
        try writeFile(ok + "/crm.sh", chatty + "exit 0\n", mode: 0o755)
        try writeFile(ok + "/crm.yaml", "name: crm\ntype: exec\ncommand: [ ./crm.sh ]\n")
        try writeFile(partial + "/crm.sh", broken, mode: 0o755)
        try writeFile(partial + "/crm.yaml", "name: crm\ntype: exec\ncommand: [ ./crm.sh ]\n")
        try writeFile(failing + "/crm.sh", broken, mode: 0o755)
        try writeFile(failing + "/crm.yaml", "name: crm\ntype: exec\ncommand: [ ./crm.sh ]\n")

        var logs: [String] = []
        // 1 (json log): success, a rejected drop named after the e-mail, a duplicate named after one.
        try s.drop(
            "\(alice).json",
            #"{"request_id": "P-1", "action": "export", "email": "\#(alice)", "user_id": "\#(aliceID)"}"#)
        try s.drop("\(bob).json", #"{"action": "export", "email": "\#(bob)""#)
        try s.drop("c1.json", #"{"request_id": "P-3", "action": "export", "email": "\#(carol)"}"#)
        age(s.root + "/inbox/c1.json", secondsAgo: 60)
        try s.drop("\(carol).json", #"{"request_id": "P-3", "action": "export", "email": "\#(carol)"}"#)
        let r1 = try s.dsar(["run", "--settle", "0", "--reject-after", "0", "--connectors", ok])
        XCTAssertEqual(r1.status, 2, "\(r1.stdout)\n\(r1.stderr)")
        logs += [r1.stderr]
        XCTAssertEqual(try s.record(requestID: "P-1")?.status, .completed)
        XCTAssertEqual(try s.record(requestID: "P-3")?.status, .completed)
        // The drops' names stay in rejected/ (deletable, the operator's), their pseudonyms in the reason.
        XCTAssertEqual(s.kind("rejected/\(bob).json"), .regular)
        XCTAssertEqual(s.kind("rejected/\(carol).json"), .regular)
        let reason = s.reason("\(bob).json")
        let drop = try XCTUnwrap(
            reason.range(of: #"drop-[0-9a-f]{24}"#, options: .regularExpression).map { String(reason[$0]) }, reason)
        XCTAssertTrue(r1.stderr.contains(drop), "the log names the rejected drop by its pseudonym: \(r1.stderr)")
        XCTAssertTrue(r1.stderr.contains("plugin stderr"), "the plugin's stderr is logged (scrubbed): \(r1.stderr)")
        XCTAssertTrue(r1.stderr.contains("looking up <email>"), r1.stderr)

        // 2 (json log): PARTIAL (the plugin fails printing the e-mail; the CSV is searched).
        try s.drop(
            "e.json", #"{"request_id": "P-5", "action": "export", "email": "\#(erin)", "user_id": "\#(erinID)"}"#)
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", partial])
        XCTAssertEqual(r2.status, 1, "\(r2.stdout)\n\(r2.stderr)")
        logs += [r2.stderr]
        XCTAssertEqual(try s.record(requestID: "P-5")?.status, .partial)
        XCTAssertTrue(r2.stderr.contains("connector failed"), r2.stderr)

        // 3 (text log): FAILED (the only source fails), and a rejected drop named after an e-mail.
        try s.drop("d.json", #"{"request_id": "P-4", "action": "export", "email": "\#(dave)"}"#)
        try s.drop("\(frank).json", "{not json")
        let r3 = try dsarText(s, ["run", "--settle", "0", "--reject-after", "0", "--connectors", failing])
        XCTAssertEqual(r3.status, 1, "\(r3.stdout)\n\(r3.stderr)")
        logs += [r3.stderr]
        XCTAssertEqual(try s.record(requestID: "P-4")?.status, .failed)
        XCTAssertTrue(r3.stderr.contains("no such customer: <email>"), r3.stderr)
        XCTAssertTrue(r3.stderr.contains("request rejected"), r3.stderr)

        // 4 (text log): intake of a plain success on the partial sources' CSV only.
        try s.drop("\(alice).again.json", #"{"request_id": "P-6", "action": "export", "email": "\#(alice)"}"#)
        let r4 = try dsarText(s, ["run", "--settle", "0", "--connectors", ok])
        XCTAssertEqual(r4.status, 0, "\(r4.stdout)\n\(r4.stderr)")
        logs += [r4.stderr]
        XCTAssertTrue(r4.stderr.contains("request claimed"), r4.stderr)

        // Everything that must be free of personal data.
        var places: [(String, String)] = []
        // (allFiles gives spool-relative paths.)
        for f in s.allFiles("journal") + s.allFiles("jobs") { places.append((f, s.text(f))) }
        for f in s.allFiles("outbox") where f.hasSuffix("manifest.json") { places.append((f, s.text(f))) }
        XCTAssertGreaterThanOrEqual(
            places.filter { $0.0.hasPrefix("jobs/") && $0.1.contains("\"subject\"") }.count, 5, "the records are read")
        XCTAssertTrue(
            places.contains {
                $0.0.hasSuffix(".jsonl") && $0.1.contains("request.duplicate") && $0.1.contains("connector.failed")
            }, "the journal is read")
        for (k, l) in logs.enumerated() { places.append(("log of run \(k + 1)", l)) }
        XCTAssertTrue(
            places.contains { $0.0.hasPrefix("journal/") && $0.0.contains("checkpoint") },
            "a checkpoint is searched: \(places.map(\.0))")
        XCTAssertGreaterThanOrEqual(places.filter { $0.0.hasSuffix("manifest.json") }.count, 3)
        var found: [String] = []
        for (place, text) in places {
            for v in secrets {
                for f in forms(v) where text.contains(f) { found.append("\(f) in \(place)") }
            }
        }
        XCTAssertEqual(found, [], found.joined(separator: "\n"))
    }

    /// A torn journal tail (moved aside as `.torn`) is searched too: the run after a crash journals
    /// no name and logs none.
    func testTornTailAndRecoveryCarryNoIdentifier() throws {
        let s = try TempSpool()
        try s.initialize()
        let email = "tina.torn@example.com"
        try s.drop("\(email).json", #"{"request_id": "T-1", "action": "export", "email": "\#(email)"}"#)
        let crashed = try s.dsar(["run", "--settle", "0"], env: ["DSAR_CRASH_AT": "claim.recorded"])
        XCTAssertTrue(crashed.signaled, "\(crashed.status) \(crashed.stderr)")
        // A torn last line, as a crash in the middle of a write leaves it.
        let seg = try XCTUnwrap(
            s.allFiles("journal").filter { $0.hasSuffix(".jsonl") }.sorted().last, "\(s.allFiles("journal"))")
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: s.root + "/" + seg))
        fh.seekToEndOfFile()
        fh.write(Data(#"{"seq":99,"type":"job.cla"#.utf8))
        try fh.close()
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 0, "\(r.stdout)\n\(r.stderr)")
        XCTAssertEqual(try s.record(requestID: "T-1")?.status, .completed)
        var texts = [crashed.stderr, r.stderr]
        for f in s.allFiles("journal") + s.allFiles("jobs") { texts.append(s.text(f)) }
        XCTAssertTrue(texts.contains { $0.contains("torn tail") }, "the .torn file is read")
        XCTAssertTrue(s.allFiles("journal").contains { $0.contains("torn") }, "\(s.allFiles("journal"))")
        for t in texts { for f in forms(email) { XCTAssertFalse(t.contains(f), "\(f) in \(t.prefix(400))") } }
    }
}
