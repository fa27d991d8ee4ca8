import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The red team's edges of issue 16 through the real binary: an earlier attempt's outbox entry put
/// back after `dsar retry` (F6), retrying, delivering and closing closed cases (F7), a request id that
/// shadows a job-id prefix (F8), and the clock (F9).
final class CaseEdgesE2ETests: XCTestCase {
    let email = "alice@example.com"

    /// `good/`: one CSV source holding the subject; `broken/`: that source plus one that cannot be
    /// read (a directory where the CSV should be), so an export is PARTIAL.
    func setUp(_ s: TempSpool, extraConfig: String = "") throws -> (good: String, broken: String) {
        let csv = "email,user_id,name\n\(email),1042,Alice\nbob@example.org,7,Bob\n"
        let good = s.base + "/good"
        let broken = s.base + "/broken"
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
        try s.initialize(extraConfig: extraConfig)
        return (good, broken)
    }

    func runJob(
        _ s: TempSpool, _ rid: String, connectors: String, file: StaticString = #filePath, line: UInt = #line
    ) throws -> JobRecord {
        try s.drop("\(rid).json", #"{"request_id": "\#(rid)", "action": "export", "email": "\#(email)"}"#)
        _ = try s.dsar(["run", "--settle", "0", "--connectors", connectors])
        return try XCTUnwrap(try s.record(requestID: rid, file: file, line: line), file: file, line: line)
    }

    func deliver(_ s: TempSpool, _ job: String, _ more: [String] = []) throws -> CommandResult {
        try s.dsar(["deliver", job, "--identity", s.teamKeys + "/age.key"] + more, timeout: 300)
    }

    func sha256(_ path: String) throws -> String {
        var h = StreamingSHA256()
        h.update(try FileSystem.readFile(path, limit: 64 << 20))
        return h.hexDigest()
    }

    // MARK: F6

    /// An earlier attempt's entry, withdrawn by `dsar retry` and put back (a backup, an rsync mirror),
    /// is validly signed for the job, but it is not the job's answer: verify fails and deliver refuses,
    /// while the current entry verifies and is delivered.
    func testAnEarlierAttemptsEntryPutBackAfterRetryIsNeitherVerifiedNorDelivered() throws {
        let s = try TempSpool()
        let dirs = try setUp(s)
        let first = try runJob(s, "R-1", connectors: dirs.broken)
        XCTAssertEqual(first.status, .partial, first.error ?? "")
        let entry = s.root + "/outbox/\(first.jobID)"
        XCTAssertEqual(first.manifestSHA256, try sha256(entry + "/manifest.json"), "the publication is recorded")
        let backup = s.base + "/old-entry"
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", entry, backup]).status, 0)

        let retry = try s.dsar(["retry", first.jobID])
        XCTAssertEqual(retry.status, 0, retry.stderr)
        XCTAssertNil(try s.record(requestID: "R-1")?.manifestSHA256, "the withdrawn publication is no longer current")
        // Put back while the job waits for its new attempt: no entry is current.
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", backup, entry]).status, 0)
        let pending = try s.dsar(["verify", entry])
        XCTAssertNotEqual(pending.status, 0, pending.stdout)
        XCTAssertTrue(pending.stderr.contains("not the job's current publication (retried at "), pending.stderr)
        try FileSystem.removeTree(entry)

        _ = try s.dsar(["run", "--settle", "0", "--connectors", dirs.good])
        let second = try XCTUnwrap(try s.record(requestID: "R-1"))
        XCTAssertEqual(second.status, .completed, second.error ?? "")
        let current = try sha256(entry + "/manifest.json")
        XCTAssertEqual(second.manifestSHA256, current)
        XCTAssertNotEqual(current, try sha256(backup + "/manifest.json"))
        let ok = try s.dsar(["verify", entry])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("publication: the job's current one"), ok.stdout)

        // The first attempt's entry put back in place of the current one.
        let currentCopy = s.base + "/current-entry"
        XCTAssertEqual(try runCommand("/bin/mv", [entry, currentCopy]).status, 0)
        XCTAssertEqual(try runCommand("/bin/cp", ["-a", backup, entry]).status, 0)
        let v = try s.dsar(["verify", entry])
        XCTAssertEqual(v.status, 1, v.stdout + v.stderr)
        XCTAssertTrue(v.stderr.contains("not the job's current publication (retried at "), v.stderr)
        let d = try deliver(s, "R-1")
        XCTAssertEqual(d.status, 1, d.stdout + d.stderr)
        XCTAssertTrue(d.stderr.contains("not the job's current publication (retried at "), d.stderr)
        XCTAssertFalse(d.stdout.contains("passphrase: "), d.stdout)
        XCTAssertFalse(FileSystem.exists(entry + "/subject.zip.age"), "nothing is made for the subject")
        XCTAssertNil(try s.record(requestID: "R-1")?.deliveries)

        // The current entry back: delivered.
        try FileSystem.removeTree(entry)
        XCTAssertEqual(try runCommand("/bin/mv", [currentCopy, entry]).status, 0)
        let good = try deliver(s, "R-1")
        XCTAssertEqual(good.status, 0, good.stderr)
        XCTAssertEqual(try s.record(requestID: "R-1")?.deliveries?.count, 1)
    }

