import Crypto
import DSARCore
import DSARTestSupport
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `dsar serve` authentication through the real binary and curl: bearer JWTs minted here (Ed25519
/// and P-256 with swift-crypto, RS256 with the `openssl` CLI) against a JWKS file and a PEM key, and
/// SSHSIG body signatures made by the real `ssh-keygen -Y sign`.
final class ServeAuthE2ETests: XCTestCase {
    static let issuer = "https://idp.test.example/"

    // MARK: minting

    static func b64url(_ bytes: some DataProtocol) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func json(_ o: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    /// `header.payload.signature`, the signature made by `sign` over `header.payload`.
    static func mint(_ header: [String: Any], _ claims: [String: Any], sign: (Data) throws -> Data) throws -> String {
        let input = b64url(try json(header)) + "." + b64url(try json(claims))
        return input + "." + b64url(try sign(Data(input.utf8)))
    }

    /// Claims valid now for `aud` with `scope`, overridden by `extra` (NSNull removes a claim).
    static func claims(scope: String? = "dsar:submit dsar:read", _ extra: [String: Any] = [:]) -> [String: Any] {
        let now = Date().timeIntervalSince1970
        var c: [String: Any] = [
            "iss": issuer, "aud": "dsar-api", "sub": "portal-client", "iat": Int(now), "exp": Int(now) + 600,
            "nbf": Int(now) - 5,
        ]
        if let scope { c["scope"] = scope }
        for (k, v) in extra {
            if v is NSNull { c.removeValue(forKey: k) } else { c[k] = v }
        }
        return c
    }

    struct Keys {
        let ed = Curve25519.Signing.PrivateKey()
        let ed2 = Curve25519.Signing.PrivateKey()
        let p256 = P256.Signing.PrivateKey()
        let rsaKey: String
        let rsaPub: String

        func edToken(
            _ claims: [String: Any], kid: String = "ed", key: Curve25519.Signing.PrivateKey? = nil
        ) throws
            -> String
        {
            try ServeAuthE2ETests.mint(["alg": "EdDSA", "typ": "JWT", "kid": kid], claims) {
                try (key ?? ed).signature(for: $0)
            }
        }

        func esToken(_ claims: [String: Any], kid: String = "es") throws -> String {
            try ServeAuthE2ETests.mint(["alg": "ES256", "typ": "JWT", "kid": kid], claims) {
                try p256.signature(for: $0).rawRepresentation
            }
        }

        /// RS256 signed by `openssl dgst -sha256 -sign` (an independent implementation).
        func rsToken(_ claims: [String: Any], dir: String) throws -> String {
            try ServeAuthE2ETests.mint(["alg": "RS256", "typ": "JWT", "kid": "rsa"], claims) { input in
                let inFile = dir + "/rs-input"
                let sigFile = dir + "/rs-sig"
                try input.write(to: URL(fileURLWithPath: inFile))
                let r = try runCommand(
                    "/usr/bin/openssl", ["dgst", "-sha256", "-sign", rsaKey, "-out", sigFile, inFile], timeout: 30)
                guard r.status == 0 else { throw TestFailure("openssl dgst -sign failed: \(r.stderr)") }
                return try Data(contentsOf: URL(fileURLWithPath: sigFile))
            }
        }

        func jwks(withSecondKey: Bool = false) throws -> Data {
            let x963 = p256.publicKey.x963Representation
            var keys: [[String: Any]] = [
                [
                    "kty": "OKP", "crv": "Ed25519", "kid": "ed", "use": "sig",
                    "x": b64url(ed.publicKey.rawRepresentation),
                ],
                [
                    "kty": "EC", "crv": "P-256", "kid": "es", "alg": "ES256",
                    "x": b64url(x963[1..<33]), "y": b64url(x963[33..<65]),
                ],
                // An encryption key and an HS256 secret in the same file are skipped, never used.
                ["kty": "oct", "kid": "hs", "alg": "HS256", "k": b64url(Data("secret".utf8))],
            ]
            if withSecondKey {
                keys.append(
                    ["kty": "OKP", "crv": "Ed25519", "kid": "ed2", "x": b64url(ed2.publicKey.rawRepresentation)])
            }
            return try ServeAuthE2ETests.json(["keys": keys])
        }
    }

    func makeKeys(_ base: String) throws -> Keys {
        let key = base + "/rsa.key"
        let pub = base + "/rsa.pub"
        let g = try runCommand(
            "/usr/bin/openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
            timeout: 60)
        XCTAssertEqual(g.status, 0, g.stderr)
        let p = try runCommand("/usr/bin/openssl", ["pkey", "-in", key, "-pubout", "-out", pub], timeout: 30)
        XCTAssertEqual(p.status, 0, p.stderr)
        return Keys(rsaKey: key, rsaPub: pub)
    }

    func jwtConfig(_ base: String, leeway: Int = 30) -> String {
        """
        serve:
          auth: jwt
          jwt:
            issuer: \(Self.issuer)
            audience: [dsar-api, reporting]
            leeway: \(leeway)
            jwks_file: \(base)/jwks.json
            keys:
              - { alg: RS256, kid: rsa, file: \(base)/rsa.pub }

        """
    }

    func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }

    /// The problem document's `detail`.
    func detail(_ r: ServeProcess.Response) throws -> String { try r.json()["detail"] as? String ?? "" }

    // MARK: JWT

    func testBearerJWTsAreVerifiedAgainstTheJWKSAndPEMKeysWithScopes() throws {
        let spool = try TempSpool()
        let k = try makeKeys(spool.base)
        try k.jwks().write(to: URL(fileURLWithPath: spool.base + "/jwks.json"))
        try spool.initialize(extraConfig: jwtConfig(spool.base))
        let server = try ServeProcess(spool)

        // Valid Ed25519 (JWKS) token with dsar:submit: accepted, and the job can be read back.
        let submitter = try k.edToken(Self.claims())
        let sub = try server.submit(#"{"user_id": "12345", "action": "export"}"#, headers: bearer(submitter))
        XCTAssertEqual(sub.status, 202, sub.body)
        let jobID = try XCTUnwrap(try sub.json()["jobId"] as? String)
        let read = try server.curl("GET", "/dsar/\(jobID)", headers: bearer(submitter))
        XCTAssertEqual(read.status, 200, read.body)
        XCTAssertEqual(try read.json()["status"] as? String, "PENDING")

        // ES256 (JWKS) with scp as a list, and RS256 from the PEM key signed by openssl.
        let es = try k.esToken(Self.claims(scope: nil, ["scp": ["dsar:read"]]))
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)/events", headers: bearer(es)).status, 200)
        let rs = try k.rsToken(Self.claims(scope: "dsar:read"), dir: spool.base)
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(rs)).status, 200)
        // aud as a list naming one configured audience; exp 10 s ago is within the 30 s leeway.
        let listAud = try k.edToken(Self.claims(["aud": ["someone-else", "reporting"]]))
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(listAud)).status, 200)
        let skewed = try k.edToken(Self.claims(["exp": Int(now()) - 10]))
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(skewed)).status, 200)

        // Valid token without the scope: 403 insufficient_scope, and nothing is written.
        let before = spool.allFiles("inbox")
        let forbidden = try server.submit(#"{"user_id": "777", "action": "export"}"#, headers: bearer(es))
        XCTAssertEqual(forbidden.status, 403, forbidden.body)
        XCTAssertEqual(forbidden.headers["content-type"], "application/problem+json")
        XCTAssertTrue(forbidden.headers["www-authenticate"]?.contains("error=\"insufficient_scope\"") == true)
        XCTAssertTrue(try detail(forbidden).contains("does not grant dsar:submit"), forbidden.body)
        XCTAssertEqual(spool.allFiles("inbox"), before)
        XCTAssertEqual(
            try server.curl("GET", "/metrics", headers: bearer(try k.edToken(Self.claims(scope: "dsar:submit"))))
                .status, 403)
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)/download", headers: bearer(submitter)).status, 403)

        // No credentials at all: 401 with a Bearer challenge; /healthz stays open.
        let none = try server.curl("GET", "/dsar/\(jobID)")
        XCTAssertEqual(none.status, 401, none.body)
        XCTAssertTrue(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(none.headers)")
        XCTAssertEqual(try server.curl("GET", "/healthz").status, 200)

        // Every bad token: 401 invalid_token, with the reason.
        let otherEd = Curve25519.Signing.PrivateKey()
        let rsaPEM = try String(contentsOfFile: k.rsaPub, encoding: .utf8)
        let noneHeader = Self.b64url(try Self.json(["alg": "none", "typ": "JWT"]))
        let body = Self.b64url(try Self.json(Self.claims()))
        let bad: [(String, String, String)] = [
            ("expired", try k.edToken(Self.claims(["exp": Int(now()) - 3600])), "expired"),
            ("not yet valid", try k.edToken(Self.claims(["nbf": Int(now()) + 3600])), "not valid before"),
            ("wrong audience", try k.edToken(Self.claims(["aud": "another-api"])), "audience"),
            ("no audience", try k.edToken(Self.claims(["aud": NSNull()])), "audience"),
            ("wrong issuer", try k.edToken(Self.claims(["iss": "https://evil.example/"])), "issuer"),
            ("no expiry", try k.edToken(Self.claims(["exp": NSNull()])), "no expiry"),
            ("bad signature", try k.edToken(Self.claims(), key: otherEd), "signature does not verify"),
            (
                "tampered payload",
                try {
                    let t = try k.edToken(Self.claims(scope: "dsar:read"))
                    let p = t.split(separator: ".")
                    return "\(p[0]).\(body).\(p[2])"
                }(), "signature does not verify"
            ),
            ("alg none", "\(noneHeader).\(body).", "not a signed JWT"),
            ("alg none with a signature", "\(noneHeader).\(body).c2ln", "\"none\" is not accepted"),
            (
                "HS256 with the RSA public key as secret",
                try Self.mint(["alg": "HS256", "typ": "JWT", "kid": "rsa"], Self.claims()) {
                    Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Data(rsaPEM.utf8))))
                }, "\"HS256\" is not accepted"
            ),
            (
                "HS256 with the JWKS's oct key",
                try Self.mint(["alg": "HS256", "typ": "JWT", "kid": "hs"], Self.claims()) {
                    Data(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Data("secret".utf8))))
                }, "\"HS256\" is not accepted"
            ),
            (
                "ES256 naming the Ed25519 key",
                try Self.mint(["alg": "ES256", "typ": "JWT", "kid": "ed"], Self.claims()) {
                    try k.p256.signature(for: $0).rawRepresentation
                }, "no configured key is for ES256 with kid \"ed\""
            ),
            ("unknown kid", try k.edToken(Self.claims(), kid: "ed2", key: k.ed2), "kid \"ed2\""),
            ("not a JWT", "hello", "not a signed JWT"),
        ]
        for (what, token, reason) in bad {
            let r = try server.submit(#"{"user_id": "666", "action": "export"}"#, headers: bearer(token))
            XCTAssertEqual(r.status, 401, "\(what): \(r.body)")
            XCTAssertEqual(r.headers["www-authenticate"], "Bearer realm=\"dsar\", error=\"invalid_token\"", what)
            XCTAssertTrue(try detail(r).contains(reason), "\(what): expected \"\(reason)\" in \(r.body)")
            XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(token)).status, 401, what)
        }
        XCTAssertEqual(spool.allFiles("inbox"), before, "no refused request reached the inbox")

        // The JWKS file is re-read when it changes: a key added later is accepted.
        try k.jwks(withSecondKey: true).write(to: URL(fileURLWithPath: spool.base + "/jwks.json.new"))
        XCTAssertEqual(rename(spool.base + "/jwks.json.new", spool.base + "/jwks.json"), 0)
        let rotated = try k.edToken(Self.claims(), kid: "ed2", key: k.ed2)
        var status = 0
        for _ in 0..<30 {
            status = try server.curl("GET", "/dsar/\(jobID)", headers: bearer(rotated)).status
            if status == 200 { break }
            usleep(200_000)
        }
        XCTAssertEqual(status, 200, "the rotated key was not picked up")
        // A broken JWKS keeps the previous keys.
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: spool.base + "/jwks.json"))
        usleep(1_300_000)
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(rotated)).status, 200)
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)", headers: bearer(submitter)).status, 200)

        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertFalse(stop.stderr.contains("AUTHENTICATION IS OFF"), stop.stderr)
        XCTAssertTrue(stop.stderr.contains("cannot be used; the previous keys stay in use"), stop.stderr)
    }

    func testADownloadGrantIsJournaledUnderThePseudonymOfTheTokensSubject() throws {
        let spool = try TempSpool()
        let k = try makeKeys(spool.base)
        try k.jwks().write(to: URL(fileURLWithPath: spool.base + "/jwks.json"))
        try spool.initialize(extraConfig: jwtConfig(spool.base))
        let server = try ServeProcess(spool)
        let sub = try server.submit(
            #"{"email": "alice@example.com", "action": "export"}"#, headers: bearer(try k.edToken(Self.claims())))
        XCTAssertEqual(sub.status, 202, sub.body)
        let jobID = try XCTUnwrap(try sub.json()["jobId"] as? String)
        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 120)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")

        // A client named like a person: the journal holds only its keyed pseudonym.
        let person = "jane.operator@example.org"
        let token = try k.edToken(Self.claims(scope: "dsar:download", ["sub": person]))
        let link = try server.curl("GET", "/dsar/\(jobID)/download", headers: bearer(token))
        XCTAssertEqual(link.status, 302, link.body)
        let grants = try spool.journal("download.granted")
        XCTAssertEqual(grants.count, 1, "\(grants)")
        let pseudonym = try spool.dsar(["audit", "principal", person])
        XCTAssertEqual(pseudonym.status, 0, pseudonym.stderr)
        let expected = pseudonym.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(expected.hasPrefix("principal-") && expected.count == 34, expected)
        XCTAssertEqual((grants.first?["details"] as? [String: Any])?["principal"] as? String, expected)
        XCTAssertNotEqual(
            try spool.dsar(["audit", "principal", "portal-client"]).stdout.trimmingCharacters(
                in: .whitespacesAndNewlines),
            expected, "another name, another pseudonym")
        for seg in try FileSystem.list(spool.root + "/journal") where seg.hasSuffix(".jsonl") {
            XCTAssertFalse(spool.text("journal/" + seg).contains("jane"), "the name reached journal/\(seg)")
        }
        // A token without dsar:download gets no link and leaves no grant.
        let reader = try k.edToken(Self.claims(scope: "dsar:read", ["sub": person]))
        XCTAssertEqual(try server.curl("GET", "/dsar/\(jobID)/download", headers: bearer(reader)).status, 403)
        XCTAssertEqual(try spool.journal("download.granted").count, 1)
        XCTAssertEqual(try spool.dsar(["audit", "verify"]).status, 0)
        let stop = try server.stop()
        XCTAssertEqual(stop.status, 0, stop.stderr)
        XCTAssertFalse(stop.stderr.contains("jane"), "no client name in the log")
    }

    func testJWTSettingsAreCheckedAtStartWithFileAndLine() throws {
        let spool = try TempSpool()
        let k = try makeKeys(spool.base)
        try k.jwks().write(to: URL(fileURLWithPath: spool.base + "/jwks.json"))
        try spool.initialize()
        let plain = spool.text("config.yaml")
        func start(_ serve: String) throws -> CommandResult {
            try FileSystem.writeAtomically(spool.root + "/config.yaml", Array((plain + serve).utf8), mode: 0o640)
            return try spool.dsar(["serve", "--listen", "127.0.0.1:0"], timeout: 30)
        }
        let noJWT = try start("serve:\n  auth: jwt\n")
        XCTAssertEqual(noJWT.status, 78, noJWT.stderr)
        XCTAssertTrue(noJWT.stderr.contains("serve.auth: auth: jwt needs a jwt: section"), noJWT.stderr)

        let hs = try start(
            "serve:\n  auth: jwt\n  jwt:\n    issuer: x\n    audience: y\n    keys:\n      - { alg: HS256, file: k.pem }\n"
        )
        XCTAssertEqual(hs.status, 78, hs.stderr)
        XCTAssertTrue(hs.stderr.contains("serve.jwt.keys[0].alg: "), hs.stderr)
        XCTAssertTrue(hs.stderr.contains("HS256") && hs.stderr.contains("is not accepted"), hs.stderr)
        XCTAssertTrue(hs.stderr.contains("config.yaml:"), hs.stderr)

        let noAud = try start("serve:\n  auth: jwt\n  jwt:\n    issuer: x\n    jwks_file: \(spool.base)/jwks.json\n")
        XCTAssertEqual(noAud.status, 78, noAud.stderr)
        XCTAssertTrue(noAud.stderr.contains("serve.jwt.audience is missing"), noAud.stderr)

        // An ES256 key that is really RSA: refused at start, naming the line.
        let wrongKey = try start(
            "serve:\n  auth: jwt\n  jwt:\n    issuer: x\n    audience: y\n    keys:\n      - { alg: ES256, file: \(k.rsaPub) }\n"
        )
        XCTAssertEqual(wrongKey.status, 78, wrongKey.stderr)
        XCTAssertTrue(wrongKey.stderr.contains("serve.jwt.keys[0]: not a ES256 public key"), wrongKey.stderr)
    }

    // MARK: SSHSIG bodies

    func keygen(_ path: String) throws {
        let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// `ssh-keygen -Y sign` of `body`, as the header value (the armored signature without line breaks).
    func sign(_ body: String, key: String, namespace: String = "dsar-request", dir: String) throws -> String {
        let file = dir + "/body-\(UUID().uuidString).json"
        try body.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try runCommand("/usr/bin/ssh-keygen", ["-q", "-Y", "sign", "-f", key, "-n", namespace, file])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try String(contentsOfFile: file + ".sig", encoding: .utf8).replacingOccurrences(of: "\n", with: "")
    }

    func signedSubmits(_ config: (String) -> String) throws {
        let spool = try TempSpool()
        let key = spool.base + "/team"
        let other = spool.base + "/other"
        try keygen(key)
        try keygen(other)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try "privacy-team namespaces=\"dsar-request\" \(pub)\n".write(
            toFile: spool.base + "/signers", atomically: true, encoding: .utf8)
        try spool.initialize(extraConfig: "request_signers: \(spool.base)/signers\n" + config(spool.base))
        let server = try ServeProcess(spool)
        let body = #"{"request_id": "ZD-1", "user_id": "12345", "action": "export"}"#

        // Unsigned, signed over other bytes, by an unknown key, for another namespace, garbage: 401.
        let refused: [(String, [String: String], String)] = [
            ("unsigned", [:], "accepts only signed requests"),
            (
                "forged (signature of another body)",
                [
                    "X-DSAR-Signature": try sign(
                        body.replacingOccurrences(of: "12345", with: "99999"), key: key, dir: spool.base)
                ],
                "invalid signature"
            ),
            ("unknown key", ["X-DSAR-Signature": try sign(body, key: other, dir: spool.base)], "unknown key"),
            (
                "other namespace", ["X-DSAR-Signature": try sign(body, key: key, namespace: "file", dir: spool.base)],
                "invalid signature"
            ),
            ("not a signature", ["X-DSAR-Signature": "hello world!"], "not an armored SSH signature"),
        ]
        for (what, headers, reason) in refused {
            let r = try server.submit(body, headers: headers)
            XCTAssertEqual(r.status, 401, "\(what): \(r.body)")
            XCTAssertTrue(try detail(r).contains(reason), "\(what): expected \"\(reason)\" in \(r.body)")
            XCTAssertFalse(r.body.contains(spool.base), "\(what): a server path in the answer: \(r.body)")
        }
        XCTAssertEqual(spool.allFiles("inbox"), [], "no refused request reached the inbox")

        // Signed by the team's key with the real ssh-keygen: accepted, the .sig beside the request.
        let ok = try server.submit(body, headers: ["X-DSAR-Signature": try sign(body, key: key, dir: spool.base)])
        XCTAssertEqual(ok.status, 202, ok.body)
        let jobID = try XCTUnwrap(try ok.json()["jobId"] as? String)
        let inbox = spool.allFiles("inbox").sorted()
        XCTAssertEqual(inbox.count, 2, "\(inbox)")
        XCTAssertTrue(inbox[0].hasPrefix("inbox/http-\(jobID)-") && inbox[0].hasSuffix(".json"), "\(inbox)")
        XCTAssertEqual(inbox[1], inbox[0] + ".sig")
        // ssh-keygen itself accepts the .sig the server wrote over the request it wrote.
        let verify = try runCommand(
            "/usr/bin/ssh-keygen",
            [
                "-Y", "verify", "-f", spool.base + "/signers", "-I", "privacy-team", "-n", "dsar-request", "-s",
                spool.root + "/" + inbox[1],
            ], stdin: spool.text(inbox[0]))
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)

        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        let recs = try spool.records()
        XCTAssertEqual(recs.map(\.jobID), [jobID])
        XCTAssertEqual(recs.first?.signer, "privacy-team")
        XCTAssertEqual(recs.first?.status, .completed)
        // The principal is journaled as the submitter.
        let received = try spool.journal("request.received")
        XCTAssertEqual(received.count, 1)
        XCTAssertEqual(
            (received.first?["details"] as? [String: Any])?["signer"] as? String, "privacy-team", "\(received)")
        XCTAssertEqual(spool.allFiles("inbox"), [])
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testBearerTokenAndBodySignatureAreBothRequired() throws {
        let spool = try TempSpool()
        let k = try makeKeys(spool.base)
        try k.jwks().write(to: URL(fileURLWithPath: spool.base + "/jwks.json"))
        let key = spool.base + "/team"
        try keygen(key)
        let pub = try String(contentsOfFile: key + ".pub", encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines)
        try "privacy-team namespaces=\"dsar-request\" \(pub)\n".write(
            toFile: spool.base + "/signers", atomically: true, encoding: .utf8)
        try spool.initialize(
            extraConfig: "request_signers: \(spool.base)/signers\n" + jwtConfig(spool.base)
                + "  require_signature: true\n")
        let server = try ServeProcess(spool)
        let body = #"{"user_id": "4242", "action": "delete"}"#
        let signature = ["X-DSAR-Signature": try sign(body, key: key, dir: spool.base)]
        let token = bearer(try k.edToken(Self.claims()))
        // A signature without a token, and a token without a signature: 401, nothing written.
        let noToken = try server.submit(body, headers: signature)
        XCTAssertEqual(noToken.status, 401, noToken.body)
        XCTAssertTrue(noToken.headers["www-authenticate"]?.hasPrefix("Bearer") == true, "\(noToken.headers)")
        let noSig = try server.submit(body, headers: token)
        XCTAssertEqual(noSig.status, 401, noSig.body)
        XCTAssertEqual(try noSig.json()["type"] as? String, "urn:dsar:problem:invalid-signature")
        // A signed body with a read-only token: 403 (the scope is checked first).
        let readOnly = bearer(try k.edToken(Self.claims(scope: "dsar:read")))
        XCTAssertEqual(try server.submit(body, headers: signature.merging(readOnly) { $1 }).status, 403)
        XCTAssertEqual(spool.allFiles("inbox"), [])
        // Both: accepted; the signer, not the token's subject, is the job's submitter.
        let ok = try server.submit(body, headers: signature.merging(token) { $1 })
        XCTAssertEqual(ok.status, 202, ok.body)
        let run = try spool.dsar(["run", "--settle", "0.2"], timeout: 60)
        XCTAssertEqual(run.status, 0, "stdout: \(run.stdout)\nstderr: \(run.stderr)")
        XCTAssertEqual(try spool.records().map(\.signer), ["privacy-team"])
        XCTAssertEqual(try server.stop().status, 0)
    }

    func testSignedSubmitsWithServeRequireSignature() throws {
        try signedSubmits { _ in "serve:\n  auth: none\n  require_signature: true\n" }
    }

    func testSignedSubmitsOnASpoolThatRequiresSignedRequests() throws {
        try signedSubmits { _ in "require_signed_requests: true\nserve:\n  auth: none\n" }
    }
}
