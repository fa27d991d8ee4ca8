import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar retry` and the identity set kept for the life of a case, through the real binary.
final class RetryE2ETests: XCTestCase {
    let card = "LC-99017342"
    let email = "alice@example.com"

    /// customers.csv links the e-mail to a loyalty card; cards.csv knows only the card. While
    /// `broken`, cards.csv is a directory (a source that cannot be read or rewritten), so a delete
    /// erases the customer row and fails on the cards.
    func setUp(_ s: TempSpool, broken: Bool) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/customers.csv",
            "email,loyalty_card,name\n\(email),\(card),Alice\nbob@example.org,LC-11111111,Bob\n")
        if broken {
            try FileManager.default.createDirectory(atPath: dir + "/data/cards.csv", withIntermediateDirectories: true)
        } else {
            try writeFile(dir + "/data/cards.csv", cardsCSV)
        }
        try writeFile(
            dir + "/customers.yaml",
            "name: customers\ntype: csv\npaths: [ data/customers.csv ]\ndelimiter: \",\"\ncolumns: { email: email, loyalty_card: loyalty_card }\nerase: delete\n"
        )
        try writeFile(
            dir + "/cards.yaml",
            "name: cards\ntype: csv\npaths: [ data/cards.csv ]\ndelimiter: \",\"\ncolumns: { loyalty_card: loyalty_card }\nerase: delete\n"
        )
        try s.initialize(extraConfig: "identifier_types: [ loyalty_card ]\n")
        return dir
    }

    var cardsCSV: String { "loyalty_card,points\n\(card),1200\nLC-11111111,5\n" }

    /// Puts the real cards.csv in place of the broken one (the operator fixes the cause).
    func repair(_ dir: String) throws {
        try FileSystem.removeTree(dir + "/data/cards.csv")
        try writeFile(dir + "/data/cards.csv", cardsCSV)
    }

    func manifest(_ s: TempSpool, _ jobID: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: s.root + "/outbox/\(jobID)/manifest.json"))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// The first attempt: customers erased, cards failed → PARTIAL, request and identity set in failed/.
    func partialDelete(_ s: TempSpool, _ dir: String) throws -> JobRecord {
        try s.drop("d.json", #"{"request_id": "T-7", "action": "delete", "email": "\#(email)"}"#)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 1, r.stdout + r.stderr)
        let rec = try XCTUnwrap(try s.record(requestID: "T-7"))
        XCTAssertEqual(rec.status, .partial, rec.error ?? "")
        XCTAssertFalse(
            try String(contentsOfFile: dir + "/data/customers.csv", encoding: .utf8).contains(email),
            "the customer row was erased")
        return rec
    }

    func testRetryAfterPartialEraseFindsTheCardThroughTheKeptIdentity() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: true)
        let first = try partialDelete(s, dir)
        let id = first.jobID
        // The identity set went to failed/ with the request: 0600, the card with its provenance.
        XCTAssertEqual(s.kind("failed/\(id).json"), .regular)
        XCTAssertEqual((try FileSystem.status(s.root + "/failed/\(id).identity.json")!.mode) & 0o777, 0o600)
        let identity = try XCTUnwrap(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: s.root + "/failed/\(id).identity.json"))) as? [String: Any])
        let entries = try XCTUnwrap(identity["identifiers"] as? [[String: String]])
        XCTAssertEqual(entries.first { $0["type"] == "email" }?["provenance"], "request")
        XCTAssertEqual(entries.first { $0["type"] == "loyalty_card" }?["value"], card)
        XCTAssertEqual(
            entries.first { $0["type"] == "loyalty_card" }?["provenance"],
            "loyalty_card derived from customers.customers via email")
        XCTAssertEqual(s.kind("active/\(id).identity.json"), nil)
        let kept = try s.dsar(["status"])
        XCTAssertTrue(kept.stdout.contains("failed requests kept: 1 "), kept.stdout)

        // The fix, then the retry: same job, PENDING, nothing left in failed/.
        try repair(dir)
        let retry = try s.dsar(["retry", id])
        XCTAssertEqual(retry.status, 0, retry.stderr)
        XCTAssertTrue(retry.stdout.contains("attempt 2"), retry.stdout)
        XCTAssertEqual(s.list("failed"), [])
        XCTAssertEqual(Set(s.list("active")), ["\(id).json", "\(id).identity.json"])
        XCTAssertEqual(
            s.kind("outbox/\(id)"), nil,
            "the PARTIAL receipt is withdrawn so that it is never taken for the new attempt")
        let pending = try JobStore(layout: s.layout).load(id)
        XCTAssertEqual(pending.status, .pending)
        XCTAssertEqual(pending.attempts, 1)
        let status = try s.dsar(["status"])
        XCTAssertTrue(status.stdout.contains(id) && status.stdout.contains("PENDING"), status.stdout)

        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        let recs = try s.records()
        XCTAssertEqual(recs.count, 1, "no second job")
        let done = try XCTUnwrap(recs.first)
        XCTAssertEqual(done.jobID, id)
        XCTAssertEqual(done.status, .completed, done.error ?? "")
        XCTAssertEqual(done.requestID, "T-7")
        XCTAssertEqual(done.receivedAt, first.receivedAt)
        XCTAssertEqual(done.deadline, first.deadline)
        XCTAssertEqual(done.initialDeadline, first.initialDeadline)
        XCTAssertEqual(done.attempts, 2)
        XCTAssertEqual(done.connectors.first { $0.name == "cards" }?.records, 1, "found through the kept loyalty card")
        // The receipt: the card row deleted from cards.csv, nothing remaining.
        let m = try manifest(s, id)
        let erasure = try XCTUnwrap(m["erasure"] as? [String: Any])
        XCTAssertEqual(erasure["remaining"] as? Int, 0)
        let sources = try XCTUnwrap(erasure["sources"] as? [[String: Any]])
        XCTAssertEqual(sources.first { $0["connector"] as? String == "cards" }?["deleted"] as? Int, 1)
        // The real oracle: grep finds the card nowhere in the sources; the other card stays.
        let grep = try runCommand("/bin/grep", ["-r", card, dir + "/data"])
        XCTAssertEqual(grep.status, 1, "grep found the card: \(grep.stdout)")
        XCTAssertEqual(
            try String(contentsOfFile: dir + "/data/cards.csv", encoding: .utf8), "loyalty_card,points\nLC-11111111,5\n"
        )
        // The journal tells the story: attempts 1 and 2, the retry with its attempt number.
        let started = try s.journal("job.started").filter { $0["job_id"] as? String == id }
        XCTAssertEqual(started.compactMap { ($0["details"] as? [String: Any])?["attempt"] as? Int }, [1, 2])
        let retried = try s.journal("job.retried")
        XCTAssertEqual(retried.count, 1)
        XCTAssertEqual((retried.first?["details"] as? [String: Any])?["attempt"] as? Int, 2)
        XCTAssertEqual((retried.first?["details"] as? [String: Any])?["was"] as? String, "PARTIAL")
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
        // Completed: request and identity set deleted; no personal data in the record or journal.
        XCTAssertEqual(s.allFiles("active"), [])
        XCTAssertEqual(s.allFiles("failed"), [])
        for file in s.allFiles("journal") + s.allFiles("jobs") {
            let text = s.text(file)
            XCTAssertFalse(text.contains(card) || text.contains(email), "\(file) holds personal data")
        }
    }

    func testRetryRefusesCompletedAndUnknownJobs() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: false)
        try s.drop("d.json", #"{"request_id": "T-8", "action": "delete", "email": "\#(email)"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let rec = try XCTUnwrap(try s.record(requestID: "T-8"))
        XCTAssertEqual(rec.status, .completed)
        let completed = try s.dsar(["retry", rec.jobID])
        XCTAssertEqual(completed.status, 64, completed.stderr)
        XCTAssertTrue(completed.stderr.contains("COMPLETED"), completed.stderr)
        XCTAssertEqual(try JobStore(layout: s.layout).load(rec.jobID), rec, "the record is untouched")
        XCTAssertEqual(s.kind("outbox/\(rec.jobID)"), .directory)
        // A job id that has no record, and something that is not a job id.
        var unknown = Array(rec.jobID)
        unknown[unknown.count - 1] = unknown.last == "0" ? "1" : "0"
        let missing = try s.dsar(["retry", String(unknown)])
        XCTAssertEqual(missing.status, 66, missing.stderr)
        XCTAssertTrue(missing.stderr.contains("no job"), missing.stderr)
        XCTAssertEqual(try s.dsar(["retry", "not-a-job"]).status, 66)
        XCTAssertEqual(try s.journal("job.retried").count, 0)
    }

    func testRetryWaitsForTheSpoolLock() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: true)
        let first = try partialDelete(s, dir)
        // A lock held by another process: retry refuses with 75 and changes nothing.
        let holder = try launch("/usr/bin/flock", ["-x", s.root + "/.lock", "sleep", "30"])
        defer { holder.signal(SIGKILL) }
        XCTAssertTrue(
            waitUntil(timeout: 10) {
                (try? runCommand("/usr/bin/flock", ["-n", s.root + "/.lock", "true"]).status) == 1
            })
        let busy = try s.dsar(["retry", first.jobID])
        XCTAssertEqual(busy.status, 75, busy.stderr)
        XCTAssertEqual(try JobStore(layout: s.layout).load(first.jobID).status, .partial)
        XCTAssertEqual(s.kind("failed/\(first.jobID).json"), .regular)
    }

    func testCrashAfterIdentityWrittenThenRecovered() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: false)
        let before = try AtomicRewrite.hash(path: dir + "/data/customers.csv")
        try s.drop("d.json", #"{"request_id": "T-9", "action": "delete", "email": "\#(email)"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "identity.written"])
        XCTAssertTrue(crashed.signaled && crashed.status == SIGKILL, "status \(crashed.status): \(crashed.stderr)")
        let rec = try XCTUnwrap(try s.record(requestID: "T-9"))
        XCTAssertEqual(s.kind("active/\(rec.jobID).identity.json"), .regular, "written before any source changes")
        XCTAssertEqual(try AtomicRewrite.hash(path: dir + "/data/customers.csv"), before)
        let again = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(try JobStore(layout: s.layout).load(rec.jobID).status, .completed)
        XCTAssertEqual(s.allFiles("active"), [])
        XCTAssertEqual(try runCommand("/bin/grep", ["-r", card, dir + "/data"]).status, 1)
    }

    func testCrashDuringRetryIsUndoneByRecoveryAndCanBeRepeated() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: true)
        let first = try partialDelete(s, dir)
        try repair(dir)
        let crashed = try s.dsar(["retry", first.jobID], env: ["DSAR_CRASH_AT": "retry.moved"])
        XCTAssertTrue(crashed.signaled && crashed.status == SIGKILL, "status \(crashed.status): \(crashed.stderr)")
        // Moved but not yet PENDING: the next run's recovery puts the request back in failed/.
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(try JobStore(layout: s.layout).load(first.jobID).status, .partial)
        XCTAssertEqual(
            Set(s.list("failed")), ["\(first.jobID).json", "\(first.jobID).identity.json", "\(first.jobID).reason"])
        XCTAssertEqual(s.list("active"), [])
        XCTAssertEqual(try s.dsar(["retry", first.jobID]).status, 0)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        let done = try JobStore(layout: s.layout).load(first.jobID)
        XCTAssertEqual(done.status, .completed, done.error ?? "")
        XCTAssertEqual(try runCommand("/bin/grep", ["-r", card, dir + "/data"]).status, 1)
    }

    func testDryRunDoesNotUseUpTheRequestID() throws {
        let s = try TempSpool()
        let dir = try setUp(s, broken: false)
        let before = try AtomicRewrite.hash(path: dir + "/data/customers.csv")
        try s.drop("dry.json", #"{"request_id": "R-1", "action": "delete", "email": "\#(email)", "dry_run": true}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        XCTAssertEqual(try AtomicRewrite.hash(path: dir + "/data/customers.csv"), before)
        try s.drop("real.json", #"{"request_id": "R-1", "action": "delete", "email": "\#(email)"}"#)
        let real = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(real.status, 0, real.stdout + real.stderr)
        let recs = try s.records().filter { $0.requestID == "R-1" }
        XCTAssertEqual(recs.map(\.dryRun), [true, false])
        XCTAssertEqual(recs.map(\.status), [.completed, .completed])
        XCTAssertEqual(s.list("rejected"), [])
        XCTAssertEqual(try runCommand("/bin/grep", ["-r", card, dir + "/data"]).status, 1, "the real one erased")
        // A second real request with that id is still a duplicate.
        try s.drop("again.json", #"{"request_id": "R-1", "action": "delete", "email": "\#(email)"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 2)
        XCTAssertEqual(try s.records().count, 2)
        XCTAssertTrue(s.reason("again.json").contains("duplicate"), s.reason("again.json"))
    }
}
