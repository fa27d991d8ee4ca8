import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar deliver`: the data subject's passphrase-encrypted copy of an export, through the real
/// binary, opened by the real `age` (the passphrase typed on a pseudo-terminal).
final class DeliverE2ETests: XCTestCase {
    let email = "alice@example.com"

    /// `good/`: one CSV source holding the subject; `broken/`: that source plus one that cannot be
    /// read (a directory where the CSV should be), so an export is PARTIAL; `dead/`: only a plugin
    /// that always fails, so an export is FAILED.
    func setUp(_ s: TempSpool, extraConfig: String = "") throws -> (good: String, broken: String, dead: String) {
        let base = s.base
        let csv = "email,user_id,name\n\(email),1042,Alice\nbob@example.org,7,Bob\n"
        let good = base + "/good"
        let broken = base + "/broken"
        let dead = base + "/dead"
        for dir in [good, broken] {
            try writeFile(dir + "/data/customers.csv", csv)
            try writeFile(
                dir + "/customers.yaml",
                "name: customers\ntype: csv\npaths: [ data/customers.csv ]\ncolumns: { email: email, user_id: user_id }\n"
            )
        }
        try FileManager.default.createDirectory(atPath: broken + "/data/cards.csv", withIntermediateDirectories: true)
        try writeFile(
            broken + "/cards.yaml", "name: cards\ntype: csv\npaths: [ data/cards.csv ]\ncolumns: { email: email }\n")
        try writeFile(dead + "/crm.sh", "#!/bin/sh\necho 'crm unreachable' >&2\nexit 1\n", mode: 0o755)
        try writeFile(dead + "/crm.yaml", "name: crm\ntype: exec\ncommand: [ ./crm.sh ]\n")
        try s.initialize(extraConfig: extraConfig)
        return (good, broken, dead)
    }

    /// Drops one request and runs it with `connectors`; returns its job record.
    func runJob(
        _ s: TempSpool, _ rid: String, action: String = "export", extra: String = "", connectors: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> JobRecord {
        try s.drop(
            "\(rid).json", #"{"request_id": "\#(rid)", "action": "\#(action)", "email": "\#(email)"\#(extra)}"#)
        _ = try s.dsar(["run", "--settle", "0", "--connectors", connectors])
        return try XCTUnwrap(try s.record(requestID: rid, file: file, line: line), file: file, line: line)
    }

    func deliver(_ s: TempSpool, _ job: String, _ more: [String] = []) throws -> CommandResult {
        try s.dsar(["deliver", job, "--identity", s.teamKeys + "/age.key"] + more, timeout: 300)
    }

    /// The passphrase of a delivery's stdout (`passphrase: xxxx-…`).
    func passphrase(_ stdout: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let l = try XCTUnwrap(
            stdout.split(separator: "\n").first { $0.hasPrefix("passphrase: ") }, stdout, file: file, line: line)
        return String(l.dropFirst("passphrase: ".count))
    }

    func tool(_ name: String) throws -> String {
        guard let p = which(name) else { throw XCTSkip("this test uses the real `\(name)`; it is not installed") }
        return p
    }

    func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    /// `close_on_deliver: true`: the delivery answers the case (closed, no longer overdue); by request id.
    func testCloseOnDeliverClosesTheCaseAsAnswered() throws {
        let s = try TempSpool()
        let dirs = try setUp(s, extraConfig: "close_on_deliver: true\n")
        let rec = try runJob(s, "TICKET-4711", connectors: dirs.good)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        XCTAssertNil(rec.closure)
        let d = try deliver(s, "TICKET-4711")
        XCTAssertEqual(d.status, 0, d.stderr)
        XCTAssertTrue(d.stdout.contains("closed as answered"), d.stdout)
        let after = try XCTUnwrap(try s.record(requestID: "TICKET-4711"))
        XCTAssertEqual(after.closure?.reason, .answered)
        XCTAssertEqual(after.deliveries?.count, 1)
        let events = try s.dsar(["audit", "verify"])
        XCTAssertEqual(events.status, 0, events.stderr)
        XCTAssertEqual(try s.journal("job.delivered").count, 1)
        XCTAssertEqual(try s.journal("job.closed").count, 1)
        // A second delivery (--force) does not close it again.
        let again = try deliver(s, rec.jobID, ["--force"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertFalse(again.stdout.contains("closed as answered"), again.stdout)
        XCTAssertEqual(try XCTUnwrap(try s.record(requestID: "TICKET-4711")).closure, after.closure)
    }

    func testDeliveredCopyOpensWithAgeAndThePassphraseIsNowhereInTheSpool() throws {
        _ = try tool("age")
        _ = try tool("python3")
        let s = try TempSpool()
        let dirs = try setUp(s)
        let rec = try runJob(s, "R-1", connectors: dirs.good)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let id = rec.jobID
        let entry = s.root + "/outbox/\(id)"
        let copy = entry + "/subject.zip.age"

        // A unique prefix of the job id names it.
        let r = try deliver(s, String(id.dropLast(6)))
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("age -d -o subject.zip subject.zip.age"), r.stdout)
        XCTAssertTrue(r.stdout.contains(copy), r.stdout)
        let pass = try passphrase(r.stdout)
        XCTAssertNotNil(
            pass.wholeMatch(of: /[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){6}/), "passphrase format: \(pass)")
        XCTAssertGreaterThanOrEqual(PassphraseGenerator.entropyBits, 128)

        // The real age opens it with the passphrase typed at its prompt; the ZIP inside is the very
        // ZIP of bundle.zip.age as the team's key opens it.
        let out = s.base + "/subject.zip"
        let opened = try runWithPassphrase("age", ["-d", "-o", out, copy], passphrase: pass)
        XCTAssertEqual(opened.status, 0, opened.terminal)
        let team = try runCommand(
            try tool("age"),
            ["-d", "-i", s.teamKeys + "/age.key", "-o", s.base + "/team.zip", entry + "/bundle.zip.age"])
        XCTAssertEqual(team.status, 0, team.stderr)
        XCTAssertFalse(bytes(out).isEmpty)
        XCTAssertEqual(bytes(out), bytes(s.base + "/team.zip"), "the subject's ZIP is the bundle's ZIP")
        let list = try runCommand(try tool("unzip"), ["-l", out])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("manifest") || list.stdout.contains("README"), list.stdout)
        // The header is a lone scrypt stanza at the default work factor.
        let header = String(decoding: bytes(copy).prefix(200), as: UTF8.self).split(separator: "\n")
        XCTAssertGreaterThan(header.count, 3)
        XCTAssertEqual(header[1].split(separator: " ").first, "->")
        XCTAssertEqual(header[1].split(separator: " ")[1], "scrypt")
        XCTAssertEqual(header[1].split(separator: " ").last, "18")
        XCTAssertTrue(header[3].hasPrefix("--- "))
        let wrong = try runWithPassphrase("age", ["-d", "-o", s.base + "/x.zip", copy], passphrase: pass + "x")
        XCTAssertNotEqual(wrong.status, 0)

        // 0640, like the bundle; no temp file left beside it.
        XCTAssertEqual(try XCTUnwrap(try FileSystem.status(copy)).mode & 0o777, 0o640)
        XCTAssertEqual(
            s.list("outbox/\(id)").sorted(),
            ["bundle.zip.age", "manifest.json", "manifest.json.sig", "subject.zip.age"])

        // Job record and journal: file, SHA-256 and size; never the passphrase.
        let sha = try XCTUnwrap(
            try runCommand(try tool("sha256sum"), [copy]).stdout.split(separator: " ").first.map(String.init))
        let after = try XCTUnwrap(try s.records().first { $0.jobID == id })
        XCTAssertEqual(after.deliveries?.count, 1)
        XCTAssertEqual(after.deliveries?.first?.file, "outbox/\(id)/subject.zip.age")
        XCTAssertEqual(after.deliveries?.first?.sha256, sha)
        XCTAssertEqual(after.deliveries?.first?.bytes, Int64(bytes(copy).count))
        XCTAssertEqual(after.status, .completed)
        let events = try s.journal("job.delivered")
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?["job_id"] as? String, id)
        let details = try XCTUnwrap(events.first?["details"] as? [String: Any])
        XCTAssertEqual(details["sha256"] as? String, sha)
        XCTAssertEqual(details["bytes"] as? Int, bytes(copy).count)
        XCTAssertEqual(details["delivery"] as? Int, 1)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)

        // dsar verify accepts the entry and names the subject copy as the recorded delivery.
        let v = try s.dsar(["verify", entry, "-i", s.teamKeys + "/age.key"])
        XCTAssertEqual(v.status, 0, v.stderr)
        XCTAssertTrue(v.stdout.contains("subject copy: subject.zip.age"), v.stdout)
        XCTAssertTrue(v.stdout.contains("matches delivery 1"), v.stdout)

        // A second delivery needs --force; --force makes a new file and passphrase, the old one is void.
        let again = try deliver(s, id)
        XCTAssertEqual(again.status, 64, again.stdout + again.stderr)
        XCTAssertTrue(again.stderr.contains("delivered already") && again.stderr.contains("--force"), again.stderr)
        XCTAssertFalse(again.stdout.contains("passphrase:"), again.stdout)
        XCTAssertEqual(bytes(copy).count, after.deliveries?.first.map { Int($0.bytes) })
        let forced = try deliver(s, id, ["--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        let pass2 = try passphrase(forced.stdout)
        XCTAssertNotEqual(pass2, pass)
        XCTAssertEqual(
            try runWithPassphrase("age", ["-d", "-o", s.base + "/old.zip", copy], passphrase: pass).status == 0, false,
            "the first passphrase must not open the new copy")
        let opened2 = try runWithPassphrase("age", ["-d", "-o", s.base + "/subject2.zip", copy], passphrase: pass2)
        XCTAssertEqual(opened2.status, 0, opened2.terminal)
        XCTAssertEqual(bytes(s.base + "/subject2.zip"), bytes(s.base + "/team.zip"))
        let twice = try XCTUnwrap(try s.records().first { $0.jobID == id })
        XCTAssertEqual(twice.deliveries?.count, 2)
        XCTAssertEqual((try s.journal("job.delivered").last?["details"] as? [String: Any])?["delivery"] as? Int, 2)
        XCTAssertTrue(
            try s.dsar(["verify", entry]).stdout.contains("matches delivery 2"), "verify after --force")

        // The passphrases are in no file of the spool (records, journal, logs, outbox) nor in stderr.
        for p in [pass, pass2] {
            let g = try runCommand(try tool("grep"), ["-r", "-F", "-l", "-a", p, s.root])
            XCTAssertEqual(g.status, 1, "grep found the passphrase in: \(g.stdout)")
            XCTAssertFalse((r.stderr + forced.stderr).contains(p), "the passphrase is on stderr")
        }

        // A subject copy changed after delivery fails dsar verify.
        var tampered = bytes(copy)
        tampered[tampered.count - 1] ^= 1
        try Data(tampered).write(to: URL(fileURLWithPath: copy))
        let bad = try s.dsar(["verify", entry])
        XCTAssertEqual(bad.status, 1, bad.stdout)
        XCTAssertTrue(bad.stderr.contains("subject.zip.age") && bad.stderr.contains("replaced or modified"), bad.stderr)
    }

    func testRefusalsAndPartialWarning() throws {
        _ = try tool("age")
        let s = try TempSpool()
        let dirs = try setUp(s)
        let key = s.teamKeys + "/age.key"
        func refused(_ job: String, _ code: Int32, _ needle: String, identity: String? = nil, line: UInt = #line) throws
        {
            let r = try s.dsar(["deliver", job, "--identity", identity ?? key], timeout: 300)
            XCTAssertEqual(r.status, code, r.stdout + r.stderr, line: line)
            XCTAssertTrue(r.stderr.contains(needle), "wanted \"\(needle)\" in: \(r.stderr)", line: line)
            XCTAssertFalse(r.stdout.contains("passphrase:"), r.stdout, line: line)
            XCTAssertFalse(FileSystem.exists(s.root + "/outbox/\(job)/subject.zip.age"), line: line)
        }
        let del = try runJob(s, "D-1", action: "delete", connectors: dirs.good)
        XCTAssertEqual(del.status, .completed, del.error ?? "")
        try refused(del.jobID, 64, "only an export is delivered")
        let dry = try runJob(s, "X-1", extra: #", "dry_run": true"#, connectors: dirs.good)
        try refused(dry.jobID, 64, "dry run")
        let failed = try runJob(s, "F-1", connectors: dirs.dead)
        XCTAssertEqual(failed.status, .failed, failed.error ?? "")
        try refused(failed.jobID, 64, "ended FAILED")
        try refused("0190aaaa-0000-7000-8000-000000000000", 66, "no job")
        try refused("zz", 66, "no job")
        // A prefix two job ids share names neither: a twin record whose id differs in the last digit.
        let twin = String(del.jobID.dropLast()) + (del.jobID.hasSuffix("0") ? "1" : "0")
        let record = try String(contentsOfFile: s.root + "/jobs/\(del.jobID).json", encoding: .utf8)
        try record.replacingOccurrences(of: del.jobID, with: twin).write(
            toFile: s.root + "/jobs/\(twin).json", atomically: true, encoding: .utf8)
        try refused(String(del.jobID.dropLast()), 64, "give the whole job id")
        try FileSystem.remove(s.root + "/jobs/\(twin).json")
        try refused(String(del.jobID.dropLast()), 64, "only an export is delivered")

        let partial = try runJob(s, "P-1", connectors: dirs.broken)
        XCTAssertEqual(partial.status, .partial, partial.error ?? "")
        // An identity that is not a recipient of the bundle: nothing is made.
        let other = s.base + "/other.key"
        XCTAssertEqual(try runCommand(try tool("age-keygen"), ["-o", other]).status, 0)
        chmod(other, 0o600)
        try refused(partial.jobID, 1, "cannot decrypt", identity: other)
        // A group-readable identity file is refused (exit 77) before anything is read.
        chmod(other, 0o640)
        try refused(partial.jobID, 77, "chmod 600", identity: other)
        // Without --identity: a usage error.
        let noID = try s.dsar(["deliver", partial.jobID])
        XCTAssertEqual(noID.status, 64, noID.stderr)
        XCTAssertTrue(noID.stderr.contains("--identity"), noID.stderr)
        // A bundle that no longer matches its manifest is not delivered.
        let bundle = s.root + "/outbox/\(partial.jobID)/bundle.zip.age"
        let original = bytes(bundle)
        var flipped = original
        flipped[flipped.count / 2] ^= 0x40
        try Data(flipped).write(to: URL(fileURLWithPath: bundle))
        try refused(partial.jobID, 1, "SHA-256")
        try Data(original).write(to: URL(fileURLWithPath: bundle))

        // PARTIAL: delivered, with a WARNING naming the gap.
        let r = try s.dsar(["deliver", partial.jobID, "--identity", key], timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(
            r.stderr.contains("WARNING") && r.stderr.contains("PARTIAL") && r.stderr.contains("cards"), r.stderr)
        XCTAssertTrue(r.stdout.contains("passphrase: "), r.stdout)
        XCTAssertEqual(try s.records().first { $0.jobID == partial.jobID }?.deliveries?.count, 1)
        XCTAssertEqual(try s.journal("job.delivered").count, 1)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    /// Outbox retention removes the subject's copy with its entry; the retention period counts from
    /// the last change of the entry, so a delivery restarts it (the subject gets the full period to
    /// fetch the copy).
    func testRetentionRemovesTheSubjectCopyWithItsEntryCountingFromTheDelivery() throws {
        let s = try TempSpool()
        let dirs = try setUp(s, extraConfig: "outbox_retention_days: 1\n")
        let rec = try runJob(s, "R-9", connectors: dirs.good)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let entry = s.root + "/outbox/\(rec.jobID)"
        age(entry, secondsAgo: 2 * 86400)
        XCTAssertEqual(try deliver(s, rec.jobID).status, 0)
        let kept = try s.dsar(["run", "--settle", "0", "--connectors", dirs.good])
        XCTAssertFalse(kept.stdout.contains("removed"), kept.stdout)
        XCTAssertTrue(FileSystem.exists(entry + "/subject.zip.age"), "a fresh delivery restarts the retention period")
        age(entry, secondsAgo: 2 * 86400)
        let expired = try s.dsar(["run", "--settle", "0", "--connectors", dirs.good])
        XCTAssertTrue(expired.stdout.contains("removed 1 outbox entries"), expired.stdout)
        XCTAssertFalse(FileSystem.exists(entry), "the entry, subject copy included, is gone")
        XCTAssertEqual(s.list("outbox"), [])
        // The record keeps the delivery (no personal data); a new delivery has nothing to copy.
        XCTAssertEqual(try s.records().first { $0.jobID == rec.jobID }?.deliveries?.count, 1)
        let late = try deliver(s, rec.jobID)
        XCTAssertEqual(late.status, 66, late.stderr)
        XCTAssertTrue(late.stderr.contains("outbox_retention_days"), late.stderr)
    }

    /// kill -9 after the copy is in place but before it is recorded: no passphrase was shown, the
    /// record and journal speak of no delivery, `dsar verify` calls the copy a leftover, and the
    /// next `dsar deliver` (no --force needed) replaces it with one that opens.
    func testDeliveryKilledBeforeItIsRecordedIsRedoneWithoutForce() throws {
        _ = try tool("age")
        let s = try TempSpool()
        let dirs = try setUp(s)
        let rec = try runJob(s, "K-1", connectors: dirs.good)
        XCTAssertEqual(rec.status, .completed, rec.error ?? "")
        let entry = s.root + "/outbox/\(rec.jobID)"
        let killed = try s.dsar(
            ["deliver", rec.jobID, "--identity", s.teamKeys + "/age.key"], env: ["DSAR_CRASH_AT": "deliver.renamed"],
            timeout: 300)
        XCTAssertTrue(killed.signaled && killed.status == SIGKILL, "\(killed.status) \(killed.stderr)")
        XCTAssertFalse(killed.stdout.contains("passphrase:"), killed.stdout)
        XCTAssertTrue(FileSystem.exists(entry + "/subject.zip.age"))
        XCTAssertNil(try s.records().first { $0.jobID == rec.jobID }?.deliveries)
        XCTAssertEqual(try s.journal("job.delivered").count, 0)
        let v = try s.dsar(["verify", entry])
        XCTAssertEqual(v.status, 1, v.stdout)
        XCTAssertTrue(v.stderr.contains("lists none"), v.stderr)

        let redo = try deliver(s, rec.jobID)
        XCTAssertEqual(redo.status, 0, redo.stderr)
        let pass = try passphrase(redo.stdout)
        let opened = try runWithPassphrase(
            "age", ["-d", "-o", s.base + "/s.zip", entry + "/subject.zip.age"], passphrase: pass)
        XCTAssertEqual(opened.status, 0, opened.terminal)
        XCTAssertEqual(try s.records().first { $0.jobID == rec.jobID }?.deliveries?.count, 1)
        XCTAssertEqual(try s.dsar(["verify", entry]).status, 0)
        XCTAssertEqual(s.list("outbox/\(rec.jobID)").filter { $0.hasSuffix(".tmp") }, [])
    }
}
