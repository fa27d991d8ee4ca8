import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar serve --print-openapi` against the real server: the document parses as YAML (PyYAML), lists
/// every route Routes.swift registers, and what the real binary answers conforms to it: real
/// exchanges checked with jsonschema_rs (Tests/openapi/openapi_check.py), and schemathesis fuzzing
/// the running server on loopback.
final class ServeOpenAPIE2ETests: XCTestCase {
    static let checker = repoRoot + "/Tests/openapi/openapi_check.py"

    /// Debian's python3 (python3-yaml), else the one on PATH.
    func python() throws -> String {
        for p in ["/usr/bin/python3"] where FileManager.default.isExecutableFile(atPath: p) { return p }
        guard let p = which("python3") else { throw XCTSkip("python3 is not installed (apt-get install python3)") }
        return p
    }

    /// Writes `dsar serve --print-openapi` into `dir` and returns its path.
    func printedSpec(into dir: String) throws -> String {
        let r = try runCommand(dsarBinary, ["serve", "--print-openapi"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let path = dir + "/openapi.yaml"
        try FileSystem.writeAtomically(path, Array(r.stdout.utf8), mode: 0o644)
        return path
    }

    /// Whether a Python module can be imported by `python`.
    func hasModule(_ python: String, _ module: String) throws -> Bool {
        try runCommand(python, ["-c", "import \(module)"]).status == 0
    }

    /// Skips (outside CI) or fails (CI must install it: .ci/run) when a tool is missing.
    func require(_ available: Bool, _ what: String) throws {
        guard !available else { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            throw TestFailure("\(what) is not installed, and CI must run this test (.ci/run installs it)")
        }
        throw XCTSkip("\(what) is not installed: pip install --break-system-packages schemathesis")
    }

    /// Every (METHOD, path) Routes.swift registers, from its source: `router.get("/x/:id")` and the
    /// `Routes.methods` table (`("/x/:id", [.get])`), with `:id` written as OpenAPI's `{id}`.
    func routedOperations() throws -> Set<String> {
        let source = String(
            decoding: try FileSystem.readFile(repoRoot + "/Sources/DSARServer/Routes/Routes.swift"), as: UTF8.self)
        func template(_ p: String) -> String {
            p.split(separator: "/", omittingEmptySubsequences: false).map { c in
                c.hasPrefix(":") ? "{\(c.dropFirst())}" : String(c)
            }.joined(separator: "/")
        }
        var out = Set<String>()
        let calls = try NSRegularExpression(pattern: #"router\.(get|post|put|delete|patch)\(\s*"([^"]+)""#)
        let table = try NSRegularExpression(pattern: #"\(\s*"(/[^"]*)"\s*,\s*\[([^\]]*)\]\s*\)"#)
        let ns = source as NSString
        for m in calls.matches(in: source, range: NSRange(location: 0, length: ns.length)) {
            out.insert(
                ns.substring(with: m.range(at: 1)).uppercased() + " " + template(ns.substring(with: m.range(at: 2))))
        }
        for m in table.matches(in: source, range: NSRange(location: 0, length: ns.length)) {
            let path = template(ns.substring(with: m.range(at: 1)))
            for method in ns.substring(with: m.range(at: 2)).split(separator: ",") {
                let name = method.trimmingCharacters(in: .whitespaces).trimmingCharacters(
                    in: CharacterSet(charactersIn: "."))
                if !name.isEmpty { out.insert(name.uppercased() + " " + path) }
            }
        }
        return out
    }

    func testPrintOpenAPIIsYAMLListingEveryRouteWithItsScope() throws {
        let python = try python()
        guard try hasModule(python, "yaml") else {
            throw XCTSkip("PyYAML is not installed (apt-get install python3-yaml)")
        }
        let spool = try TempSpool()
        let spec = try printedSpec(into: spool.base)
        // Printing needs no spool, and the text is the embedded resource byte for byte.
        XCTAssertEqual(
            try FileSystem.readFile(spec),
            try FileSystem.readFile(repoRoot + "/Sources/DSARServer/Resources/openapi.yaml"))
        let r = try runCommand(python, [Self.checker, "ops", spec])
        XCTAssertEqual(r.status, 0, r.stderr)
        let doc = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertTrue((doc["openapi"] as? String ?? "").hasPrefix("3.1."), "\(doc["openapi"] ?? "-")")
        XCTAssertEqual(doc["problems"] as? [String], [], "\(doc["problems"] ?? "-")")
        let documented = Set(try XCTUnwrap(doc["operations"] as? [String]))

        let routed = try routedOperations()
        XCTAssertTrue(routed.contains("POST /dsar") && routed.contains("GET /dsar/{jobId}"), "\(routed.sorted())")
        XCTAssertTrue(routed.count >= 6, "\(routed.sorted())")
        XCTAssertEqual(routed.subtracting(documented), [], "routes Routes.swift registers that openapi.yaml lacks")
        XCTAssertEqual(documented.subtracting(routed), [], "documented operations with no route")

        // The bearer JWT scheme, and each operation's scope (the Authorizer's `Scope` values).
        let schemes = try XCTUnwrap(doc["schemes"] as? [String: [String: Any]])
        XCTAssertEqual(schemes["bearerJWT"]?["type"] as? String, "http")
        XCTAssertEqual(schemes["bearerJWT"]?["scheme"] as? String, "bearer")
        XCTAssertEqual(schemes["bearerJWT"]?["bearerFormat"] as? String, "JWT")
        let security = try XCTUnwrap(doc["security"] as? [String: Any])
        let expected: [String: [String]?] = [
            "POST /dsar": ["dsar:submit"], "GET /dsar/{jobId}": ["dsar:read"],
            "GET /dsar/{jobId}/events": ["dsar:read"],
            "GET /dsar/{jobId}/download": ["dsar:download"], "GET /metrics": ["dsar:read"], "GET /healthz": nil,
            "GET /files/{token}": nil,
        ]
        for (op, scopes) in expected {
            XCTAssertEqual(security[op] as? [String], scopes, op)
            if scopes == nil { XCTAssertTrue(security[op] is NSNull, "\(op) must need no bearer token") }
        }
        // A problem document for every error status the server answers with.
        let responses = Set(try XCTUnwrap(doc["responses"] as? [String]))
        for name in [
            "BadRequest", "Unauthorized", "Forbidden", "NotFound", "MethodNotAllowed", "ContentTooLarge",
            "UnsupportedMediaType", "UnprocessableContent", "TooManyRequests", "InternalError", "NotImplemented",
            "ServiceUnavailable",
        ] {
            XCTAssertTrue(responses.contains(name), name)
        }
    }

    /// One exchange for openapi_check.py.
    func exchange(_ method: String, _ template: String, _ r: ServeProcess.Response) -> [String: Any] {
        ["method": method, "path": template, "status": r.status, "headers": r.headers, "body": r.body]
    }

    func testRealAnswersThroughAJobsLifeConformToTheDocument() throws {
        let python = try python()
        try require(try hasModule(python, "yaml") && hasModule(python, "jsonschema_rs"), "jsonschema_rs (schemathesis)")
        let spool = try TempSpool()
        try spool.initialize(extraConfig: "max_request_bytes: 512\nserve:\n  auth: none\n")
        let spec = try printedSpec(into: spool.base)
        let server = try ServeProcess(spool)
        var ex: [[String: Any]] = []

        // The seed's minimal body is a valid Request; bodies dsar rejects are not.
        let seed = #"{"user_id": "12345", "action": "export"}"#
        ex.append(["request": try JSONSerialization.jsonObject(with: Data(seed.utf8)), "valid": true])
        for bad in [
            #"{"user_id": "1"}"#, #"{"user_id": "1", "action": "exprt"}"#, #"{"action": "export"}"#,
            #"{"user_id": "1", "action": "export", "name": "x"}"#, #"{"email": 5, "action": "export"}"#,
            #"{"user_id": "1", "action": "export", "dry_run": "yes"}"#,
        ] {
            let r = try server.submit(bad)
            XCTAssertEqual(r.status, 400, "\(bad): \(r.body)")
            ex.append(exchange("POST", "/dsar", r))
            ex.append(["request": try JSONSerialization.jsonObject(with: Data(bad.utf8)), "valid": false])
        }

        let submitted = try server.submit(seed, headers: ["Idempotency-Key": "openapi-1"])
        XCTAssertEqual(submitted.status, 202, submitted.body)
        ex.append(exchange("POST", "/dsar", submitted))
        let jobID = try XCTUnwrap(try submitted.json()["jobId"] as? String)
        let retried = try server.submit(seed, headers: ["Idempotency-Key": "openapi-1"])
        XCTAssertEqual(retried.status, 200, retried.body)
        ex.append(exchange("POST", "/dsar", retried))
        let reused = try server.submit(
            #"{"user_id": "54321", "action": "export"}"#, headers: ["Idempotency-Key": "openapi-1"])
        XCTAssertEqual(reused.status, 422, reused.body)
        ex.append(exchange("POST", "/dsar", reused))
        ex.append(exchange("POST", "/dsar", try server.submit(seed, headers: ["Content-Type": "text/plain"])))
        ex.append(exchange("POST", "/dsar", try server.submit(seed + String(repeating: " ", count: 1024))))
        ex.append(exchange("GET", "/dsar/{jobId}", try server.curl("GET", "/dsar/\(jobID)")))
        ex.append(exchange("GET", "/dsar/{jobId}/events", try server.curl("GET", "/dsar/\(jobID)/events")))

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 0, run.stderr)
        let record = try server.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(try record.json()["status"] as? String, "COMPLETED", record.body)
        ex.append(exchange("GET", "/dsar/{jobId}", record))
        let events = try server.curl("GET", "/dsar/\(jobID)/events")
        XCTAssertEqual(events.status, 200, events.body)
        ex.append(exchange("GET", "/dsar/{jobId}/events", events))
        let again = try server.submit(seed, headers: ["Idempotency-Key": "openapi-1"])
        XCTAssertEqual(try again.json()["status"] as? String, "COMPLETED", again.body)
        ex.append(exchange("POST", "/dsar", again))
        ex.append(exchange("GET", "/dsar/{jobId}/download", try server.curl("GET", "/dsar/\(jobID)/download")))

        let unknown = UUIDv7.make()
        for t in ["/dsar/{jobId}", "/dsar/{jobId}/events", "/dsar/{jobId}/download"] {
            ex.append(exchange("GET", t, try server.curl("GET", t.replacingOccurrences(of: "{jobId}", with: unknown))))
            ex.append(exchange("GET", t, try server.curl("GET", t.replacingOccurrences(of: "{jobId}", with: "nope"))))
        }
        ex.append(exchange("DELETE", "/dsar", try server.curl("DELETE", "/dsar")))
        // Methods the router has no table for are 405 on a known path too, not 404.
        for method in ["TRACE", "QUERY", "PROPFIND"] {
            let r = try server.curl(method, "/healthz")
            XCTAssertEqual(r.status, 405, "\(method): \(r.body)")
            XCTAssertEqual(r.headers["allow"], "GET", method)
            ex.append(exchange(method, "/healthz", r))
        }
        XCTAssertEqual(try server.curl("QUERY", "/nowhere").status, 404)
        ex.append(exchange("POST", "/dsar/{jobId}", try server.curl("POST", "/dsar/\(jobID)")))
        ex.append(exchange("GET", "/healthz", try server.curl("GET", "/healthz")))
        let metrics = try server.curl("GET", "/metrics")
        XCTAssertEqual(metrics.status, 200, metrics.body)
        ex.append(exchange("GET", "/metrics", metrics))

        let path = spool.base + "/exchanges.json"
        try FileSystem.writeAtomically(path, Array(try JSONSerialization.data(withJSONObject: ex)), mode: 0o600)
        let check = try runCommand(python, [Self.checker, "check", spec, path])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("\(ex.count) exchanges checked, 0 mismatches"), check.stdout)

        // 429 with Retry-After, on a server with a tiny limit.
        XCTAssertEqual(try server.stop().status, 0)
        try FileSystem.writeAtomically(
            spool.root + "/config.yaml",
            Array(
                (spool.text("config.yaml").replacingOccurrences(
                    of: "auth: none\n", with: "auth: none\n  rate_limit: 1\n")).utf8),
            mode: 0o640)
        let limited = try ServeProcess(spool)
        _ = try limited.curl("GET", "/metrics")
        let tooMany = try limited.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(tooMany.status, 429, tooMany.body)
        try FileSystem.writeAtomically(
            path, Array(try JSONSerialization.data(withJSONObject: [exchange("GET", "/dsar/{jobId}", tooMany)])),
            mode: 0o600)
        let check429 = try runCommand(python, [Self.checker, "check", spec, path])
        XCTAssertEqual(check429.status, 0, check429.stdout + check429.stderr)
        XCTAssertEqual(try limited.stop().status, 0)
    }

    func testSchemathesisFindsNoServerErrorAndNoAnswerOutsideTheDocument() throws {
        let tool =
            which("schemathesis")
            ?? ["/usr/local/bin/schemathesis", "/usr/bin/schemathesis"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            }
        try require(tool != nil, "schemathesis")
        let spool = try TempSpool()
        // No rate limit: 429s would hide the routes from the fuzzer (429 itself is checked above).
        try spool.initialize(extraConfig: "serve:\n  auth: none\n  rate_limit: 0\n")
        let spec = try printedSpec(into: spool.base)
        let server = try ServeProcess(spool)
        // One real job, so the spool is not empty (records, journal, metrics).
        XCTAssertEqual(try server.submit(#"{"user_id": "12345", "action": "export"}"#).status, 202)
        XCTAssertEqual(try spool.dsar(["run", "--settle", "0.2"], timeout: 60).status, 0)

        // Every check but two: `ignored_auth` (auth: none ignores credentials by design; the JWT
        // tests cover 401/403) and `positive_data_acceptance` (the schema cannot express the
        // identifier rules, e.g. what an e-mail address is, so some schema-valid bodies get 400).
        var args = [
            "run", spec, "--url", server.baseURL, "--checks", "all", "--exclude-checks",
            "ignored_auth,positive_data_acceptance", "--generation-with-security-parameters", "false",
            "--max-examples", "50", "--seed", "17", "--request-timeout", "10", "--workers", "2",
            "--generation-database", "none", "--no-color", "--suppress-health-check", "all",
        ]
        // Until the download part lands, /download answers 501 (a 5xx by design): leave it out then.
        let probe = try server.curl("GET", "/dsar/\(UUIDv7.make())/download")
        if probe.status == 501 { args += ["--exclude-path", "/dsar/{jobId}/download"] }
        // Bounded: 50 examples per operation and phase, 10 s per request, 5 minutes in all (killed after).
        let r = try runCommand(tool!, args, env: ["HOME": spool.base], cwd: spool.base, timeout: 300)
        XCTAssertEqual(r.status, 0, "schemathesis found problems:\n\(r.stdout)\n\(r.stderr)")
        // It really exercised the server: every selected operation was tested, with many cases.
        let expected = probe.status == 501 ? 6 : 7
        XCTAssertTrue(r.stdout.contains("Tested: \(expected)"), "not every operation was tested:\n\(r.stdout)")
        let generated = try NSRegularExpression(pattern: #"(\d+) generated"#)
        let ns = r.stdout as NSString
        let count = generated.firstMatch(in: r.stdout, range: NSRange(location: 0, length: ns.length)).map {
            Int(ns.substring(with: $0.range(at: 1))) ?? 0
        }
        XCTAssertGreaterThanOrEqual(count ?? 0, 100, r.stdout)
        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        // No request failed inside the server (a 500 is logged as "request failed").
        XCTAssertFalse(stop.stderr.contains("request failed"), stop.stderr)
        // Nothing schemathesis made up reached the inbox half-written.
        XCTAssertFalse(spool.allFiles("inbox").contains { $0.hasSuffix(".tmp") }, "\(spool.allFiles("inbox"))")
    }
}
