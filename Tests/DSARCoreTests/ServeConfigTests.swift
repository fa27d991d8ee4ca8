import DSARCore
import DSARTestSupport
import Foundation
import XCTest

/// `serve:` in a real config.yaml, read by ``SpoolConfig/load(_:)``, and listen addresses.
final class ServeConfigTests: XCTestCase {
    func load(_ yaml: String) throws -> SpoolConfig { try loadSpoolConfig(yaml) }
    func problems(_ yaml: String) throws -> [String] { try spoolConfigProblems(yaml) }

    func testDefaultsAndEveryKey() throws {
        let none = try load("max_crashes: 3\n").serve
        XCTAssertNil(none.auth, "no serve: means no auth: the server refuses to start")
        XCTAssertEqual(none.listen, "127.0.0.1:8080")
        XCTAssertEqual(none.rateLimit, 600)
        XCTAssertEqual(none.downloadTTL, 3600)
        let s = try load(
            "serve:\n  listen: \"[::1]:9000\"\n  auth: none\n  rate_limit: 5\n  header_timeout: 2\n  idle_timeout: 3\n  download_ttl: 60\n"
        ).serve
        XCTAssertEqual(s.auth, ServeConfig.Auth.none)
        XCTAssertEqual(s.listen, "[::1]:9000")
        XCTAssertEqual(s.rateLimit, 5)
        XCTAssertEqual(s.headerTimeout, 2)
        XCTAssertEqual(s.idleTimeout, 3)
        XCTAssertEqual(s.downloadTTL, 60)
        XCTAssertEqual(s.line, 1)
    }

    func testProblemsNameFileLineAndKey() throws {
        let p = try problems("serve:\n  auth: basic\n  listen: localhost\n  rate_limit: -1\n  tls: yes\n")
        XCTAssertEqual(p.count, 4, "\(p)")
        for expected in [
            "config.yaml:2: serve.auth: expected one of: none, jwt",
            "config.yaml:3: serve.listen: listen address \"localhost\" is not HOST:PORT",
            "config.yaml:4: serve.rate_limit: expected a whole number",
            "config.yaml:5: serve.tls: unknown key; expected one of: listen, auth",
        ] {
            XCTAssertTrue(p.contains { $0.contains(expected) }, "\(expected) not in \(p)")
        }
    }

    func testListenAddresses() throws {
        func parse(_ s: String) -> ListenAddress? { try? ListenAddress.parse(s).get() }
        XCTAssertEqual(parse("127.0.0.1:8080"), ListenAddress(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(parse("[::1]:0"), ListenAddress(host: "::1", port: 0))
        XCTAssertEqual(parse("[::1]:0")?.description, "[::1]:0")
        for bad in ["8080", ":8080", "host:", "host:70000", "::1:80", "[::1]80"] { XCTAssertNil(parse(bad), bad) }
        for l in ["127.0.0.1:1", "127.8.9.10:1", "[::1]:1", "localhost:1"] {
            XCTAssertEqual(parse(l)?.isLoopback, true, l)
        }
        for r in ["0.0.0.0:1", "10.0.0.1:1", "[::]:1", "example.com:1", "127.example.com:1"] {
            XCTAssertEqual(parse(r)?.isLoopback, false, r)
        }
    }
}
