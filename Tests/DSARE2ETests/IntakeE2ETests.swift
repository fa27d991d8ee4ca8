import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Intake through the real binary: good requests end COMPLETED, bad drops are moved aside with a
/// reason naming the problem, uploads in progress are left alone.
final class IntakeE2ETests: XCTestCase {
    static let fullRequest = """
        {"request_id": "TICKET-4711", "action": "export", "subject": {"email": "alice@example.com", "user_id": "1042", "phone": "+44 20 7946 0000"}, "received_at": "2026-11-20T09:00:00Z", "regulation": "gdpr"}
        """
    static let minimalRequest = #"{"user_id": "12345", "action": "export"}"#

    func testMinimalAndFullRequestsCompleteAndStatusShowsThemWithoutPersonalData() throws {
        let spool = try TempSpool()
        try spool.initialize()
        try spool.drop("minimal.json", Self.minimalRequest)
        try spool.drop("full.json", Self.fullRequest)

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 30)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        XCTAssertTrue(
            run.stdout.contains("2 claimed, 2 finished (2 completed, 0 partial, 0 failed), 0 rejected, 0 waiting"),
            run.stdout)

        let jobs = try spool.statusJSON()
        XCTAssertEqual(jobs.count, 2)
        let full = try XCTUnwrap(jobs.first { ($0["request_id"] as? String) == "TICKET-4711" }, "\(jobs)")
        let minimal = try XCTUnwrap(jobs.first { $0["request_id"] == nil || $0["request_id"] is NSNull }, "\(jobs)")

        // The full request.
        XCTAssertEqual(full["action"] as? String, "export")
        XCTAssertEqual(full["status"] as? String, "COMPLETED")
        XCTAssertEqual(full["regulation"] as? String, "gdpr")
        XCTAssertEqual(full["received_at"] as? String, "2026-11-20T09:00:00Z")
        XCTAssertEqual(full["deadline"] as? String, "2026-12-20T09:00:00Z")
        XCTAssertEqual(full["initial_deadline"] as? String, "2026-12-20T09:00:00Z")
        let fullID = try XCTUnwrap(full["job_id"] as? String)
        XCTAssertEqual(full["outbox"] as? String, "outbox/\(fullID)")
        let idents = try XCTUnwrap(full["identifiers"] as? [[String: Any]])
        XCTAssertEqual(Set(idents.compactMap { $0["type"] as? String }), ["email", "user_id", "phone"])
        XCTAssertEqual(idents.count, 3)
        let pseudonyms = idents.compactMap { $0["pseudonym"] as? String }
        XCTAssertEqual(Set(pseudonyms).count, 3, "pseudonyms must differ per identifier")
        for p in pseudonyms {
            XCTAssertEqual(p.count, 64, p)
            XCTAssertTrue(p.allSatisfy { "0123456789abcdef".contains($0) }, "pseudonym is not lower-case hex: \(p)")
        }
        XCTAssertEqual(Set(idents.compactMap { $0["provenance"] as? String }), ["request"])
        XCTAssertEqual((full["subject"] as? String)?.count, 64)

        // The minimal one.
        XCTAssertEqual(minimal["action"] as? String, "export")
        XCTAssertEqual(minimal["status"] as? String, "COMPLETED")
        XCTAssertEqual(minimal["regulation"] as? String, "gdpr")
        XCTAssertEqual(minimal["deadline"] as? String, minimal["initial_deadline"] as? String)
        let minIdents = try XCTUnwrap(minimal["identifiers"] as? [[String: Any]])
        XCTAssertEqual(minIdents.compactMap { $0["type"] as? String }, ["user_id"])
        let minimalID = try XCTUnwrap(minimal["job_id"] as? String)

        // Finished COMPLETED jobs: outbox entry published, claimed request deleted.
        for id in [fullID, minimalID] {
            XCTAssertEqual(spool.kind("outbox/\(id)"), .directory)
            XCTAssertFalse(spool.allFiles("outbox/\(id)").isEmpty, "outbox/\(id)/ is empty")
            XCTAssertNil(spool.kind("active/\(id).json"))
        }
        XCTAssertEqual(spool.list("inbox"), [])
        XCTAssertEqual(spool.list("rejected"), [])

