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
///   trusted_proxies: [127.0.0.1, "::1"]  # peers whose X-Forwarded-For names the client
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
    /// `serve.trusted_proxies`: peers (addresses or CIDR networks) whose `X-Forwarded-For` names
    /// the client, for the rate limit and the log. Empty: the header is ignored.
    package var trustedProxies: [IPNetwork] = []
    /// Line of `serve:` in config.yaml (0 when absent), for error messages.
    package var line = 0
    /// `serve.jwt`: how bearer JWTs are verified (required with `auth: jwt`).
    package var jwt: JWTSettings?
    /// `serve.require_signature`: submits need an SSHSIG over the body in `X-DSAR-Signature` by a key
    /// in `request_signers`. nil: as the spool's `require_signed_requests`.
    package var requireSignature: Bool?

    /// The defaults (no `auth`: the server refuses to start).
    package init() {}

    /// Every key `serve:` accepts (later parts extend it, e.g. `jwt`).
    package static let keys = [
        "listen", "auth", "rate_limit", "header_timeout", "idle_timeout", "download_ttl", "jwt", "require_signature",
        "trusted_proxies",
    ]

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
        if let v = s.bool("require_signature") { c.requireSignature = v }
        if let list = s.strings("trusted_proxies") {
            for text in list {
                if let n = IPNetwork(text) {
                    c.trustedProxies.append(n)
                } else {
                    s.problem(
                        "trusted_proxies",
                        "\"\(text)\" is not an IP address or a CIDR network (e.g. [127.0.0.1, \"::1\", 10.0.0.0/8])")
                }
            }
        }
        if s.has("jwt") {
            if let j = s.map("jwt") { c.jwt = JWTSettings.parse(j) }
        } else if c.auth == .jwt {
            s.problem(
                "auth",
                "auth: jwt needs a jwt: section with issuer, audience and jwks_file or keys (e.g. jwt: { issuer: https://idp.example.com/, audience: dsar-api, jwks_file: /etc/dsar/jwks.json })"
            )
        }
        s.rejectUnknownKeys(allowed: keys)
        return c
    }
}

/// `serve.jwt`: bearer JWTs, verified against a JWKS file and/or configured public keys.
///
/// ```yaml
/// jwt:
///   issuer: https://idp.example.com/     # the `iss` every token must carry
///   audience: [dsar-api]                 # `aud` must name one of these
///   leeway: 60                           # seconds of clock skew allowed on exp/nbf
///   jwks_file: /etc/dsar/jwks.json       # keys with kty RSA (RS256), EC P-256 (ES256), OKP Ed25519 (EdDSA)
///   keys:                                # and/or PEM public keys
///     - { alg: RS256, kid: portal, file: /etc/dsar/portal.pem }
/// ```
/// Only RS256, ES256 and EdDSA are accepted; every key has one algorithm, and a token must name it.
package struct JWTSettings: Sendable, Equatable {
    /// One configured PEM public key.
    package struct Key: Sendable, Equatable {
        /// RS256, ES256 or EdDSA.
        package var alg: String
        /// The `kid` tokens name it by (optional).
        package var kid: String?
        /// A PEM file (relative paths: to the spool root).
        package var file: String?
        /// Inline PEM text.
        package var pem: String?
        /// Its line in config.yaml.
        package var line: Int
    }

    /// The algorithms accepted.
    package static let algorithms = ["RS256", "ES256", "EdDSA"]

    /// Required `iss`.
    package var issuer = ""
    /// Accepted `aud` values (a token's `aud` must contain one).
    package var audience: [String] = []
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    package var leeway = 60.0
    /// A JWKS JSON file (relative paths: to the spool root); re-read when it changes.
    package var jwksFile: String?
    /// PEM public keys.
    package var keys: [Key] = []
    /// Line of `jwt:` in config.yaml.
    package var line = 0

    /// Every key `serve.jwt` accepts.
    package static let configKeys = ["issuer", "audience", "leeway", "jwks_file", "keys"]

    static func parse(_ j: YAMLMap) -> JWTSettings {
        var c = JWTSettings()
        c.line = j.line
        if let v = j.string("issuer", required: true) {
            if v.isEmpty {
                j.problem("issuer", "expected the issuer (iss) of the tokens, e.g. https://idp.example.com/")
            }
            c.issuer = v
        }
        if let v = j.strings("audience", required: true) {
            if v.isEmpty || v.contains(where: \.isEmpty) {
                j.problem("audience", "expected the audience (aud) tokens are issued for, e.g. dsar-api")
            }
            c.audience = v
        }
        if let v = j.seconds("leeway", range: 0...3600) { c.leeway = v }
        if let v = j.string("jwks_file") { c.jwksFile = v }
        if let list = j.maps("keys") {
            for k in list {
                var key = Key(alg: "", line: k.line)
                if let alg = k.string("alg", required: true) {
                    if JWTSettings.algorithms.contains(alg) {
                        key.alg = alg
                    } else {
                        k.problem(
                            "alg",
                            "\"\(alg)\" is not accepted; expected one of: \(JWTSettings.algorithms.joined(separator: ", ")) (none and HS* are refused: a shared secret or no signature proves nothing about the issuer)"
                        )
                    }
                }
                key.kid = k.string("kid")
                key.file = k.string("file")
                key.pem = k.string("pem")
                if (key.file == nil) == (key.pem == nil) {
                    k.problemHere("expected exactly one of file: (a PEM public key file) or pem: (the PEM text)")
                }
                k.rejectUnknownKeys(allowed: ["alg", "kid", "file", "pem"])
                c.keys.append(key)
            }
        }
        if c.jwksFile == nil && c.keys.isEmpty {
            j.problemHere("expected jwks_file: (a JWKS JSON file) or keys: (PEM public keys with their alg), or both")
        }
        j.rejectUnknownKeys(allowed: configKeys)
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
