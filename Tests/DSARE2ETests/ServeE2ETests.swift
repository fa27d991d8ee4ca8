import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar serve` through the real binary on loopback, with curl as the client: the HTTP API writes
/// into the same inbox and reads the same records and journal as `dsar run` and `dsar status`.
final class ServeE2ETests: XCTestCase {
    static let serveNone = "serve:\n  auth: none\n"

    func serving(_ extraConfig: String = serveNone) throws -> (TempSpool, ServeProcess) {
        let spool = try TempSpool()
        try spool.initialize(extraConfig: extraConfig)
        return (spool, try ServeProcess(spool))
    }

    func testSubmitRunStatusEventsKeepTheServerAssignedJobID() throws {
        let (spool, server) = try serving()
        let sub = try server.submit(#"{"email": "alice@example.com", "action": "export"}"#)
        XCTAssertEqual(sub.status, 202, sub.body)
        let answer = try sub.json()
        let jobID = try XCTUnwrap(answer["jobId"] as? String)
        XCTAssertTrue(UUIDv7.isValid(jobID), jobID)
        XCTAssertEqual(answer["status"] as? String, "PENDING")
        let links = try XCTUnwrap(answer["links"] as? [String: String])
        XCTAssertEqual(links["self"], "/dsar/\(jobID)")
        XCTAssertEqual(links["events"], "/dsar/\(jobID)/events")
        XCTAssertEqual(links["download"], "/dsar/\(jobID)/download")
        // The request is durable in the inbox, complete, and no temp file is left.
        let inbox = spool.allFiles("inbox")
        XCTAssertEqual(inbox.count, 1, "\(inbox)")
        XCTAssertTrue(inbox[0].hasPrefix("inbox/http-\(jobID)-"), inbox[0])

        // Accepted, not yet claimed: PENDING from the inbox (not 404).
        let pending = try server.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(pending.status, 200, pending.body)
        XCTAssertEqual(try pending.json()["status"] as? String, "PENDING")
        XCTAssertEqual(try pending.json()["jobId"] as? String, jobID)

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        XCTAssertTrue(run.stdout.contains("1 claimed, 1 finished (1 completed"), run.stdout)

        // The spool kept the job id the server answered with.
        XCTAssertEqual(try spool.records().map(\.jobID), [jobID])
        let status = try server.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(status.status, 200, status.body)
        XCTAssertEqual(status.headers["content-type"], "application/json")
        XCTAssertEqual(try status.json()["status"] as? String, "COMPLETED")
        XCTAssertEqual(try status.json()["job_id"] as? String, jobID)
        // Exactly what `dsar status JOB --json` prints, and no personal data.
        let cli = try spool.dsar(["status", jobID, "--json"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        XCTAssertEqual(status.body, cli.stdout)
        XCTAssertFalse(status.body.contains("alice"), status.body)

        let events = try server.curl("GET", "/dsar/\(jobID)/events")
        XCTAssertEqual(events.status, 200, events.body)
        let doc = try events.json()
        XCTAssertEqual(doc["jobId"] as? String, jobID)
        let list = try XCTUnwrap(doc["events"] as? [[String: Any]])
        let cliEvents = try spool.dsar(["events", jobID, "--json"])
        XCTAssertEqual(cliEvents.status, 0, cliEvents.stderr)
        XCTAssertEqual(list.count, cliEvents.stdout.split(separator: "\n").count)
        let types = list.compactMap { $0["type"] as? String }
        XCTAssertTrue(types.contains("job.claimed") && types.contains("request.received"), "\(types)")
        XCTAssertEqual(types.last, "job.finished", "\(types)")
        XCTAssertEqual(
            (list.last?["details"] as? [String: Any])?["status"] as? String, "COMPLETED", "\(list.last ?? [:])")
        XCTAssertFalse(events.body.contains("alice"), events.body)

        XCTAssertEqual(try server.curl("GET", "/healthz").status, 200)
        let metrics = try server.curl("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.body.contains("dsar_jobs{status=\"COMPLETED\"} 1"), metrics.body)
        XCTAssertTrue(metrics.body.contains("mode=\"serve\""), metrics.body)
        // Valid Prometheus text, by the Prometheus client library's own parser.
        let metricsFile = spool.base + "/metrics.prom"
        try FileSystem.writeAtomically(metricsFile, Array(metrics.body.utf8), mode: 0o600)
        let parsed = try runCommand(
            "/usr/bin/python3",
            [
                "-c",
                "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n"
                    + "print(sum(s.value for f in p(open(sys.argv[1]).read()) for s in f.samples "
                    + "if s.name == 'dsar_jobs' and s.labels.get('status') == 'COMPLETED'))",
                metricsFile,
            ])
        XCTAssertEqual(parsed.status, 0, parsed.stderr)
        XCTAssertEqual(parsed.stdout, "1.0\n", parsed.stderr)

        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stderr.contains("AUTHENTICATION IS OFF"), stop.stderr)
        XCTAssertFalse(stop.stderr.contains("alice"), stop.stderr)
    }

    /// The server caches the rendered status of a record by its file's identity: a record a run
    /// writes or `dsar close` changes is served changed on the very next request, byte for byte
    /// as `dsar status JOB --json` prints it, and a job left alone keeps its document.
    func testStatusReflectsARecordChangedByARunOrCloseImmediately() throws {
        let (spool, server) = try serving()
        func status(_ id: String) throws -> String {
            let r = try server.curl("GET", "/dsar/\(id)")
            XCTAssertEqual(r.status, 200, r.body)
            return r.body
        }
        func cli(_ id: String) throws -> String {
            let c = try spool.dsar(["status", id, "--json"])
            XCTAssertEqual(c.status, 0, c.stderr)
            return c.stdout
        }
        let first = try XCTUnwrap(
            try server.submit(#"{"email": "alice@example.com", "action": "export"}"#).json()["jobId"] as? String)
        XCTAssertEqual(try spool.dsar(["run", "--settle", "0.2"], timeout: 60).status, 0)
        // Served twice (rendered, then from the cache): the same bytes as the CLI.
        let completed = try status(first)
        XCTAssertEqual(completed, try cli(first))
        XCTAssertEqual(try status(first), completed)
        XCTAssertTrue(completed.contains("\"COMPLETED\""), completed)

        // A second job and a run: the new record is served, the first keeps its document.
        let second = try XCTUnwrap(
            try server.submit(#"{"email": "bob@example.com", "action": "export"}"#).json()["jobId"] as? String)
        XCTAssertEqual(try XCTUnwrap(try server.curl("GET", "/dsar/\(second)").json()["status"] as? String), "PENDING")
        XCTAssertEqual(try spool.dsar(["run", "--settle", "0.2"], timeout: 60).status, 0)
        XCTAssertEqual(try status(second), try cli(second))
        XCTAssertEqual(try status(first), completed)

        // dsar close rewrites the record: the next GET shows it, with no wait.
        let close = try spool.dsar(["close", first, "--reason", "answered", "--note", "sent"])
        XCTAssertEqual(close.status, 0, close.stderr)
        let closed = try status(first)
        XCTAssertNotEqual(closed, completed)
        XCTAssertEqual(closed, try cli(first))
        XCTAssertEqual(try status(first), closed)
        XCTAssertEqual(try status(second), try cli(second))
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testInvalidBodiesGetTheParsersMessagesAndNothingReachesTheInbox() throws {
        let (spool, server) = try serving("max_request_bytes: 256\n" + Self.serveNone)
        let bad = #"{"user_id": "12345", "action": "exprt"}"#
        let r = try server.submit(bad)
        XCTAssertEqual(r.status, 400, r.body)
        XCTAssertEqual(r.headers["content-type"], "application/problem+json")
        let p = try r.json()
        XCTAssertEqual(p["status"] as? Int, 400)
        XCTAssertEqual(p["type"] as? String, "urn:dsar:problem:invalid-request")
        XCTAssertEqual(p["instance"] as? String, "/dsar")
        let detail = try XCTUnwrap(p["detail"] as? String)
        let errors = try XCTUnwrap(p["errors"] as? [[String: String]])
        XCTAssertEqual(errors.first?["field"], "action")
        XCTAssertEqual(errors.first?["message"], detail)

        let unknownType = try server.submit(#"{"subject": {"loyalty_card": "X1"}, "action": "export"}"#)
        XCTAssertEqual(unknownType.status, 400, unknownType.body)
        XCTAssertTrue(try (unknownType.json()["detail"] as? String ?? "").contains("\"loyalty_card\" is not known"))

        // 415: not JSON; 413: larger than max_request_bytes, declared or streamed (chunked).
        let text = try server.submit(#"{"user_id": "1", "action": "export"}"#, headers: ["Content-Type": "text/plain"])
        XCTAssertEqual(text.status, 415, text.body)
        XCTAssertEqual(text.headers["content-type"], "application/problem+json")
        let big = #"{"user_id": "1", "action": "export"}"# + String(repeating: " ", count: 1000)
        let declared = try server.submit(big)
        XCTAssertEqual(declared.status, 413, declared.body)
        XCTAssertTrue(try (declared.json()["detail"] as? String ?? "").contains("at most 256 bytes"), declared.body)
        let chunked = try server.submit(big, headers: ["Transfer-Encoding": "chunked"])
        XCTAssertEqual(chunked.status, 413, chunked.body)

        // 404: unknown job, malformed id, unknown route; 405: known route, wrong method.
        let unknown = try server.curl("GET", "/dsar/\(UUIDv7.make())")
        XCTAssertEqual(unknown.status, 404, unknown.body)
        XCTAssertEqual(unknown.headers["content-type"], "application/problem+json")
        XCTAssertEqual(try server.curl("GET", "/dsar/not-a-job/events").status, 404)
        XCTAssertEqual(try server.curl("GET", "/nowhere").status, 404)
        let wrong = try server.curl("DELETE", "/dsar")
        XCTAssertEqual(wrong.status, 405, wrong.body)
        XCTAssertEqual(wrong.headers["allow"], "POST")
        let download = try server.curl("GET", "/dsar/\(UUIDv7.make())/download")
        XCTAssertEqual(download.status, 404, download.body)
        XCTAssertEqual(download.headers["content-type"], "application/problem+json")

        XCTAssertEqual(spool.allFiles("inbox"), [], "nothing refused may reach the inbox")

        // The same text as the inbox gives a drop of the same bytes.
        try spool.drop("same.json", bad)
        _ = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertTrue(spool.reason("same.json").hasSuffix(": " + detail + "\n"), spool.reason("same.json"))
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testRateLimitAnswers429WithRetryAfter() throws {
        let (spool, server) = try serving("serve:\n  auth: none\n  rate_limit: 3\n")
        for _ in 0..<3 { XCTAssertEqual(try server.curl("GET", "/dsar/\(UUIDv7.make())").status, 404) }
        let limited = try server.curl("GET", "/metrics")
        XCTAssertEqual(limited.status, 429, limited.body)
        let wait = try XCTUnwrap(Int(limited.headers["retry-after"] ?? ""), "\(limited.headers)")
        XCTAssertTrue((1...60).contains(wait), "\(wait)")
        XCTAssertEqual(limited.headers["content-type"], "application/problem+json")
        // The health probe is never limited.
        let health = try server.curl("GET", "/healthz")
        XCTAssertEqual(health.status, 200, "\(health.headers) \(health.body)")
        // …and it tells when the spool is not usable.
        try FileSystem.removeTree(spool.root + "/jobs")
        let broken = try server.curl("GET", "/healthz")
        XCTAssertEqual(broken.status, 503, broken.body)
        XCTAssertTrue(broken.body.contains("missing inbox/ or jobs/"), broken.body)
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testBehindATrustedProxyTheRateLimitCountsTheForwardedClient() throws {
        // curl on loopback plays the proxy (nginx's $proxy_add_x_forwarded_for appends the peer).
        let (spool, server) = try serving(
            "serve:\n  auth: none\n  rate_limit: 2\n  trusted_proxies: [127.0.0.1, \"::1\", 10.0.0.0/8]\n")
        func get(_ forwarded: String?) throws -> Int {
            try server.curl(
                "GET", "/dsar/\(UUIDv7.make())", headers: forwarded.map { ["X-Forwarded-For": $0] } ?? [:]
            ).status
        }
        XCTAssertEqual(try get("203.0.113.5"), 404)
        XCTAssertEqual(try get("203.0.113.5"), 404)
        XCTAssertEqual(try get("203.0.113.5"), 429, "the forwarded client's own bucket is empty")
        XCTAssertEqual(try get("203.0.113.6"), 404, "another client behind the same proxy is not limited")
        // A client can only prepend: the rightmost address that is not a trusted proxy counts.
        XCTAssertEqual(try get("198.51.100.9, 203.0.113.5"), 429)
        XCTAssertEqual(try get("203.0.113.5, 10.1.2.3"), 429, "a trusted hop in between is skipped")
        // Something that is no address ends the walk at the hop that added it: the proxy's bucket.
        XCTAssertEqual(try get("not-an-address"), 404)
        XCTAssertEqual(try get(nil), 404)
        XCTAssertEqual(try get(nil), 429, "requests without the header count for the proxy itself")
        // The log names the forwarded client.
        let sub = try server.submit(
            #"{"user_id": "12345", "action": "export"}"#, headers: ["X-Forwarded-For": "203.0.113.77"])
        XCTAssertEqual(sub.status, 202, sub.body)
        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertTrue(stop.stderr.contains("203.0.113.77"), stop.stderr)

        // Without trusted_proxies the header is ignored: a client cannot pick a fresh bucket.
        let plain = spool.text("config.yaml").replacingOccurrences(
            of: "  trusted_proxies: [127.0.0.1, \"::1\", 10.0.0.0/8]\n", with: "")
        try FileSystem.writeAtomically(spool.root + "/config.yaml", Array(plain.utf8), mode: 0o640)
        let direct = try ServeProcess(spool)
        for (k, want) in [404, 404, 429].enumerated() {
            let r = try direct.curl(
                "GET", "/dsar/\(UUIDv7.make())", headers: ["X-Forwarded-For": "203.0.113.\(100 + k)"])
            XCTAssertEqual(r.status, want, "request \(k)")
        }
        XCTAssertEqual(try direct.stop().status, 0)

        // A list entry that is no address or network is refused at start, with file and line.
        try FileSystem.writeAtomically(
            spool.root + "/config.yaml",
            Array(
                (plain + "").replacingOccurrences(
                    of: "  rate_limit: 2\n", with: "  rate_limit: 2\n  trusted_proxies: [127.0.0.1, 10.0.0.0/33]\n"
                ).utf8), mode: 0o640)
        let bad = try spool.dsar(["serve", "--listen", "127.0.0.1:0"], timeout: 30)
        XCTAssertEqual(bad.status, 78, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("config.yaml:"), bad.stderr)
        XCTAssertTrue(
            bad.stderr.contains("serve.trusted_proxies") && bad.stderr.contains("\"10.0.0.0/33\" is not an IP address"),
            bad.stderr)
    }

    func testIdempotentRetriesReturnTheFirstJobAcrossRestartsAndRuns() throws {
        let (spool, server) = try serving()
        let body = #"{"user_id": "4242", "action": "export"}"#
        let first = try server.submit(body, headers: ["Idempotency-Key": "ticket-77"])
        XCTAssertEqual(first.status, 202, first.body)
        let jobID = try XCTUnwrap(try first.json()["jobId"] as? String)
        let again = try server.submit(body, headers: ["Idempotency-Key": "ticket-77"])
        XCTAssertEqual(again.status, 200, again.body)
        XCTAssertEqual(try again.json()["jobId"] as? String, jobID)
        // The same key with another body is refused, not a second job.
        let other = try server.submit(
            #"{"user_id": "4243", "action": "export"}"#, headers: ["Idempotency-Key": "ticket-77"])
        XCTAssertEqual(other.status, 422, other.body)

        // request_id: the same one without a header.
        let withRID = #"{"request_id": "ZD-1001", "user_id": "5151", "action": "export"}"#
        let r1 = try server.submit(withRID)
        XCTAssertEqual(r1.status, 202, r1.body)
        let ridJob = try XCTUnwrap(try r1.json()["jobId"] as? String)
        let r2 = try server.submit(withRID)
        XCTAssertEqual(r2.status, 200, r2.body)
        XCTAssertEqual(try r2.json()["jobId"] as? String, ridJob)

        // Durable: a restarted server still knows both, and no key is stored in plain text.
        XCTAssertEqual(try server.stop().status, 0)
        for f in spool.allFiles("serve") {
            let t = spool.text(f)
            XCTAssertFalse(f.contains("ticket-77") || f.contains("ZD-1001") || t.contains("ticket-77"), f)
        }
        let restarted = try ServeProcess(spool)
        XCTAssertEqual(
            try restarted.submit(body, headers: ["Idempotency-Key": "ticket-77"]).json()["jobId"] as? String, jobID)

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 0, run.stdout + run.stderr)
        XCTAssertEqual(Set(try spool.records().map(\.jobID)), [jobID, ridJob])
        let after = try restarted.submit(withRID)
        XCTAssertEqual(after.status, 200, after.body)
        XCTAssertEqual(try after.json()["jobId"] as? String, ridJob)
        XCTAssertEqual(try after.json()["status"] as? String, "COMPLETED")

        // A request_id first received over SFTP answers with that job.
        try spool.drop("sftp.json", #"{"request_id": "SN-9", "user_id": "6161", "action": "export"}"#)
        _ = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        let sftpJob = try XCTUnwrap(try spool.records().first { $0.requestID == "SN-9" }?.jobID)
        let viaHTTP = try restarted.submit(#"{"request_id": "SN-9", "user_id": "6161", "action": "export"}"#)
        XCTAssertEqual(viaHTTP.status, 200, viaHTTP.body)
        XCTAssertEqual(try viaHTTP.json()["jobId"] as? String, sftpJob)
        XCTAssertEqual(try spool.records().count, 3)
        XCTAssertEqual(spool.allFiles("inbox"), [])
        XCTAssertEqual(try restarted.stop().status, 0)
    }

    func testConcurrentRetriesWithOneKeyMakeOneJob() throws {
        let (spool, server) = try serving()
        final class IDs: @unchecked Sendable {
            let lock = NSLock()
            var all: [String] = []
        }
        let ids = IDs()
        let problems = inParallel(8, width: 8) { k in
            let r = try server.submit(
                #"{"request_id": "CONC-1", "user_id": "8080", "action": "export"}"#,
                headers: k % 2 == 0 ? ["Idempotency-Key": "conc-key"] : [:])
            guard r.status == 200 || r.status == 202 else { return ["\(r.status): \(r.body)"] }
            let id = try XCTUnwrap(try r.json()["jobId"] as? String)
            ids.lock.lock()
            ids.all.append(id)
            ids.lock.unlock()
            return []
        }
        XCTAssertEqual(problems, [])
        XCTAssertEqual(ids.all.count, 8)
        XCTAssertEqual(Set(ids.all).count, 1, "\(ids.all)")
        XCTAssertEqual(spool.list("inbox").count, 1, "\(spool.list("inbox"))")
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testAnSFTPDropCannotChooseOrReuseAJobID() throws {
        let (spool, server) = try serving()
        let sub = try server.submit(#"{"user_id": "777", "action": "export"}"#)
        let jobID = try XCTUnwrap(try sub.json()["jobId"] as? String)
        let name = try XCTUnwrap(spool.list("inbox").first)
        let bytes = try FileSystem.readFile(spool.root + "/inbox/" + name)
        _ = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        // The same server-written file again (a replay): refused, the job id is taken.
        try spool.drop(name, bytes)
        // A name that claims a job id without the spool key's tag.
        let forged = "http-\(UUIDv7.make())-\(String(repeating: "0", count: 32)).json"
        try spool.drop(forged, #"{"user_id": "778", "action": "export"}"#)
        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 2, run.stdout + run.stderr)
        XCTAssertTrue(spool.reason(name).contains("duplicate job id: job \(jobID) already exists"), spool.reason(name))
        XCTAssertTrue(
            spool.reason(forged).contains("reserved for requests written by dsar serve"), spool.reason(forged))
        XCTAssertEqual(try spool.records().map(\.jobID), [jobID])
        // An unreadable record is a server error, never "no such job"; the client is not told spool paths.
        try FileSystem.writeAtomically(spool.root + "/jobs/\(jobID).json", Array("{".utf8), mode: 0o600)
        let broken = try server.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(broken.status, 500, broken.body)
        XCTAssertEqual(broken.headers["content-type"], "application/problem+json")
        XCTAssertFalse(broken.body.contains(spool.root), broken.body)
        let head = try server.curl("HEAD", "/healthz", extra: ["--head"])
        XCTAssertEqual(head.status, 200)
        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0)
        XCTAssertTrue(stop.stderr.contains("jobs/\(jobID).json"), "the log names the record: \(stop.stderr)")
    }

    func testRefusesToStartWithoutAuthOrOnANonLoopbackAddress() throws {
        let spool = try TempSpool()
        try spool.initialize()
        let noAuth = try spool.dsar(["serve", "--listen", "127.0.0.1:0"], timeout: 30)
        XCTAssertEqual(noAuth.status, 78, noAuth.stderr)
        XCTAssertTrue(noAuth.stderr.contains("No endpoint works anonymously unless `auth: none` is set"), noAuth.stderr)
        XCTAssertFalse(noAuth.stdout.contains("listening on"), noAuth.stdout)

        try FileSystem.writeAtomically(
            spool.root + "/config.yaml", Array((spool.text("config.yaml") + Self.serveNone).utf8), mode: 0o640)
        let remote = try spool.dsar(["serve", "--listen", "0.0.0.0:0"], timeout: 30)
        XCTAssertEqual(remote.status, 64, remote.stderr)
        XCTAssertTrue(
            remote.stderr.contains("refusing to listen on 0.0.0.0:0: it is not a loopback address"), remote.stderr)

        // A bad serve: value is a config error with its line.
        try FileSystem.writeAtomically(
            spool.root + "/config.yaml", Array((spool.text("config.yaml") + "  rate_limit: lots\n").utf8), mode: 0o640)
        let badValue = try spool.dsar(["serve"], timeout: 30)
        XCTAssertEqual(badValue.status, 78, badValue.stderr)
        XCTAssertTrue(badValue.stderr.contains("config.yaml:"), badValue.stderr)
        XCTAssertTrue(badValue.stderr.contains("serve.rate_limit: expected a whole number"), badValue.stderr)
    }

    func testSIGTERMDuringASlowUploadLeavesTheWholeRequestOrNothing() throws {
        let (spool, server) = try serving()
        // 3 KB at 1 KB/s: the upload is in flight when SIGTERM arrives.
        let body = #"{"user_id": "31337", "action": "export"}"# + String(repeating: " ", count: 3000)
        let bodyFile = spool.base + "/slow.json"
        try FileSystem.writeAtomically(bodyFile, Array(body.utf8), mode: 0o644)
        let curl = try launch(
            "/usr/bin/curl",
            [
                "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--limit-rate", "1000", "-H",
                "Content-Type: application/json", "--data-binary", "@" + bodyFile, server.baseURL + "/dsar",
            ])
        usleep(1_000_000)
        XCTAssertTrue(curl.process.isRunning, "the upload finished before SIGTERM; make it slower")
        let stop = try server.stop(timeout: 60)
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertFalse(stop.signaled)
        let client = try curl.wait(timeout: 30)
        // Graceful: the request in flight was finished, not cut off.
        XCTAssertEqual(client.stdout, "202", client.stderr)
        let files = spool.allFiles("inbox")
        if client.stdout == "202" {
            XCTAssertEqual(files.count, 1, "\(files)")
            XCTAssertEqual(spool.text(files[0]), body, "the request in the inbox must be complete")
        } else {
            XCTAssertEqual(files, [], "a request not accepted must leave nothing: \(files)")
        }
        XCTAssertFalse(files.contains { ($0 as NSString).lastPathComponent.hasPrefix(".") }, "temp file left: \(files)")
    }

    func testHeaderAndIdleTimeoutsCloseSlowAndIdleConnections() throws {
        let (spool, server) = try serving("serve:\n  auth: none\n  header_timeout: 1\n  idle_timeout: 2\n")
        let port = try XCTUnwrap(UInt16(server.baseURL.split(separator: ":").last ?? ""))
        // A head that never ends: closed after header_timeout, with no response.
        let slow = try ServeE2ETests.connect(port)
        defer { close(slow) }
        ServeE2ETests.send(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
        var t = Date()
        XCTAssertEqual(ServeE2ETests.readUntilClosed(slow, timeout: 10), "")
        XCTAssertEqual(Date().timeIntervalSince(t), 1, accuracy: 0.8)
        // A kept-alive connection: answered, then closed after idle_timeout without a next request.
        let idle = try ServeE2ETests.connect(port)
        defer { close(idle) }
        t = Date()
        ServeE2ETests.send(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = ServeE2ETests.readUntilClosed(idle, timeout: 10)
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 200 OK"), answer)
        XCTAssertEqual(Date().timeIntervalSince(t), 2, accuracy: 0.8)
        XCTAssertEqual(try server.stop().status, 0)
        _ = spool
    }

    static func connect(_ port: UInt16) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard r == 0 else { throw TestFailure("cannot connect to port \(port)") }
        return fd
    }

    static func send(_ fd: Int32, _ text: String) {
        let b = Array(text.utf8)
        _ = b.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, b.count, 0) }
    }

    /// Everything the server sends until it closes the connection (or `timeout` passes).
    static func readUntilClosed(_ fd: Int32, timeout: Double) -> String {
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 4096, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