        // No identifier value appears in any job record (nor in the audit journal, which holds
        // pseudonyms only).
        let files = spool.recordNames().map { "jobs/" + $0 } + spool.allFiles("journal")
        XCTAssertEqual(spool.recordNames().count, 2)
        for f in files {
            let text = spool.text(f)
            for leak in [
                "alice@example.com", "+44 20 7946 0000", "+442079460000", "\"1042\"", "\"12345\"", ": 1042", ": 12345",
            ] {
                XCTAssertFalse(text.lowercased().contains(leak), "\(f) contains \(leak)")
            }
            if f.hasSuffix(".json"), let doc = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
                for s in jsonScalars(doc) {
                    XCTAssertFalse(["1042", "12345", "442079460000"].contains(s), "\(f) holds the value \(s)")
                    XCTAssertFalse(s.contains("alice") || s.contains("7946 0000"), "\(f) holds \(s)")
                }
            }
        }

        // Detail view and timeline work on the same job.
        let detail = try spool.dsar(["status", fullID])
        XCTAssertEqual(detail.status, 0, detail.stderr)
        XCTAssertTrue(detail.stdout.contains("TICKET-4711"), detail.stdout)
        XCTAssertTrue(detail.stdout.contains("2026-12-20T09:00:00Z"), detail.stdout)
        XCTAssertFalse(detail.stdout.contains("alice"), detail.stdout)
        let events = try spool.dsar(["events", fullID, "--json"])
        XCTAssertEqual(events.status, 0, events.stderr)
        let kinds: [String] = events.stdout.split(separator: "\n").compactMap { line in
            guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { return nil }
            return (o["type"] ?? o["event"]) as? String
        }
        // The timeline shows the job claimed, then started, then ended (in that order).
        var rest = kinds[...]
        for step in ["claimed", "started"] {
            guard let k = rest.firstIndex(where: { $0.hasSuffix(step) }) else {
                return XCTFail("no \(step) event in \(kinds)")
            }
            rest = rest[(k + 1)...]
        }
        XCTAssertTrue(
            rest.contains { $0.hasSuffix("completed") || $0.hasSuffix("finished") },
            "no end event after start: \(kinds)")
        XCTAssertFalse(events.stdout.contains("alice"), events.stdout)
    }

    func testSubmitWritesARequestThatIsProcessed() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let sub = try spool.dsar([
            "submit", "--email", "bob@example.com", "--user-id", "77", "--action", "export", "--request-id", "SUB-1",
        ])
        XCTAssertEqual(sub.status, 0, sub.stderr)
        let path = sub.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(path.hasPrefix(spool.root + "/inbox/submit-") && path.hasSuffix(".json"), path)
        XCTAssertEqual(spool.list("inbox"), [(path as NSString).lastPathComponent])
        XCTAssertEqual(spool.allFiles("inbox").count, 1, "submit leaves no temp file: \(spool.allFiles("inbox"))")

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 30)
        XCTAssertEqual(run.status, 0, run.stderr)
        let rec = try XCTUnwrap(try spool.record(requestID: "SUB-1"))
        XCTAssertEqual(rec.status, .completed)
        XCTAssertEqual(Set(rec.identifiers.map(\.type)), ["email", "user_id"])
        XCTAssertEqual(spool.list("inbox"), [])
    }

    /// Every kind of bad drop in one batch with good ones: each bad drop is moved to rejected/ with a
    /// one-line reason naming its problem, and the good requests are still processed.
    func testBadDropsAreRejectedWithReasonsAndGoodOnesInTheSameBatchComplete() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let inbox = spool.root + "/inbox/"
        try spool.drop("good-1.json", requestJSON("GOOD-1", user: "501"))
        try spool.drop("malformed.json", #"{"user_id": "1", "action": "export",}"#)
        try spool.drop("trunc-young.json", #"{"user_id": "1", "action": "exp"#)
        try spool.drop("trunc-old.json", #"{"user_id": "2", "action": "exp"#)
        age(inbox + "trunc-old.json", secondsAgo: 3600)
        try spool.drop("unknown-field.json", #"{"user_id": "1", "action": "export", "colour": "blue"}"#)
        try spool.drop("no-action.json", #"{"user_id": "1"}"#)
        try spool.drop("bad-action.json", #"{"user_id": "1", "action": "frobnicate"}"#)
        try spool.drop("no-identifier.json", #"{"action": "export", "request_id": "NOID"}"#)
        try spool.drop(
            "bad-utf8.json", Array(#"{"user_id": "ab"#.utf8) + [0xFF, 0xFE] + Array(#"cd", "action": "export"}"#.utf8))
        let big = Array(#"{"user_id": "3", "action": "export"}"#.utf8) + [UInt8](repeating: 0x20, count: 2 << 20)
        try spool.drop("big.json", big)
        XCTAssertEqual(symlink("/etc/passwd", inbox + "link.json"), 0)
        XCTAssertEqual(mkfifo(inbox + "pipe.json", 0o644), 0)
        XCTAssertEqual(mkdir(inbox + "dir.json", 0o755), 0)
        try spool.drop("good-2.json", requestJSON("GOOD-2", user: "502"))

        let run = try spool.dsar(["run", "--settle", "0.2", "--reject-after", "60"], timeout: 30)
        XCTAssertEqual(run.status, 2, "exit 2 = some requests rejected, no job failed\n\(run.stdout)\n\(run.stderr)")

        // Good ones done.
        for rid in ["GOOD-1", "GOOD-2"] {
            XCTAssertEqual(try spool.record(requestID: rid)?.status, .completed, rid)
        }
        XCTAssertEqual(spool.recordNames().count, 2, "only the two good requests become jobs")

        let expected: [(String, [String])] = [
            ("malformed.json", ["malformed"]),
            ("trunc-old.json", ["incomplete"]),
            ("unknown-field.json", ["unknown field \"colour\""]),
            ("no-action.json", ["\"action\"", "missing"]),
            ("bad-action.json", ["\"action\"", "\"frobnicate\"", "export", "delete"]),
            ("no-identifier.json", ["no identifier"]),
            ("bad-utf8.json", ["UTF-8"]),
            ("big.json", ["bytes", "1048576"]),
            ("link.json", ["symbolic link"]),
            ("pipe.json", ["FIFO"]),
            ("dir.json", ["directory"]),
        ]
        for (name, words) in expected {
            XCTAssertNotNil(spool.kind("rejected/\(name)"), "\(name) not moved to rejected/")
            XCTAssertNil(spool.kind("inbox/\(name)"), "\(name) still in inbox")
            let reason = spool.reason(name)
            XCTAssertTrue(
                reason.hasSuffix("\n") && reason.filter { $0 == "\n" }.count == 1, "\(name): one line: \(reason)")
            XCTAssertTrue(reason.contains(name), "\(name): reason names the file: \(reason)")
            for w in words { XCTAssertTrue(reason.contains(w), "\(name): reason should mention \(w): \(reason)") }
            let drop = try Pseudonymizer.load(spool.layout).dropName(name)
            XCTAssertTrue(run.stdout.contains("rejected \(drop):"), "summary lists \(name) as \(drop): \(run.stdout)")
            XCTAssertFalse(run.stdout.contains(name), "the summary never prints a drop's name")
        }
        XCTAssertEqual(spool.list("rejected").count, expected.count * 2, "\(spool.list("rejected"))")

        // Kinds were preserved: the symlink is still a link to /etc/passwd, the FIFO and directory too.
        XCTAssertEqual(spool.kind("rejected/link.json"), .symlink)
        XCTAssertEqual(
            try FileManager.default.destinationOfSymbolicLink(atPath: spool.root + "/rejected/link.json"), "/etc/passwd"
        )
        XCTAssertEqual(spool.kind("rejected/pipe.json"), .fifo)
        XCTAssertEqual(spool.kind("rejected/dir.json"), .directory)
        XCTAssertEqual(FileManager.default.contents(atPath: spool.root + "/rejected/big.json")?.count, big.count)

        // The young truncated drop waits in the inbox (maybe the upload is still running).
        XCTAssertEqual(spool.list("inbox"), ["trunc-young.json"])
        XCTAssertNil(spool.kind("rejected/trunc-young.json"))
        XCTAssertTrue(
            run.stdout.contains("waiting  \(try Pseudonymizer.load(spool.layout).dropName("trunc-young.json"))"),
            run.stdout)
        XCTAssertTrue(
            run.stdout.contains("2 claimed, 2 finished (2 completed, 0 partial, 0 failed), 11 rejected, 1 waiting"),
            run.stdout)

        // Once it is old enough, the next run rejects it.
        age(inbox + "trunc-young.json", secondsAgo: 120)
        let later = try spool.dsar(["run", "--settle", "0.2", "--reject-after", "60"], timeout: 30)
        XCTAssertEqual(later.status, 2, later.stdout)
        XCTAssertTrue(spool.reason("trunc-young.json").contains("incomplete"), spool.reason("trunc-young.json"))
        XCTAssertEqual(spool.list("inbox"), [])
        XCTAssertEqual(spool.recordNames().count, 2)
    }

    func testDotfilesAndUploadsInProgressAreLeftAlone() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let names = [".hidden.json", "up.json.part", "up.json.filepart", "up.json.tmp", "notes.txt"]
        for (k, n) in names.enumerated() {
            try spool.drop(n, requestJSON("LEAVE-\(k)", user: "9\(k)"), inPlace: true)
            age(spool.root + "/inbox/" + n, secondsAgo: 7200)
        }
        try spool.drop("take.json", requestJSON("TAKE-1", user: "42"))
        let run = try spool.dsar(["run", "--settle", "0.2", "--reject-after", "1"], timeout: 30)
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(Set(spool.allFiles("inbox")), Set(names.map { "inbox/" + $0 }))
        for (k, n) in names.enumerated() {
            XCTAssertEqual(spool.text("inbox/" + n), requestJSON("LEAVE-\(k)", user: "9\(k)"), "\(n) changed")
        }
        XCTAssertEqual(spool.list("rejected"), [])
        XCTAssertEqual(try spool.records().map { $0.requestID ?? "-" }, ["TAKE-1"])
    }

    func testDuplicateRequestIDInOneBatchMakesOneJob() throws {
        let spool = try TempSpool()
        try spool.initialize()
        try spool.drop("dup-a.json", requestJSON("DUP-1", user: "1"))
        try spool.drop("dup-b.json", requestJSON("DUP-1", user: "2"))
        try spool.drop("other.json", requestJSON("OTHER-1", user: "3"))
        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 30)
        XCTAssertEqual(run.status, 2, run.stdout + run.stderr)

        let job = try XCTUnwrap(try spool.record(requestID: "DUP-1"))
        XCTAssertEqual(job.status, .completed)
        XCTAssertEqual(try spool.record(requestID: "OTHER-1")?.status, .completed)
        XCTAssertEqual(spool.recordNames().count, 2)
        let rejected = spool.list("rejected").filter { !$0.hasSuffix(".reason") }
        XCTAssertEqual(rejected.count, 1, "\(spool.list("rejected"))")
        let name = try XCTUnwrap(rejected.first)
        XCTAssertTrue(["dup-a.json", "dup-b.json"].contains(name), name)
        let reason = spool.reason(name)
        XCTAssertTrue(reason.contains("duplicate"), reason)
        XCTAssertTrue(reason.contains(job.jobID), "reason names the first job \(job.jobID): \(reason)")
        XCTAssertTrue(reason.contains("DUP-1"), reason)
        XCTAssertEqual(spool.list("inbox"), [])
    }

    func testDuplicateRequestIDAcrossRunsIsRejectedNamingTheFirstJob() throws {
        let spool = try TempSpool()
        try spool.initialize()
        try spool.drop("first.json", requestJSON("DUP-2", user: "1"))
        let first = try spool.dsar(["run", "--settle", "0.2"], timeout: 30)
        XCTAssertEqual(first.status, 0, first.stderr)
        let job = try XCTUnwrap(try spool.record(requestID: "DUP-2"))

        try spool.drop("second.json", requestJSON("DUP-2", user: "1"))
        let second = try spool.dsar(["run", "--settle", "0.2"], timeout: 30)
        XCTAssertEqual(second.status, 2, second.stdout + second.stderr)
        XCTAssertEqual(spool.recordNames().count, 1, "no second job")
        XCTAssertEqual(spool.kind("rejected/second.json"), .regular)
        let reason = spool.reason("second.json")
        XCTAssertTrue(reason.contains(job.jobID), "reason names the first job \(job.jobID): \(reason)")
        XCTAssertTrue(reason.contains("COMPLETED"), reason)
        XCTAssertEqual(spool.list("inbox"), [])
    }
}