    // MARK: F7

    /// The red team's path: a job claimed, a crash, the case closed as refused, a run; `dsar retry`
    /// must not bring it back (it would stay PENDING, its request in active/, for ever).
    func testAClosedCaseIsNotRetried() throws {
        let s = try TempSpool()
        let dirs = try setUp(s)
        let sub = try s.dsar([
            "submit", "--request-id", "PEND-1", "--email", "grace@example.com", "--action", "export",
        ])
        XCTAssertEqual(sub.status, 0, sub.stderr)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dirs.good], env: ["DSAR_CRASH_AT": "claim.recorded"], timeout: 60)
        XCTAssertTrue(crashed.signaled, crashed.stderr)
        let close = try s.dsar(["close", "PEND-1", "--reason", "refused", "--note", "manifestly unfounded"])
        XCTAssertEqual(close.status, 0, close.stderr)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dirs.good]).status, 0)
        let rec = try XCTUnwrap(try s.record(requestID: "PEND-1"))
        XCTAssertEqual(rec.status, .failed)
        XCTAssertEqual(s.list("active").filter { $0.hasSuffix(".json") }, [])
        let retry = try s.dsar(["retry", rec.jobID])
        XCTAssertEqual(retry.status, 64, retry.stdout + retry.stderr)
        XCTAssertTrue(
            retry.stderr.contains("the case was closed (refused) at \(rec.closure?.at ?? "?")"), retry.stderr)
        XCTAssertEqual(try s.record(requestID: "PEND-1")?.status, .failed, "nothing changed")
        XCTAssertTrue(FileSystem.exists(s.root + "/failed/\(rec.jobID).json"))
        XCTAssertEqual(s.list("active").filter { $0.hasSuffix(".json") }, [])
        XCTAssertEqual(try s.journal("job.retried").count, 0)
    }

    /// A record an older dsar left PENDING although its case was closed (request in active/): the
    /// next run's recovery ends it FAILED and sets its request aside, instead of skipping it for ever.
    func testAClosedPendingJobLeftInActiveIsEndedByTheNextRun() throws {
        let s = try TempSpool()
        let dirs = try setUp(s)
        try s.drop("p.json", #"{"request_id": "OLD-1", "action": "export", "email": "\#(email)"}"#)
        let crashed = try s.dsar(
            ["run", "--settle", "0", "--connectors", dirs.good], env: ["DSAR_CRASH_AT": "claim.recorded"], timeout: 60)
        XCTAssertTrue(crashed.signaled, crashed.stderr)
        let before = try XCTUnwrap(try s.record(requestID: "OLD-1"))
        XCTAssertEqual(before.status, .pending)
        // What `dsar close` of a PENDING job wrote before it ended such jobs.
        try JobStore(layout: s.layout).update(before.jobID) {
            $0.closure = JobRecord.Closure(at: $0.claimedAt, reason: .withdrawn)
        }
        XCTAssertTrue(FileSystem.exists(s.root + "/active/\(before.jobID).json"))
        let run = try s.dsar(["run", "--settle", "0", "--connectors", dirs.good])
        XCTAssertEqual(run.status, 0, run.stderr)
        let after = try XCTUnwrap(try s.record(requestID: "OLD-1"))
        XCTAssertEqual(after.status, .failed)
        XCTAssertTrue(after.error?.contains("closed (withdrawn) before the job finished") ?? false, after.error ?? "")
        XCTAssertEqual(s.list("active").filter { $0.hasSuffix(".json") }, [], "no identifiers left in active/")
        XCTAssertTrue(FileSystem.exists(s.root + "/failed/\(after.jobID).json"))
        XCTAssertNil(after.outbox, "it was not run")
    }

    /// withdrawn/refused cases are never delivered (also not with --force, also not with
    /// close_on_deliver); an answered one only with --force.
    func testClosedCasesAreDeliveredOnlyWhenAnsweredAndForced() throws {
        let s = try TempSpool()
        let dirs = try setUp(s, extraConfig: "close_on_deliver: true\n")
        let w = try runJob(s, "W-1", connectors: dirs.good)
        let r = try runJob(s, "F-1", connectors: dirs.good)
        let a = try runJob(s, "A-1", connectors: dirs.good)
        for (rec, reason) in [(w, "withdrawn"), (r, "refused"), (a, "answered")] {
            XCTAssertEqual(rec.status, .completed, rec.error ?? "")
            XCTAssertEqual(try s.dsar(["close", rec.jobID, "--reason", reason]).status, 0)
        }
        for (rec, reason) in [(w, "withdrawn"), (r, "refused")] {
            for more in [[], ["--force"]] {
                let d = try deliver(s, rec.jobID, more)
                XCTAssertEqual(d.status, 64, d.stdout + d.stderr)
                XCTAssertTrue(d.stderr.contains("the case was closed (\(reason)) at "), d.stderr)
                XCTAssertFalse(d.stdout.contains("passphrase: "), d.stdout)
                XCTAssertFalse(FileSystem.exists(s.root + "/outbox/\(rec.jobID)/subject.zip.age"))
            }
            XCTAssertEqual(try s.record(requestID: rec.requestID ?? "")?.closure?.reason.rawValue, reason)
        }
        let plain = try deliver(s, "A-1")
        XCTAssertEqual(plain.status, 64, plain.stdout + plain.stderr)
        XCTAssertTrue(plain.stderr.contains("the case was closed (answered) at "), plain.stderr)
        XCTAssertTrue(plain.stderr.contains("--force"), plain.stderr)
        let forced = try deliver(s, "A-1", ["--force"])
        XCTAssertEqual(forced.status, 0, forced.stderr)
        XCTAssertTrue(forced.stdout.contains("passphrase: "), forced.stdout)
        XCTAssertEqual(try s.journal("job.delivered").count, 1)
    }

    /// `dsar close` while another dsar holds the spool lock: exit 75 with what to do.
    func testCloseWhileARunHoldsTheLockSaysWhatToDo() throws {
        let s = try TempSpool()
        let dirs = try setUp(s)
        let rec = try runJob(s, "L-1", connectors: dirs.good)
        let watch = try s.start(["watch", "--connectors", dirs.good])
        defer {
            watch.signal(SIGTERM)
            _ = try? watch.wait(timeout: 60)
        }
        XCTAssertTrue(waitUntil(timeout: 60) { s.text(".lock").contains("watch") }, watch.stderrSoFar())
        let c = try s.dsar(["close", rec.jobID, "--reason", "answered"])
        XCTAssertEqual(c.status, 75, c.stdout + c.stderr)
        XCTAssertTrue(
            c.stderr.contains("a dsar run holds the spool lock")
                && c.stderr.contains("retry when it ends, or use --wait"),
            c.stderr)
        XCTAssertNil(try s.record(requestID: "L-1")?.closure)
    }

    // MARK: F8

    /// A submitter's request id that is also a prefix of another job's id does not redirect the
    /// reference: ambiguous, both job ids listed. The whole job id still names its job.
    func testARequestIDThatPrefixesAnotherJobIDIsAmbiguous() throws {
        let s = try TempSpool()
        let dirs = try setUp(s)
        let first = try runJob(s, "OP-1", connectors: dirs.good)
        let prefix = String(first.jobID.prefix(8))
        let sub = try s.dsar(["submit", "--request-id", prefix, "--email", "erin@example.net", "--action", "export"])
        XCTAssertEqual(sub.status, 0, sub.stderr)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dirs.good]).status, 0)
        let shadow = try XCTUnwrap(try s.record(requestID: prefix))
        XCTAssertNotEqual(shadow.jobID, first.jobID)
        for cmd in [["status", prefix], ["close", prefix, "--reason", "answered"]] {
            let r = try s.dsar(cmd)
            XCTAssertEqual(r.status, 64, r.stdout + r.stderr)
            XCTAssertTrue(r.stderr.contains(first.jobID) && r.stderr.contains(shadow.jobID), r.stderr)
            XCTAssertTrue(r.stderr.contains("give the whole job id"), r.stderr)
        }
        XCTAssertNil(try s.record(requestID: prefix)?.closure, "nothing was closed")
        XCTAssertNil(try s.record(requestID: "OP-1")?.closure)
        let whole = try s.dsar(["status", first.jobID])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertTrue(whole.stdout.contains(first.jobID), whole.stdout)
    }

    // MARK: F9

    /// An offset beyond ±23:59 is not RFC 3339: refused, never read as some other time.
    func testDSARNowWithAnOutOfRangeOffsetIsRefused() throws {
        let s = try TempSpool()
        try s.initialize()
        for bad in ["2027-01-10T00:00:00+25:00", "2027-01-10T00:00:00+24:00", "2027-01-10T00:00:00-03:60"] {
            let r = try s.dsar(["status"], env: ["DSAR_NOW": bad])
            XCTAssertEqual(r.status, 64, "\(bad): " + r.stdout + r.stderr)
            XCTAssertTrue(r.stderr.contains("is not an RFC 3339 time"), r.stderr)
        }
        let edge = try s.dsar(["status"], env: ["DSAR_NOW": "2027-01-10T00:00:00+23:59"])
        XCTAssertEqual(edge.status, 0, edge.stderr)
    }

    /// `dsar status`'s OVERDUE (Nd) and the overdue notification's days_left are one count; a
    /// closing time before the job was received is refused.
    func testStatusAndNotificationAgreeOnTheDaysOverdue() throws {
        let s = try TempSpool()
        let got = s.base + "/got"
        try s.initialize(
            extraConfig: """
                notify:
                  - name: team
                    on: [overdue]
                    timeout_seconds: 10
                    command: 'mkdir -p \(got) && cat > "\(got)/${DSAR_JOB_ID}.json"'

                """)
        try s.drop("o.json", requestJSON("OV-1", user: "701"))
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        let rec = try XCTUnwrap(try s.record(requestID: "OV-1"))
        // The red team's instant: 1 day 8 h 57 min past the deadline.
        let now = Timestamp.format(rec.deadlineDate.addingTimeInterval(86400 + 8 * 3600 + 57 * 60))
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"], env: ["DSAR_NOW": now]).status, 0)
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(got)/\(rec.jobID).json"))
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let daysLeft = try XCTUnwrap(summary["days_left"] as? Int)
        let status = try s.dsar(["status"], env: ["DSAR_NOW": now])
        let row = try XCTUnwrap(status.stdout.split(separator: "\n").first { $0.contains("OV-1") }, status.stdout)
        XCTAssertTrue(row.contains("OVERDUE (\(-daysLeft)d)"), "days_left \(daysLeft) vs \(row)")
        XCTAssertEqual(daysLeft, -1)
        let detail = try s.dsar(["status", "OV-1"], env: ["DSAR_NOW": now])
        XCTAssertTrue(detail.stdout.contains("OVERDUE by 1 days"), detail.stdout)

        let early = try s.dsar(
            ["close", "OV-1", "--reason", "answered"], env: ["DSAR_NOW": "2020-01-01T00:00:00Z"])
        XCTAssertEqual(early.status, 64, early.stdout + early.stderr)
        XCTAssertTrue(early.stderr.contains("cannot be closed before it was received"), early.stderr)
        XCTAssertNil(try s.record(requestID: "OV-1")?.closure)
    }
}
