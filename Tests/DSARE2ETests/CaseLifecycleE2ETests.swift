import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The case lifecycle through the real binary: `dsar close`, overdue and due soon on open jobs with
/// the fake clock (`DSAR_NOW`), the `due_soon` and `rejected` notifications, the case gauges of the
/// metrics file, and naming a job by its request id.
final class CaseLifecycleE2ETests: XCTestCase {
    /// A notifier storing each summary as `<dir>/<job id or drop>.<event>.json`.
    func recorder(_ name: String, dir: String, on: String) -> String {
        """
          - name: \(name)
            on: \(on)
            timeout_seconds: 10
            command: 'mkdir -p \(dir) && cat > "\(dir)/${DSAR_JOB_ID:-$DSAR_DROP}.${DSAR_EVENT#*.}.json"'

        """
    }

    func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], path)
    }

    func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    /// The metrics textfile parsed by the Prometheus client library's own parser.
    func parseMetrics(_ path: String) throws -> [String: Double] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    print(f"{s.name} {s.value!r}")
            """
        let r = try runCommand("/usr/bin/python3", ["-c", script, path])
        guard r.status == 0 else { throw TestFailure("the Prometheus parser rejected \(path): \(r.stderr)") }
        var out: [String: Double] = [:]
        for line in r.stdout.split(separator: "\n") where !line.contains("{") {
            let parts = line.split(separator: " ")
            if parts.count == 2 { out[String(parts[0])] = Double(parts[1]) }
        }
        return out
    }

    func stamp(_ d: Date) -> String { Timestamp.format(d) }

    func testDueSoonThenOverdueOnACompletedButUnansweredJobWithTheFakeClock() throws {
        let s = try TempSpool()
        let got = s.base + "/got"
        try s.initialize(
            extraConfig: "due_soon_days: 5\nnotify:\n" + recorder("team", dir: got, on: "[due_soon, overdue]"))
        let received = stamp(Date().addingTimeInterval(-3 * 86400))
        try s.drop("a.json", requestJSON("CASE-A", user: "501", extra: #", "received_at": "\#(received)""#))
        try s.drop("b.json", requestJSON("CASE-B", user: "502", extra: #", "received_at": "\#(received)""#))
        let metrics = s.base + "/dsar.prom"
        let first = try s.dsar(["run", "--settle", "0", "--metrics-file", metrics])
        XCTAssertEqual(first.status, 0, first.stderr)
        let a = try XCTUnwrap(try s.record(requestID: "CASE-A"))
        let b = try XCTUnwrap(try s.record(requestID: "CASE-B"))
        XCTAssertEqual(a.status, .completed)
        XCTAssertNil(a.closure, "a finished job is still an open case")
        var m = try parseMetrics(metrics)
        XCTAssertEqual(m["dsar_jobs_open"], 2)
        XCTAssertEqual(m["dsar_jobs_overdue"], 0)
        XCTAssertEqual(m["dsar_jobs_due_soon"], 0)
        XCTAssertEqual(files(got), [], "four weeks left: nothing to say yet")

        // B is withdrawn; closed cases are never due soon or overdue.
        let withdrawn = try s.dsar(["close", b.jobID, "--reason", "withdrawn"])
        XCTAssertEqual(withdrawn.status, 0, withdrawn.stderr)

        // Ten days before the deadline: still quiet. Three days before: due_soon, once.
        let deadline = a.deadlineDate
        let tenBefore = stamp(deadline.addingTimeInterval(-10 * 86400))
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"], env: ["DSAR_NOW": tenBefore]).status, 0)
        XCTAssertEqual(files(got), [])
        let threeBefore = stamp(deadline.addingTimeInterval(-3 * 86400))
        let soon = try s.dsar(
            ["run", "--settle", "0", "--metrics-file", metrics], env: ["DSAR_NOW": threeBefore])
        XCTAssertEqual(soon.status, 0, soon.stderr)
        XCTAssertEqual(files(got), ["\(a.jobID).due_soon.json"])
        let summary = try json("\(got)/\(a.jobID).due_soon.json")
        XCTAssertEqual(summary["event"] as? String, "job.due_soon")
        XCTAssertEqual(summary["days_left"] as? Int, 3)
        XCTAssertEqual(summary["open"] as? Bool, true)
        XCTAssertEqual(summary["status"] as? String, "COMPLETED")
        XCTAssertEqual(summary["queued_at"] as? String, threeBefore, "the notification uses the same clock")
        m = try parseMetrics(metrics)
        XCTAssertEqual(m["dsar_jobs_open"], 1)
        XCTAssertEqual(m["dsar_jobs_due_soon"], 1)
        XCTAssertEqual(m["dsar_jobs_overdue"], 0)
        let status = try s.dsar(["status"], env: ["DSAR_NOW": threeBefore])
        XCTAssertTrue(status.stdout.contains("2 jobs, 1 open, 0 overdue, 1 due soon"), status.stdout)
        try FileManager.default.removeItem(atPath: "\(got)/\(a.jobID).due_soon.json")
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"], env: ["DSAR_NOW": threeBefore]).status, 0)
        XCTAssertEqual(files(got), [], "due_soon is raised once per job")
        XCTAssertEqual(try s.journal("job.due_soon").count, 1)

        // Two days after the deadline: the COMPLETED but unanswered job is overdue.
        let twoAfter = stamp(deadline.addingTimeInterval(2 * 86400 + 60))
        let late = try s.dsar(["run", "--settle", "0", "--metrics-file", metrics], env: ["DSAR_NOW": twoAfter])
        XCTAssertEqual(late.status, 0, late.stderr)
        XCTAssertEqual(files(got), ["\(a.jobID).overdue.json"])
        XCTAssertEqual(try json("\(got)/\(a.jobID).overdue.json")["status"] as? String, "COMPLETED")
        XCTAssertEqual(try parseMetrics(metrics)["dsar_jobs_overdue"], 1)
        let overdue = try s.dsar(["status"], env: ["DSAR_NOW": twoAfter])
        let row = try XCTUnwrap(overdue.stdout.split(separator: "\n").first { $0.contains("CASE-A") })
        XCTAssertTrue(row.contains("OVERDUE (2d)"), String(row))
        XCTAssertTrue(overdue.stdout.contains("2 jobs, 1 open, 1 overdue, 0 due soon"), overdue.stdout)
        let journaled = try XCTUnwrap(try s.journal("job.overdue").first?["details"] as? [String: Any])
        XCTAssertEqual(journaled["status"] as? String, "COMPLETED")

        // Answered late: closed, no longer overdue, the closure in the detail view.
        let close = try s.dsar(["close", "CASE-A", "--reason", "answered"], env: ["DSAR_NOW": twoAfter])
        XCTAssertEqual(close.status, 0, close.stderr)
        XCTAssertEqual(try s.record(requestID: "CASE-A")?.closure?.at, twoAfter)
        let detail = try s.dsar(["status", "CASE-A"], env: ["DSAR_NOW": twoAfter])
        XCTAssertTrue(
            detail.stdout.contains("case:       closed at \(twoAfter) (answered), after the deadline"), detail.stdout)
        XCTAssertFalse(detail.stdout.contains("OVERDUE"), detail.stdout)
        XCTAssertTrue(
            try s.dsar(["status"], env: ["DSAR_NOW": twoAfter]).stdout.contains("2 jobs, 0 open, 0 overdue"))
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    func testCloseRulesAndTheNoteStaysOutOfTheJournal() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("t.json", requestJSON("T-1", user: "601"))
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        let done = try XCTUnwrap(try s.record(requestID: "T-1"))

        // A job left RUNNING (a run killed right after it started).
        try s.drop("r.json", requestJSON("T-2", user: "602"))
        let killed = try s.dsar(["run", "--settle", "0"], env: ["DSAR_CRASH_AT": "job.running"], timeout: 30)
        XCTAssertTrue(killed.signaled, killed.stderr)
        let running = try XCTUnwrap(try s.record(requestID: "T-2"))
        XCTAssertEqual(running.status, .running)
        let early = try s.dsar(["close", running.jobID, "--reason", "answered"])
        XCTAssertEqual(early.status, 64, early.stderr)
        XCTAssertTrue(early.stderr.contains("is RUNNING"), early.stderr)
        XCTAssertTrue(early.stderr.contains("--reason withdrawn"), early.stderr)
        XCTAssertNil(try s.record(requestID: "T-2")?.closure, "nothing changed")
        XCTAssertEqual(try s.dsar(["close", running.jobID, "--reason", "withdrawn"]).status, 0)

        let badReason = try s.dsar(["close", done.jobID, "--reason", "done"])
        XCTAssertEqual(badReason.status, 64)
        XCTAssertTrue(badReason.stderr.contains("answered, withdrawn, refused"), badReason.stderr)

        let now = "2027-01-10T00:00:00Z"
        let note = "sent to alice@example.com by registered mail"
        let ok = try s.dsar(["close", done.jobID, "--reason", "answered", "--note", note], env: ["DSAR_NOW": now])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let rec = try XCTUnwrap(try s.record(requestID: "T-1"))
        XCTAssertEqual(rec.closure, JobRecord.Closure(at: now, reason: .answered, note: note))
        let again = try s.dsar(["close", done.jobID, "--reason", "refused"])
        XCTAssertEqual(again.status, 64)
        XCTAssertTrue(again.stderr.contains("already closed at \(now) (answered)"), again.stderr)
        XCTAssertEqual(try s.record(requestID: "T-1")?.closure?.reason, .answered)

        let closed = try s.journal("job.closed")
        XCTAssertEqual(closed.count, 2)
        let details = try XCTUnwrap(
            closed.first { $0["job_id"] as? String == done.jobID }?["details"] as? [String: Any])
        XCTAssertEqual(details["reason"] as? String, "answered")
        XCTAssertEqual(details["note"] as? Bool, true)
        XCTAssertEqual(details["status"] as? String, "COMPLETED")
        for seg in s.list("journal") where seg.hasSuffix(".jsonl") {
            XCTAssertFalse(s.text("journal/" + seg).contains("alice"), "the note stays out of the journal")
        }
        let events = try s.dsar(["events", "T-1"])
        XCTAssertTrue(events.stdout.contains("job.closed") && events.stdout.contains("reason=answered"), events.stdout)

        // The withdrawn job is not run by the next run (nobody is to receive it).
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        let withdrawn = try XCTUnwrap(try s.record(requestID: "T-2"))
        XCTAssertEqual(withdrawn.status, .failed, "closed before it ended: it never claims to be answered")
        XCTAssertTrue(withdrawn.error?.contains("closed (withdrawn) before the job finished") ?? false)
        XCTAssertNil(withdrawn.outbox)
        // Its request left active/ (nothing is lost: failed/ keeps it with the reason).
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.root + "/active/\(withdrawn.jobID).json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.root + "/failed/\(withdrawn.jobID).json"))
        XCTAssertTrue(s.text("failed/\(withdrawn.jobID).reason").contains("closed (withdrawn)"))
        XCTAssertEqual(withdrawn.closure?.reason, .withdrawn)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)

        // An invalid fake clock is an error, not the real time.
        let bad = try s.dsar(["status"], env: ["DSAR_NOW": "next tuesday"])
        XCTAssertEqual(bad.status, 64)
        XCTAssertTrue(bad.stderr.contains("DSAR_NOW=\"next tuesday\" is not an RFC 3339 time"), bad.stderr)
    }

    func testTheRejectedNotificationNamesThePseudonymAndNoPersonalData() throws {
        let s = try TempSpool()
        let got = s.base + "/got"
        try s.initialize(extraConfig: "notify:\n" + recorder("team", dir: got, on: "[rejected]"))
        try s.drop("first.json", #"{"request_id": "alice@example.com", "action": "export", "user_id": "701"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        XCTAssertEqual(files(got), [], "a claimed request raises no rejected notification")
        // A duplicate whose reason quotes its request id (an e-mail address), and a drop named by one.
        try s.drop("second.json", #"{"request_id": "alice@example.com", "action": "export", "user_id": "701"}"#)
        try s.drop("alice@example.com.json", #"{"action": "export"}"#)
        // A request holding an e-mail address, refused for another field.
        try s.drop("bad.json", #"{"action": "export", "email": "alice@example.com", "regulation": "hipaa"}"#)
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 2, r.stderr)
        let drops = Set(
            (try s.journal("request.rejected") + s.journal("request.duplicate")).compactMap {
                ($0["details"] as? [String: Any])?["drop"] as? String
            })
        XCTAssertEqual(drops.count, 3)
        XCTAssertEqual(Set(files(got)), Set(drops.map { "\($0).rejected.json" }))
        for d in drops {
            let summary = try json("\(got)/\(d).rejected.json")
            XCTAssertEqual(summary["event"] as? String, "request.rejected")
            XCTAssertEqual(summary["drop"] as? String, d)
            XCTAssertFalse((summary["reason"] as? String ?? "").isEmpty, "\(summary)")
            XCTAssertNil(summary["job_id"])
        }
        let reasons = try drops.map { try json("\(got)/\($0).rejected.json")["reason"] as? String ?? "" }
        XCTAssertTrue(reasons.contains { $0.contains("duplicate") }, "\(reasons)")
        XCTAssertTrue(reasons.contains { $0.contains("regulation") }, "\(reasons)")
        for name in files(got) {
            let text = try String(contentsOfFile: got + "/" + name, encoding: .utf8)
            XCTAssertFalse(text.contains("alice"), "\(name) leaks the e-mail address: \(text)")
        }
        XCTAssertEqual(s.list("notify"), [])
        let sent = try s.journal("notify.sent").compactMap { ($0["details"] as? [String: Any])?["event"] as? String }
        XCTAssertEqual(sent, ["request.rejected", "request.rejected", "request.rejected"])
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    func testStatusEventsAndCloseNameAJobByRequestIDOrPrefix() throws {
        let s = try TempSpool()
        try s.initialize()
        try s.drop("a.json", requestJSON("TICKET-4711", user: "801"))
        try s.drop("b.json", requestJSON("TICKET-4712", user: "802"))
        XCTAssertEqual(try s.dsar(["run", "--settle", "0"]).status, 0)
        let a = try XCTUnwrap(try s.record(requestID: "TICKET-4711"))
        let b = try XCTUnwrap(try s.record(requestID: "TICKET-4712"))

        let detail = try s.dsar(["status", "TICKET-4711"])
        XCTAssertEqual(detail.status, 0, detail.stderr)
        XCTAssertTrue(detail.stdout.contains("job:        \(a.jobID)"), detail.stdout)
        let events = try s.dsar(["events", "TICKET-4712"])
        XCTAssertEqual(events.status, 0, events.stderr)
        XCTAssertTrue(events.stdout.contains("job.finished"), events.stdout)
        XCTAssertFalse(events.stdout.contains(a.jobID), "only that job's events")

        // A unique prefix names its job; a shared one lists the candidates by job id only.
        var common = ""
        for (x, y) in zip(a.jobID, b.jobID) where x == y { common.append(x) }
        common = String(a.jobID.prefix(min(common.count, 35)))
        while common.count > 4, String(b.jobID.prefix(common.count)) != common { common.removeLast() }
        let unique = String(a.jobID.prefix(common.count + 1))
        XCTAssertEqual(try s.dsar(["status", "--json", unique]).status, 0)
        if common.count >= 4 {
            let ambiguous = try s.dsar(["status", common])
            XCTAssertEqual(ambiguous.status, 64, ambiguous.stderr)
            XCTAssertTrue(ambiguous.stderr.contains(a.jobID) && ambiguous.stderr.contains(b.jobID), ambiguous.stderr)
            XCTAssertFalse(ambiguous.stderr.contains("TICKET"), ambiguous.stderr)
        }
        let unknown = try s.dsar(["events", "TICKET-9999"])
        XCTAssertEqual(unknown.status, 66, unknown.stderr)
        XCTAssertTrue(unknown.stderr.contains("TICKET-9999"), unknown.stderr)

        XCTAssertEqual(try s.dsar(["close", "TICKET-4712", "--reason", "refused"]).status, 0)
        XCTAssertEqual(try s.record(requestID: "TICKET-4712")?.closure?.reason, .refused)
        XCTAssertNil(try s.record(requestID: "TICKET-4711")?.closure)
    }
}
