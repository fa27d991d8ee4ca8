import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// `serve.jwt` and `serve.require_signature` in a real config.yaml, read by ``SpoolConfig/load(_:)``.
final class ServeJWTConfigTests: XCTestCase {
    func load(_ yaml: String) throws -> SpoolConfig { try loadSpoolConfig(yaml) }
    func problems(_ yaml: String) throws -> [String] { try spoolConfigProblems(yaml) }

    func testJWTSettings() throws {
        let s = try load(
            """
            serve:
              auth: jwt
              require_signature: true
              jwt:
                issuer: https://idp.example/
                audience: dsar-api
                leeway: 5
                jwks_file: jwks.json
                keys:
                  - { alg: ES256, kid: portal, file: /etc/dsar/portal.pem }
                  - alg: EdDSA
                    pem: "-----BEGIN PUBLIC KEY-----"

            """
        ).serve
        XCTAssertEqual(s.auth, .jwt)
        XCTAssertEqual(s.requireSignature, true)
        let j = try XCTUnwrap(s.jwt)
        XCTAssertEqual(j.issuer, "https://idp.example/")
        XCTAssertEqual(j.audience, ["dsar-api"])
        XCTAssertEqual(j.leeway, 5)
        XCTAssertEqual(j.jwksFile, "jwks.json")
        XCTAssertEqual(j.keys.map(\.alg), ["ES256", "EdDSA"])
        XCTAssertEqual(j.keys.map(\.kid), ["portal", nil])
        XCTAssertEqual(j.keys[0].file, "/etc/dsar/portal.pem")
        XCTAssertEqual(j.keys[1].pem, "-----BEGIN PUBLIC KEY-----")
        XCTAssertEqual(try load("serve:\n  auth: none\n").serve.requireSignature, nil)
        XCTAssertEqual(
            try load("serve:\n  auth: jwt\n  jwt: { issuer: i, audience: [a, b], jwks_file: j }\n").serve.jwt?.leeway,
            60)
    }

    func testJWTProblemsNameFileLineAndKey() throws {
        let missing = try problems("serve:\n  auth: jwt\n")
        XCTAssertTrue(
            missing.contains { $0.contains("config.yaml:2: serve.auth: auth: jwt needs a jwt: section") }, "\(missing)")

        let p = try problems(
            """
            serve:
              auth: jwt
              require_signature: maybe
              jwt:
                leeway: 9999
                secret: hunter2
                keys:
                  - { alg: none, file: a.pem, pem: b }
                  - { alg: HS256 }
                  - { alg: RS256, file: r.pem, use: sig }

            """)
        for expected in [
            "config.yaml:3: serve.require_signature: expected true or false",
            "serve.jwt: serve.jwt.issuer is missing",
            "serve.jwt: serve.jwt.audience is missing",
            "config.yaml:5: serve.jwt.leeway: expected a number of seconds",
            "config.yaml:6: serve.jwt.secret: unknown key",
            "config.yaml:8: serve.jwt.keys[0].alg: \"none\" is not accepted",
            "serve.jwt.keys[0]: expected exactly one of file:",
            "config.yaml:9: serve.jwt.keys[1].alg: \"HS256\" is not accepted",
            "serve.jwt.keys[1]: expected exactly one of file:",
            "config.yaml:10: serve.jwt.keys[2].use: unknown key",
        ] {
            XCTAssertTrue(p.contains { $0.contains(expected) }, "\(expected) not in \(p)")
        }
        let neither = try problems("serve:\n  auth: jwt\n  jwt:\n    issuer: i\n    audience: a\n")
        XCTAssertTrue(
            neither.contains { $0.contains("config.yaml:4: serve.jwt: expected jwks_file:") }, "\(neither)")
    }
}
