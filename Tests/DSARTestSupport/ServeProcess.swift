import DSARCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The real `dsar serve --listen 127.0.0.1:0` on a ``TempSpool``: started, waited for until it
/// prints `listening on http://HOST:PORT`, stopped with SIGTERM. Requests go through `curl`.
package final class ServeProcess: @unchecked Sendable {
    package let child: Child
    /// `http://127.0.0.1:PORT`.
    package let baseURL: String

    /// Starts the server and waits (at most `timeout` s) for its `listening on` line.
    package init(
        _ spool: TempSpool, extraArgs: [String] = [], env: [String: String] = [:], timeout: Double = 30
    ) throws {
        child = try spool.start(["serve", "--listen", "127.0.0.1:0"] + extraArgs, env: env)
        var url: String?
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = child.stdoutSoFar().split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                url = String(line.dropFirst("listening on ".count))
                break
            }
            if !child.process.isRunning { break }
            usleep(20_000)
        }
        guard let url else {
            let r = child.process.isRunning ? nil : try? child.wait(timeout: 5)
            if child.process.isRunning { child.signal(SIGKILL) }
            throw TestFailure(
                "dsar serve did not print `listening on` within \(timeout) s (exit \(r.map { "\($0.status)" } ?? "-")); stderr: \(r?.stderr ?? child.stderrSoFar())"
            )
        }
        baseURL = url
    }

    deinit { if child.process.isRunning { child.signal(SIGKILL) } }

    /// Sends SIGTERM and waits for the exit.
    @discardableResult
    package func stop(timeout: Double = 40) throws -> CommandResult {
        child.signal(SIGTERM)
        return try child.wait(timeout: timeout)
    }

    /// One HTTP exchange with curl.
    package struct Response: Sendable {
        package var status: Int
        /// Header names lower-cased.
        package var headers: [String: String]
        package var body: String

        /// The body as a JSON object.
        package func json() throws -> [String: Any] {
            guard let o = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw TestFailure("not a JSON object: \(body)")
            }
            return o
        }
    }

    /// Runs curl against `path` and parses status, headers and body.
    package func curl(
        _ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:],
        extra: [String] = [], timeout: Double = 30
    ) throws -> Response {
        let tmp = NSTemporaryDirectory() + "dsar-curl-\(UUID().uuidString)"
        defer {
            unlink(tmp + ".h")
            unlink(tmp + ".b")
            unlink(tmp + ".in")
        }
        var args = ["-sS", "-X", method, "-D", tmp + ".h", "-o", tmp + ".b", "--max-time", String(Int(timeout))]
        for (k, v) in headers.sorted(by: { $0.key < $1.key }) { args += ["-H", "\(k): \(v)"] }
        if let body {
            _ = FileManager.default.createFile(atPath: tmp + ".in", contents: Data(body.utf8))
            args += ["--data-binary", "@" + tmp + ".in"]
        }
        args += extra + [baseURL + path]
        let r = try runCommand("/usr/bin/curl", args, timeout: timeout + 10)
        guard r.status == 0 else { throw TestFailure("curl \(args) failed (\(r.status)): \(r.stderr)") }
        let head = String(decoding: FileManager.default.contents(atPath: tmp + ".h") ?? Data(), as: UTF8.self)
        // The last response's head (curl may show a 100 Continue first).
        let block = head.components(separatedBy: "\r\n\r\n").filter { $0.hasPrefix("HTTP/") }.last ?? ""
        let lines = block.components(separatedBy: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var fields: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            fields[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        let b = String(decoding: FileManager.default.contents(atPath: tmp + ".b") ?? Data(), as: UTF8.self)
        return Response(status: status, headers: fields, body: b)
    }

    /// POSTs a JSON body to `/dsar`.
    package func submit(_ json: String, headers: [String: String] = [:]) throws -> Response {
        var h = headers
        if h["Content-Type"] == nil { h["Content-Type"] = "application/json" }
        return try curl("POST", "/dsar", body: json, headers: h)
    }
}
