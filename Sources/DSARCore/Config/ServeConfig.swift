import Foundation

/// Settings of `dsar serve`, the HTTP API over the spool (`serve:` in `config.yaml`).
///
/// ```yaml
/// serve:
///   listen: 127.0.0.1:8080
///   auth: none            # none | jwt (required: no endpoint works anonymously unless `auth: none`)
///   rate_limit: 600       # requests per minute per client address
///   header_timeout: 10    # seconds to receive a request's head
///   idle_timeout: 60      # seconds a keep-alive connection may stay idle
///   download_ttl: 3600    # seconds a download link stays valid
/// ```
package struct ServeConfig: Sendable, Equatable {
    /// How requests are authenticated.
    package enum Auth: String, Sendable, Equatable, CaseIterable {
        /// Every request is let through (loudly logged at start).
        case none
        /// Bearer JWTs (configured under `serve.jwt`, added with the JWT authorizer).
        case jwt
    }

    /// `HOST:PORT` to listen on (the `--listen` flag overrides it).
    package var listen = "127.0.0.1:8080"
    /// nil when `serve.auth` is absent: the server then refuses to start.
    package var auth: Auth?
    /// Requests per minute per client address (0: no limit).
    package var rateLimit = 600
    /// Seconds a client has to send a request's head (and each body chunk).
    package var headerTimeout = 10.0
    /// Seconds a keep-alive connection may stay idle before it is closed.
    package var idleTimeout = 60.0
    /// Seconds a signed download link stays valid.
    package var downloadTTL = 3600.0
    /// Line of `serve:` in config.yaml (0 when absent), for error messages.
    package var line = 0

    /// The defaults (no `auth`: the server refuses to start).
    package init() {}

    /// Every key `serve:` accepts (later parts extend it, e.g. `jwt`).
    package static let keys = ["listen", "auth", "rate_limit", "header_timeout", "idle_timeout", "download_ttl"]

    /// Reads `serve:` from a spool config (problems are recorded on `y`, with file and line).
    static func parse(_ y: YAMLMap) -> ServeConfig {
        var c = ServeConfig()
        guard y.has("serve") else { return c }
        c.line = y.line(of: "serve")
        guard let s = y.map("serve") else { return c }
        if let v = s.string("listen") {
            if case .failure(let why) = ListenAddress.parse(v) {
                s.problem("listen", why.message)
            } else {
                c.listen = v
            }
        }
        if let v = s.string("auth") {
            if let a = Auth(rawValue: v) {
                c.auth = a
            } else {
                s.problem("auth", "expected one of: \(Auth.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let v = s.int("rate_limit", range: 0...1_000_000) { c.rateLimit = v }
        if let v = s.seconds("header_timeout", range: 1...3600) { c.headerTimeout = v }
        if let v = s.seconds("idle_timeout", range: 1...86400) { c.idleTimeout = v }
        if let v = s.seconds("download_ttl", range: 10...(7 * 86400)) { c.downloadTTL = v }
        s.rejectUnknownKeys(allowed: keys)
        return c
    }
}

/// A `HOST:PORT` listen address (`127.0.0.1:8080`, `[::1]:8080`, `localhost:0`).
package struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// Host name or IP address, without brackets.
    package var host: String
    /// Port (0: the system picks one).
    package var port: Int

    /// An address.
    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; the failure says what was expected.
    package static func parse(_ text: String) -> Result<ListenAddress, DSARError> {
        let bad = DSARError(
            .usage, "listen address \"\(text)\" is not HOST:PORT (e.g. 127.0.0.1:8080, [::1]:8080, 127.0.0.1:0)")
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return .failure(bad)
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(bad) }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            if host.contains(":") { return .failure(bad) }
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return .failure(bad) }
        return .success(ListenAddress(host: String(host), port: port))
    }

    /// Whether only this machine can connect (127.0.0.0/8, ::1, localhost).
    package var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.") && host.split(separator: ".").count == 4
    }

    /// The address as an HTTP URL's authority (`127.0.0.1:8080`, `[::1]:8080`).
    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
