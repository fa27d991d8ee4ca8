import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Operations through the real binary: `notify:` commands (payload, events, timeouts, retry on the
/// next run), the Prometheus textfile of `--metrics-file`, and scan progress on a terminal.
final class OperationsE2ETests: XCTestCase {

    /// A CSV source holding alice (email, user_id 1042) and a `crm` plugin that fails when `failing`.
    func makeConnectors(_ s: TempSpool, failingPlugin: Bool = false, slowPlugin: Double? = nil) throws -> String {
        let dir = s.base + "/connectors"
        try writeFile(
            dir + "/data/accounts.csv", "email,user_id,name\nalice@example.com,1042,Alice\nbob@example.com,7,Bob\n")
        try writeFile(
            dir + "/accounts.yaml",
            "name: accounts\ntype: csv\npaths: [ data/accounts.csv ]\ncolumns: { email: email, user_id: user_id }\n")
        if failingPlugin {
            try writeFile(dir + "/broken.sh", "#!/bin/sh\necho 'crm unreachable' >&2\nexit 3\n", mode: 0o755)
            try writeFile(dir + "/broken.yaml", "name: crm\ntype: exec\ncommand: [ ./broken.sh ]\nretries: 0\n")
        }
        if let slow = slowPlugin {
            try writeFile(dir + "/slow.sh", "#!/bin/sh\ncat >/dev/null\nsleep \(slow)\n", mode: 0o755)
            try writeFile(dir + "/slow.yaml", "name: slowcrm\ntype: exec\ncommand: [ ./slow.sh ]\n")
        }
        return dir
    }

    /// A notifier that stores each summary as `<dir>/<job>.<event>.json` with its environment.
    func recorder(_ name: String, dir: String, on: String = "[completed, failed, partial, overdue]") -> String {
        """
          - name: \(name)
            on: \(on)
            timeout_seconds: 10
            command: 'mkdir -p \(dir) && cat > "\(dir)/$DSAR_JOB_ID.${DSAR_EVENT#job.}.json" && echo "$DSAR_STATUS $DSAR_OUTBOX" > "\(dir)/$DSAR_JOB_ID.${DSAR_EVENT#job.}.env"'

        """
    }

    func json(_ path: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], path)
    }

    func testNotifiersGetASummaryWithoutPersonalDataForEachEvent() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let got = s.base + "/got"
        let failedOnly = s.base + "/failed-only"
        try s.initialize(
            extraConfig: "notify:\n" + recorder("team", dir: got) + recorder("oncall", dir: failedOnly, on: "[failed]"))
        // Received two months ago: overdue the moment it is claimed.
        try s.drop(
            "late.json",
            #"{"request_id": "REQ-LATE", "action": "export", "email": "alice@example.com", "received_at": "2026-01-05T10:00:00Z"}"#
        )
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("notifications: 2 sent, 0 failed"), r.stdout)
        let rec = try XCTUnwrap(try s.record(requestID: "REQ-LATE"))
        XCTAssertEqual(rec.status, .completed)

        for event in ["overdue", "completed"] {
            let summary = try json("\(got)/\(rec.jobID).\(event).json")
            XCTAssertEqual(summary["event"] as? String, "job." + event)
            XCTAssertEqual(summary["job_id"] as? String, rec.jobID)
            XCTAssertEqual(summary["request_id"] as? String, "REQ-LATE")
            XCTAssertEqual(summary["deadline"] as? String, rec.deadline)
            XCTAssertEqual(summary["overdue"] as? Bool, true)
            XCTAssertEqual(summary["action"] as? String, "export")
        }
        let done = try json("\(got)/\(rec.jobID).completed.json")
        XCTAssertEqual(done["status"] as? String, "COMPLETED")
        XCTAssertEqual(done["records"] as? Int, 1)
        let outboxPath = try XCTUnwrap(done["outbox_path"] as? String)
        XCTAssertEqual(outboxPath, s.root + "/" + (rec.outbox ?? "?"))
        XCTAssertTrue(
            FileManager.default.fileExists(atPath: outboxPath + "/manifest.json"),
            "the summary names the published entry")
        XCTAssertEqual(
            try String(contentsOfFile: "\(got)/\(rec.jobID).completed.env", encoding: .utf8),
            "COMPLETED \(outboxPath)\n",
            "DSAR_STATUS and DSAR_OUTBOX are set for the command")
        // No personal data in anything a notifier received.
        for name in try FileManager.default.contentsOfDirectory(atPath: got) {
            let text = try String(contentsOfFile: got + "/" + name, encoding: .utf8)
            for pd in ["alice", "1042", "Alice"] { XCTAssertFalse(text.contains(pd), "\(name) leaks \(pd): \(text)") }
        }
        // `on: [failed]` heard nothing; the queue is empty; both deliveries are journaled.
        XCTAssertFalse(FileManager.default.fileExists(atPath: failedOnly))
        XCTAssertEqual(s.list("notify"), [])
        let sent = try s.journal("notify.sent")
        XCTAssertEqual(
            Set(sent.compactMap { ($0["details"] as? [String: Any])?["event"] as? String }),
            ["job.overdue", "job.completed"])
        XCTAssertEqual(try s.journal("job.overdue").count, 1)
        // Overdue is raised once per job, not on every run.
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 0)
        XCTAssertEqual(try s.journal("job.overdue").count, 1)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    func testPartialAndFailedJobsNotify() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s, failingPlugin: true)
        let got = s.base + "/got"
        try s.initialize(extraConfig: "notify:\n" + recorder("team", dir: got, on: "[failed, partial]"))
        try s.drop("a.json", #"{"request_id": "REQ-P", "action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        let partial = try XCTUnwrap(try s.record(requestID: "REQ-P"))
        XCTAssertEqual(partial.status, .partial)
        let summary = try json("\(got)/\(partial.jobID).partial.json")
        XCTAssertEqual(summary["status"] as? String, "PARTIAL")
        XCTAssertTrue((summary["error"] as? String)?.contains("crm unreachable") ?? false, "\(summary)")

        // Only the failing plugin left: the job fails, and a failed job notifies too.
        try FileManager.default.removeItem(atPath: dir + "/accounts.yaml")
        try s.drop("b.json", #"{"request_id": "REQ-F", "action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir]).status, 1)
        let failed = try XCTUnwrap(try s.record(requestID: "REQ-F"))
        XCTAssertEqual(failed.status, .failed)
        XCTAssertEqual(try json("\(got)/\(failed.jobID).failed.json")["status"] as? String, "FAILED")
        XCTAssertEqual(
            Set(try FileManager.default.contentsOfDirectory(atPath: got).filter { $0.hasSuffix(".json") }).count, 2)
    }

    func testFailedOrHungNotificationIsJournaledRetriedAndNeverFailsTheJob() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let flag = s.base + "/smtp-up"
        let got = s.base + "/got"
        try s.initialize(
            extraConfig: """
                notify:
                  - name: mail
                    on: [completed]
                    command: [ "/bin/sh", "-c", "if [ -e \(flag) ]; then mkdir -p \(got) && cat > \(got)/$DSAR_JOB_ID.json; else echo 'sendmail: cannot connect to smtp.example.com' >&2; exit 75; fi" ]
                  - name: hung
                    on: [completed]
                    timeout_seconds: 1
                    command: sleep 60

                """)
        try s.drop("r.json", #"{"request_id": "REQ-1", "action": "export", "email": "alice@example.com"}"#)
        let start = Date()
        let r1 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r1.status, 0, "a failed notification never fails the run: \(r1.stderr)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 30, "the hung notifier is killed at its 1 s timeout")
        XCTAssertTrue(r1.stdout.contains("notifications: 0 sent, 2 failed"), r1.stdout)
        let rec = try XCTUnwrap(try s.record(requestID: "REQ-1"))
        XCTAssertEqual(rec.status, .completed)
        XCTAssertEqual(
            s.list("notify").sorted(), ["\(rec.jobID).completed.hung.json", "\(rec.jobID).completed.mail.json"])
        let failures = try s.journal("notify.failed").compactMap { $0["details"] as? [String: Any] }
        XCTAssertEqual(failures.count, 2)
        let mailFailure = try XCTUnwrap(failures.first { $0["notifier"] as? String == "mail" })
        XCTAssertEqual(
            mailFailure["reason"] as? String, "exited with status 75: sendmail: cannot connect to smtp.example.com")
        XCTAssertTrue(
            (failures.first { $0["notifier"] as? String == "hung" }?["reason"] as? String)?.contains(
                "timed out after 1 s") ?? false)
        let queued = try json(s.root + "/notify/\(rec.jobID).completed.mail.json")
        XCTAssertEqual(queued["attempts"] as? Int, 1)

        // The next run retries: mail now succeeds (attempt 2); the hung one fails again and stays queued.
        FileManager.default.createFile(atPath: flag, contents: Data())
        let r2 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertTrue(r2.stdout.contains("notifications: 1 sent, 1 failed"), r2.stdout)
        XCTAssertEqual(try json("\(got)/\(rec.jobID).json")["job_id"] as? String, rec.jobID)
        let sent = try XCTUnwrap(try s.journal("notify.sent").first?["details"] as? [String: Any])
        XCTAssertEqual(sent["notifier"] as? String, "mail")
        XCTAssertEqual(sent["attempt"] as? Int, 2)
        XCTAssertEqual(s.list("notify"), ["\(rec.jobID).completed.hung.json"])
        XCTAssertEqual(try json(s.root + "/notify/\(rec.jobID).completed.hung.json")["attempts"] as? Int, 2)

        // A notifier removed from the config: its queued entry is dropped with a journal entry.
        var config = s.text("config.yaml")
        config = String(config[..<config.range(of: "  - name: hung")!.lowerBound])
        try config.write(toFile: s.root + "/config.yaml", atomically: true, encoding: .utf8)
        let r3 = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r3.status, 0, r3.stderr)
        XCTAssertEqual(s.list("notify"), [])
        XCTAssertEqual(try s.journal("notify.abandoned").count, 1)
        XCTAssertEqual(try s.dsar(["audit", "verify"]).status, 0)
    }

    func testACrashRightAfterTheRecordIsFinalStillNotifies() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        let got = s.base + "/got"
        try s.initialize(extraConfig: "notify:\n" + recorder("team", dir: got))
        try s.drop("r.json", #"{"request_id": "C-1", "action": "export", "email": "alice@example.com"}"#)
        // Killed after the job record says COMPLETED, before the notification is queued.
        let crashed = try s.dsar(["run", "--settle", "0", "--connectors", dir], env: ["DSAR_CRASH_AT": "job.recorded"])
        XCTAssertNotEqual(crashed.status, 0)
        let rec = try XCTUnwrap(try s.record(requestID: "C-1"))
        XCTAssertEqual(rec.status, .completed)
        XCTAssertEqual(s.list("notify"), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: got))
        // The next run's recovery queues and sends it.
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try json("\(got)/\(rec.jobID).completed.json")["status"] as? String, "COMPLETED")
        XCTAssertEqual(s.list("notify"), [])
    }

    func testBadNotifyConfigNamesFileLineAndField() throws {
        let s = try TempSpool()
        try s.initialize(
            extraConfig: "notify:\n  - name: mail\n    on: [done]\n    command: /bin/true\n  - name: x y\n")
        let r = try s.dsar(["run", "--settle", "0"])
        XCTAssertEqual(r.status, 78, r.stderr)
        XCTAssertTrue(
            r.stderr.contains("config.yaml:4: notify[0].on: unknown event \\\"done\\\"")
                || r.stderr.contains("config.yaml:4: notify[0].on: unknown event \"done\""), r.stderr)
        XCTAssertTrue(r.stderr.contains("notify[1].name: expected 1 to 64 letters"), r.stderr)
        XCTAssertTrue(r.stderr.contains("command is missing"), r.stderr)
    }

    // MARK: - Metrics

    /// Parses the textfile with the Prometheus client library's own parser (python3-prometheus-client).
    func parseMetrics(_ path: String) throws -> [String: Double] {
        let script = """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in fam.samples:
                    labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
                    print(f"{s.name}{{{labels}}} {s.value!r}")
            """
        let r = try runCommand("/usr/bin/python3", ["-c", script, path])
        guard r.status == 0 else { throw TestFailure("the Prometheus parser rejected \(path): \(r.stderr)") }
        var out: [String: Double] = [:]
        for line in r.stdout.split(separator: "\n") {
            guard let sp = line.lastIndex(of: " ") else { continue }
            out[String(line[..<sp])] = Double(line[line.index(after: sp)...])
        }
        return out
    }

    func testMetricsFileIsValidPrometheusTextAndCarriesLastSuccess() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        let metricsDir = s.base + "/textfile"
        try FileManager.default.createDirectory(atPath: metricsDir, withIntermediateDirectories: true)
        let path = metricsDir + "/dsar.prom"
        try s.drop("a.json", #"{"request_id": "M-1", "action": "export", "email": "alice@example.com"}"#)
        try s.drop("b.json", #"{"request_id": "M-2", "action": "export", "user_id": "7"}"#)
        try s.drop("bad.json", #"{"action": "export"}"#)
        let before = Date().timeIntervalSince1970.rounded(.down)
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir, "--metrics-file", path])
        XCTAssertEqual(r.status, 2, "a rejected request: \(r.stderr)")
        let m = try parseMetrics(path)
        XCTAssertEqual(m[#"dsar_jobs{status="COMPLETED"}"#], 2)
        XCTAssertEqual(m[#"dsar_jobs{status="FAILED"}"#], 0)
        XCTAssertEqual(m["dsar_jobs_overdue{}"], 0)
        XCTAssertEqual(m[#"dsar_run_jobs_finished_total{status="COMPLETED"}"#], 2)
        XCTAssertEqual(m["dsar_run_requests_rejected_total{}"], 1)
        XCTAssertEqual(m[#"dsar_connector_records_found_total{connector="accounts"}"#], 2)
        // Both subjects' rows reveal another identifier, so the batch is scanned in two rounds.
        func rounds(_ jobs: Set<String>) throws -> Int {
            Set(
                try s.journal("connector.finished").filter { jobs.contains($0["job_id"] as? String ?? "") }
                    .compactMap { ($0["details"] as? [String: Any])?["round"] as? Int }
            ).count
        }
        let firstJobs = Set(try s.records().map(\.jobID))
        XCTAssertEqual(try rounds(firstJobs), 2)
        let csvSize = Double(try FileSystem.status(dir + "/data/accounts.csv")!.size)
        XCTAssertEqual(
            m[#"dsar_connector_bytes_scanned_total{connector="accounts"}"#], 2 * csvSize, "every round reads the file")
        XCTAssertNotNil(m[#"dsar_connector_scan_seconds_total{connector="accounts"}"#])
        let firstSuccess = try XCTUnwrap(m["dsar_last_success_timestamp_seconds{}"])
        XCTAssertGreaterThanOrEqual(firstSuccess, before)
        XCTAssertEqual(m["dsar_notifications_pending{}"], 0)
        let st = try XCTUnwrap(try FileSystem.status(path))
        XCTAssertEqual(st.mode & 0o777, 0o644)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: metricsDir), ["dsar.prom"],
            "no temp file left beside it")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        for pd in ["alice", "1042", "M-1"] { XCTAssertFalse(text.contains(pd), "metrics leak \(pd)") }

        // A failing run keeps the earlier last-success time and counts the failure.
        try writeFile(dir + "/broken.sh", "#!/bin/sh\nexit 1\n", mode: 0o755)
        try writeFile(dir + "/broken.yaml", "name: crm\ntype: exec\ncommand: [ ./broken.sh ]\nretries: 0\n")
        sleep(1)
        try s.drop("c.json", #"{"request_id": "M-3", "action": "export", "email": "alice@example.com"}"#)
        XCTAssertEqual(try s.dsar(["run", "--settle", "0", "--connectors", dir, "--metrics-file", path]).status, 1)
        let m2 = try parseMetrics(path)
        XCTAssertEqual(m2[#"dsar_jobs{status="PARTIAL"}"#], 1)
        XCTAssertEqual(m2[#"dsar_jobs{status="COMPLETED"}"#], 2)
        let third = try XCTUnwrap(try s.record(requestID: "M-3"))
        XCTAssertEqual(
            m2[#"dsar_connector_failures_total{connector="crm"}"#], Double(try rounds([third.jobID])),
            "one failed scan per round")
        XCTAssertEqual(
            m2[#"dsar_connector_records_found_total{connector="accounts"}"#], 1, "this run's job found one row")
        XCTAssertEqual(
            m2["dsar_last_success_timestamp_seconds{}"], firstSuccess, "the last success is carried over, not reset")

        // A bad path is a clear error.
        let bad = try s.dsar([
            "run", "--settle", "0", "--connectors", dir, "--metrics-file", s.base + "/nope/dsar.prom",
        ])
        XCTAssertEqual(bad.status, 64, "a usage error, before anything is processed")
        XCTAssertTrue(
            bad.stderr.contains("the directory of --metrics-file \(s.base)/nope/dsar.prom does not exist"), bad.stderr)
    }

    func testMaxBatchJobsSplitsABatchIntoPassesOverTheSources() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize(extraConfig: "max_batch_jobs: 2\n")
        // Five subjects the sources do not know (no identity expansion): passes of 2 + 2 + 1 jobs.
        for k in 1...5 {
            try s.drop(
                "r\(k).json", #"{"request_id": "B-\#(k)", "action": "export", "email": "nobody\#(k)@example.net"}"#)
        }
        let path = s.base + "/dsar.prom"
        let r = try s.dsar(["run", "--settle", "0", "--connectors", dir, "--metrics-file", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try s.records().filter { $0.status == .completed }.count, 5)
        let csvSize = Double(try FileSystem.status(dir + "/data/accounts.csv")!.size)
        XCTAssertEqual(
            try parseMetrics(path)[#"dsar_connector_bytes_scanned_total{connector="accounts"}"#], 3 * csvSize,
            "three passes")
    }

    func testWatchRewritesMetricsWhileRunning() throws {
        let s = try TempSpool()
        let dir = try makeConnectors(s)
        try s.initialize()
        let path = s.base + "/dsar.prom"
        let w = try s.start(["watch", "--settle", "0", "--rescan", "0.2", "--connectors", dir, "--metrics-file", path])
        defer { w.signal(SIGKILL) }
        XCTAssertTrue(
            waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: path) }, "watch writes the file at start")
        XCTAssertEqual(try parseMetrics(path)[#"dsar_info{mode="watch",version="\#(DSARVersion.string)"}"#], 1)
        try s.drop("a.json", #"{"request_id": "W-1", "action": "export", "email": "alice@example.com"}"#)
        XCTAssertTrue(
            waitUntil(timeout: 60) { ((try? self.parseMetrics(path)) ?? [:])[#"dsar_jobs{status="COMPLETED"}"#] == 1 },
            "the metrics file shows the finished job while watch runs: \(w.stderrSoFar())")
        w.signal(SIGTERM)
        XCTAssertEqual(try w.wait(timeout: 30).status, 0)
    }

    // MARK: - Progress

    func testProgressIsShownOnATerminalOnly() throws {
        guard let script = which("script") else { throw XCTSkip("util-linux script(1) is not installed") }
        let s = try TempSpool()
        let dir = try makeConnectors(s, slowPlugin: 2.5)
        try s.initialize()
        try s.drop("a.json", #"{"request_id": "P-1", "action": "export", "email": "alice@example.com"}"#)
        // Under a pseudo-terminal (script -c), with the default --progress auto and text logs.
        let cmd = "\(dsarBinary) run --settle 0 --connectors \(dir) --spool \(s.root) --log-level warning"
        let r = try runCommand(script, ["-qfec", cmd, s.base + "/typescript"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let tty = r.stdout
        XCTAssertTrue(tty.contains("\u{1B}[2K"), "redrawn in place on a terminal: \(tty.debugDescription)")
        XCTAssertTrue(
            tty.contains("scan  slowcrm"), "a running connector is shown with its elapsed time: \(tty.debugDescription)"
        )
        let csvSize = try FileSystem.status(dir + "/data/accounts.csv")!.size
        XCTAssertTrue(
            tty.contains("done  accounts  \(csvSize) B in "), "bytes scanned of the source: \(tty.debugDescription)")
        XCTAssertTrue(tty.contains("done  slowcrm "), tty.debugDescription)

        // Not a terminal: nothing, unless asked for.
        try FileManager.default.removeItem(atPath: dir + "/slow.yaml")
        try s.drop("b.json", #"{"request_id": "P-2", "action": "export", "email": "bob@example.com"}"#)
        let quiet = try s.dsar(["run", "--settle", "0", "--connectors", dir])
        XCTAssertFalse(quiet.stderr.contains("progress:") || quiet.stderr.contains("\u{1B}["), quiet.stderr)
        try s.drop("c.json", #"{"request_id": "P-3", "action": "export", "email": "bob@example.com"}"#)
        let asked = try s.dsar(["run", "--settle", "0", "--connectors", dir, "--progress", "always"])
        XCTAssertTrue(asked.stderr.contains("progress: done  accounts  \(csvSize) B in "), asked.stderr)
        XCTAssertFalse(asked.stderr.contains("\u{1B}["), "no escapes when not a terminal")
    }
}
