import DSARCore
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOConcurrencyHelpers

/// `serve.auth: jwt`: every request carries `Authorization: Bearer <JWT>`, verified with jwt-kit
/// against the keys of `serve.jwt` (a JWKS file and/or PEM public keys).
///
/// Only RS256, ES256 and EdDSA are accepted, and each key has exactly one algorithm: a token must
/// name that algorithm (`alg: none`, HS256 with a public key as its secret, or ES256 against an RSA key
/// never reach a signature check). `iss`, `aud`, `exp` (required) and `nbf` are checked against
/// ``DSARClock`` with `leeway` seconds of skew. Scopes come from `scope` (space-separated) or
/// `scp` (a list). No or bad credentials: 401 with `WWW-Authenticate: Bearer error="invalid_token"`;
/// a valid token without the route's scope: 403 (`error="insufficient_scope"`).
///
/// The JWKS file is re-read when it changes (checked at most once a second, off the event loop); a
/// changed file that does not parse leaves the previous keys in use, with an error in the log.
package final class JWTAuthorizer: Authorizer {
    /// A public key of one of the accepted algorithms.
    enum Material: Sendable {
        case rs256(JWTKit.Insecure.RSA.PublicKey)
        case es256(ES256PublicKey)
        case eddsa(EdDSA.PublicKey)

        /// A jwt-kit collection holding only this key, with only its algorithm.
        func collection() async -> JWTKeyCollection {
            let c = JWTKeyCollection()
            switch self {
            case .rs256(let k): await c.add(rsa: k, digestAlgorithm: .sha256)
            case .es256(let k): await c.add(ecdsa: k)
            case .eddsa(let k): await c.add(eddsa: k)
            }
            return c
        }
    }

    /// One verification key: its algorithm, its `kid` (if any), and the key.
    struct Key: Sendable {
        let alg: String
        let kid: String?
        let material: Material
        /// Where it came from, for messages (`config.yaml:12`, `jwks.json key 2`).
        let source: String
    }

    struct JWKSState: Sendable {
        var keys: [Key]
        var stamp: FileSystem.Status?
        var checked: Date
    }

    /// The token's claims dsar reads (the signature is checked by jwt-kit, the claims here).
    struct Claims: JWTPayload {
        var iss: String?
        var sub: String?
        var aud: [String]?
        var exp: Double?
        var nbf: Double?
        var scope: String?
        var scp: [String]?

        enum CodingKeys: String, CodingKey { case iss, sub, aud, exp, nbf, scope, scp }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            iss = try c.decodeIfPresent(String.self, forKey: .iss)
            sub = try c.decodeIfPresent(String.self, forKey: .sub)
            if let one = try? c.decodeIfPresent(String.self, forKey: .aud) {
                aud = [one]
            } else {
                aud = try c.decodeIfPresent([String].self, forKey: .aud)
            }
            exp = try c.decodeIfPresent(Double.self, forKey: .exp)
            nbf = try c.decodeIfPresent(Double.self, forKey: .nbf)
            scope = try c.decodeIfPresent(String.self, forKey: .scope)
            if let one = try? c.decodeIfPresent(String.self, forKey: .scp) {
                scp = one.split(separator: " ").map(String.init)
            } else {
                scp = try c.decodeIfPresent([String].self, forKey: .scp)
            }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(iss, forKey: .iss)
            try c.encodeIfPresent(sub, forKey: .sub)
            try c.encodeIfPresent(aud, forKey: .aud)
            try c.encodeIfPresent(exp, forKey: .exp)
            try c.encodeIfPresent(nbf, forKey: .nbf)
            try c.encodeIfPresent(scope, forKey: .scope)
            try c.encodeIfPresent(scp, forKey: .scp)
        }

        /// The claims are checked by ``JWTAuthorizer`` (with ``DSARClock`` and the configured leeway).
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    /// Longest `Authorization` value accepted.
    static let maxTokenBytes = 16 << 10

    let settings: JWTSettings
    let configured: [Key]
    let jwksPath: String?
    let jwks: NIOLockedValueBox<JWKSState>
    let logger: Logger

    /// Loads the keys of `serve.jwt` (relative paths are relative to the spool root). Throws a
    /// config error naming the file and line of a key that cannot be used.
    package init(settings: JWTSettings, layout: SpoolLayout, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : layout.root + "/" + p }
        var keys: [Key] = []
        for (i, k) in settings.keys.enumerated() {
            let at = "\(layout.config):\(k.line): serve.jwt.keys[\(i)]"
            let pem: String
            if let file = k.file {
                let path = resolve(file)
                do {
                    pem = String(decoding: try FileSystem.readFile(path, limit: 64 << 10), as: UTF8.self)
                } catch {
                    throw DSARError(
                        .config,
                        "\(at): cannot read the PEM public key \(path): \((error as? DSARError)?.message ?? "\(error)")",
                        path: path)
                }
            } else {
                pem = k.pem ?? ""
            }
            let material: Material
            do {
                material = try JWTAuthorizer.material(pem: pem, alg: k.alg)
            } catch {
                throw DSARError(
                    .config,
                    "\(at): not a \(k.alg) public key in PEM (-----BEGIN PUBLIC KEY-----\(k.alg == "RS256" ? ", RSA of at least 2048 bits" : k.alg == "ES256" ? ", EC P-256" : ", Ed25519")): \(error)",
                    path: layout.config)
            }
            keys.append(Key(alg: k.alg, kid: k.kid, material: material, source: "\(layout.config):\(k.line)"))
        }
        self.configured = keys
        self.jwksPath = settings.jwksFile.map(resolve)
        var state = JWKSState(keys: [], stamp: nil, checked: Date())
        if let path = jwksPath {
            do {
                let (loaded, skipped, stamp) = try JWTAuthorizer.loadJWKS(path)
                for why in skipped {
                    logger.warning("JWKS key not used", metadata: ["file": "\(path)", "why": "\(why)"])
                }
                state.keys = loaded
                state.stamp = stamp
            } catch let e as DSARError {
                throw DSARError(
                    .config, "\(layout.config):\(settings.line): serve.jwt.jwks_file: \(e.message)", path: path)
            }
        }
        self.jwks = NIOLockedValueBox(state)
    }

    // MARK: keys

    /// A PEM public key for `alg`.
    static func material(pem: String, alg: String) throws -> Material {
        switch alg {
        case "RS256": .rs256(try JWTKit.Insecure.RSA.PublicKey(pem: pem))
        case "ES256": .es256(try ES256PublicKey(pem: pem))
        case "EdDSA": .eddsa(try EdDSA.PublicKey(pem: pem))
        default: throw DSARError(.config, "algorithm \(alg) is not accepted")
        }
    }

    /// Reads a JWKS file: the usable keys, why others were skipped, and the file's stamp.
    static func loadJWKS(_ path: String) throws -> ([Key], [String], FileSystem.Status?) {
        let stamp = try FileSystem.status(path)
        let bytes: [UInt8]
        do { bytes = try FileSystem.readFile(path, limit: 1 << 20) } catch {
            throw DSARError(.config, "cannot read \(path): \((error as? DSARError)?.message ?? "\(error)")", path: path)
        }
        guard let doc = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let list = doc["keys"] as? [Any]
        else {
            throw DSARError(
                .config, "\(path) is not a JWKS document (expected a JSON object {\"keys\": [ … ]})", path: path)
        }
        var keys: [Key] = []
        var skipped: [String] = []
        for (i, item) in list.enumerated() {
            let name = "key \(i + 1)"
            guard let jwk = item as? [String: Any] else {
                skipped.append("\(name): not a JSON object")
                continue
            }
            let kid = jwk["kid"] as? String
            let label = kid.map { "\(name) (kid \"\($0)\")" } ?? name
            if let use = jwk["use"] as? String, use != "sig" {
                skipped.append("\(label): use is \"\(use)\", not sig")
                continue
            }
            let kty = jwk["kty"] as? String ?? ""
            let crv = jwk["crv"] as? String
            let implied: String? =
                switch (kty, crv) {
                case ("RSA", _): "RS256"
                case ("EC", "P-256"): "ES256"
                case ("OKP", "Ed25519"): "EdDSA"
                default: nil
                }
            guard let alg = implied else {
                skipped.append(
                    "\(label): kty \"\(kty)\"\(crv.map { " crv \"\($0)\"" } ?? "") is not RSA, EC P-256 or OKP Ed25519")
                continue
            }
            if let declared = jwk["alg"] as? String, declared != alg {
                skipped.append(
                    "\(label): alg \"\(declared)\" is not accepted for this key (accepted: \(JWTSettings.algorithms.joined(separator: ", ")); a \(kty) key is used with \(alg) only)"
                )
                continue
            }
            let material: Material
            do {
                switch alg {
                case "RS256":
                    guard let n = jwk["n"] as? String, let e = jwk["e"] as? String else {
                        throw DSARError(.config, "n or e is missing")
                    }
                    material = .rs256(try JWTKit.Insecure.RSA.PublicKey(modulus: n, exponent: e))
                case "ES256":
                    guard let x = jwk["x"] as? String, let y = jwk["y"] as? String else {
                        throw DSARError(.config, "x or y is missing")
                    }
                    material = .es256(try ES256PublicKey(parameters: (x: x, y: y)))
                default:
                    guard let x = jwk["x"] as? String else { throw DSARError(.config, "x is missing") }
                    material = .eddsa(try EdDSA.PublicKey(x: x, curve: .ed25519))
                }
            } catch {
                skipped.append(
                    "\(label): not a usable \(alg) public key: \((error as? DSARError)?.message ?? "\(error)")")
                continue
            }
            keys.append(Key(alg: alg, kid: kid, material: material, source: "\(path) \(label)"))
        }
        guard !keys.isEmpty else {
            throw DSARError(
                .config,
                "\(path) has no usable key (RSA for RS256, EC P-256 for ES256, OKP Ed25519 for EdDSA)\(skipped.isEmpty ? "" : ": " + skipped.joined(separator: "; "))",
                path: path)
        }
        return (keys, skipped, stamp)
    }

    /// Re-reads the JWKS file when it changed (checked at most once a second, on ``BlockingIO``).
    func refreshJWKS() async {
        guard let path = jwksPath else { return }
        let due = jwks.withLockedValue { s -> Bool in
            guard Date().timeIntervalSince(s.checked) >= 1 else { return false }
            s.checked = Date()
            return true
        }
        guard due else { return }
        let current = jwks.withLockedValue { $0.stamp }
        let logger = self.logger
        let fresh: JWKSState? = try? await BlockingIO.run {
            let stamp = try? FileSystem.status(path)
            guard stamp != current else { return nil }
            do {
                let (keys, skipped, stamp) = try JWTAuthorizer.loadJWKS(path)
                for why in skipped {
                    logger.warning("JWKS key not used", metadata: ["file": "\(path)", "why": "\(why)"])
                }
                logger.info("JWKS reloaded", metadata: ["file": "\(path)", "keys": "\(keys.count)"])
                return JWKSState(keys: keys, stamp: stamp, checked: Date())
            } catch {
                logger.error(
                    "JWKS file changed but cannot be used; the previous keys stay in use",
                    metadata: ["file": "\(path)", "error": "\((error as? DSARError)?.message ?? "\(error)")"])
                // Do not retry the same broken file every second: remember its stamp.
                return JWKSState(keys: [], stamp: stamp, checked: Date())
            }
        }
        guard let fresh else { return }
        jwks.withLockedValue { s in
            if !fresh.keys.isEmpty { s.keys = fresh.keys }
            s.stamp = fresh.stamp
        }
    }

    // MARK: Authorizer

    /// Verifies the bearer token and requires `scope`.
    package func authorize(_ request: Request, scope: Scope) async throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw Problem(
                .unauthorized, "unauthorized", title: "Authentication required",
                detail: "no credentials: send Authorization: Bearer <JWT> (a token from \(settings.issuer))",
                instance: request.uri.path, headers: [.wwwAuthenticate: "Bearer realm=\"dsar\""])
        }
        let principal = try await verify(header, instance: request.uri.path)
        guard principal.scopes.contains(scope) else {
            throw Problem(
                .forbidden, "insufficient-scope", title: "Not allowed",
                detail:
                    "the token does not grant \(scope.rawValue) (needed for \(request.method.rawValue) \(request.uri.path)); it grants: \(principal.scopes.isEmpty ? "no dsar scope" : principal.scopes.map(\.rawValue).sorted().joined(separator: " "))",
                instance: request.uri.path,
                headers: [
                    .wwwAuthenticate: "Bearer realm=\"dsar\", error=\"insufficient_scope\", scope=\"\(scope.rawValue)\""
                ])
        }
        return principal
    }

    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`.
    static func invalid(_ detail: String, _ instance: String) -> Problem {
        Problem(
            .unauthorized, "invalid-token", title: "Authentication required", detail: detail, instance: instance,
            headers: [.wwwAuthenticate: "Bearer realm=\"dsar\", error=\"invalid_token\""])
    }

    /// Verifies an `Authorization` header value: signature, algorithm, `iss`, `aud`, `exp`, `nbf`.
    func verify(_ header: String, instance: String) async throws -> Principal {
        let bad = { (why: String) in JWTAuthorizer.invalid(why, instance) }
        guard header.utf8.count <= JWTAuthorizer.maxTokenBytes else {
            throw bad("the Authorization header is longer than \(JWTAuthorizer.maxTokenBytes) bytes")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw bad("the Authorization header is not \"Bearer <JWT>\"")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard segments.count == 3, !segments[2].isEmpty else {
            throw bad("the bearer token is not a signed JWT (expected header.payload.signature)")
        }
        guard let headerBytes = JWTAuthorizer.base64URLDecode(segments[0]),
            let jose = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else {
            throw bad("the token's header is not base64url-encoded JSON")
        }
        guard let alg = jose["alg"] as? String, JWTSettings.algorithms.contains(alg) else {
            throw bad(
                "the token's algorithm \(jose["alg"].map { "\"\($0)\"" } ?? "(none given)") is not accepted; accepted: \(JWTSettings.algorithms.joined(separator: ", "))"
            )
        }
        if jose["crit"] != nil {
            throw bad("the token has critical header parameters (crit), which dsar does not support")
        }
        let kid = jose["kid"] as? String
        await refreshJWKS()
        let all = configured + jwks.withLockedValue { $0.keys }
        let candidates = all.filter { $0.alg == alg && (kid == nil || $0.kid == kid) }
        guard !candidates.isEmpty else {
            if let kid, !all.contains(where: { $0.kid == kid }) {
                throw bad("the token's key id (kid \"\(kid)\") is not among the configured keys")
            }
            throw bad("no configured key is for \(alg)\(kid.map { " with kid \"\($0)\"" } ?? "")")
        }
        var claims: Claims?
        var failure: (any Error)?
        for key in candidates {
            do {
                claims = try await key.material.collection().verify(token, as: Claims.self)
                break
            } catch {
                failure = error
            }
        }
        guard let claims else {
            if let e = failure as? JWTError, e.errorType == .signatureVerificationFailed {
                throw bad(
                    "the token's signature does not verify with the \(alg) key\(candidates.count > 1 ? "s" : "") configured"
                )
            }
            throw bad("the token cannot be verified: \(failure.map { "\($0)" } ?? "unknown error")")
        }
        let now = DSARClock.now().timeIntervalSince1970
        let leeway = settings.leeway
        guard let exp = claims.exp else { throw bad("the token has no expiry (exp)") }
        guard now <= exp + leeway else {
            throw bad("the token expired at \(Timestamp.format(Date(timeIntervalSince1970: exp)))")
        }
        if let nbf = claims.nbf, now + leeway < nbf {
            throw bad("the token is not valid before \(Timestamp.format(Date(timeIntervalSince1970: nbf)))")
        }
        guard claims.iss == settings.issuer else {
            throw bad(
                "the token's issuer (iss) is \(claims.iss.map { "\"\($0)\"" } ?? "missing"); expected \"\(settings.issuer)\""
            )
        }
        guard let aud = claims.aud, aud.contains(where: { settings.audience.contains($0) }) else {
            throw bad(
                "the token's audience (aud) is \(claims.aud.map { "\($0)" } ?? "missing"); expected \(settings.audience.count == 1 ? "\"\(settings.audience[0])\"" : "one of \(settings.audience)")"
            )
        }
        let names = (claims.scope?.split(separator: " ").map(String.init) ?? []) + (claims.scp ?? [])
        return Principal(name: claims.sub, scopes: Set(names.compactMap(Scope.init(rawValue:))))
    }

    /// base64url without padding (RFC 7515) to bytes; nil when it is not.
    static func base64URLDecode(_ s: Substring) -> [UInt8]? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        if t.contains("=") { return nil }
        while t.utf8.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { Array($0) }
    }
}
