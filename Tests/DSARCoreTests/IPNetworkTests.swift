import DSARCore
import XCTest

/// `serve.trusted_proxies` entries and the X-Forwarded-For walk.
final class IPNetworkTests: XCTestCase {
    func testParsesAddressesAndNetworksAndRefusesTheRest() throws {
        XCTAssertEqual(IPNetwork("127.0.0.1")?.description, "127.0.0.1/32")
        XCTAssertEqual(IPNetwork("10.1.2.3/8")?.description, "10.0.0.0/8", "host bits cleared")
        XCTAssertEqual(IPNetwork("::1")?.description, "::1/128")
        XCTAssertEqual(IPNetwork("fd00:1::5/16")?.description, "fd00::/16")
        XCTAssertEqual(IPNetwork("::ffff:10.0.0.0/104")?.description, "10.0.0.0/8", "v4-mapped counts as IPv4")
        XCTAssertEqual(IPNetwork("0.0.0.0/0")?.description, "0.0.0.0/0")
        for bad in [
            "", "localhost", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/8/8", "::1/129", "[::1]",
            "fe80::1%eth0", "10.0.0.0/08", "1.2.3", "1.2.3.4 ", "10.0.0.0/ 8",
        ] {
            XCTAssertNil(IPNetwork(bad), bad)
        }
    }

    func testContainsMatchesByPrefixAndFamily() throws {
        let ten = try XCTUnwrap(IPNetwork("10.0.0.0/8"))
        XCTAssertTrue(ten.contains("10.255.0.1"))
        XCTAssertTrue(ten.contains("::ffff:10.9.9.9"), "an IPv4-mapped peer")
        XCTAssertFalse(ten.contains("11.0.0.1"))
        XCTAssertFalse(ten.contains("::a00:1"), "IPv4-compatible is not IPv4-mapped")
        XCTAssertFalse(ten.contains("garbage"))
        let odd = try XCTUnwrap(IPNetwork("192.168.4.0/22"))
        XCTAssertTrue(odd.contains("192.168.7.255"))
        XCTAssertFalse(odd.contains("192.168.8.0"))
        let v6 = try XCTUnwrap(IPNetwork("2001:db8::/33"))
        XCTAssertTrue(v6.contains("2001:db8:7fff::1"))
        XCTAssertFalse(v6.contains("2001:db8:8000::1"))
        XCTAssertFalse(v6.contains("10.0.0.1"))
    }

    func testTheClientIsTheRightmostUntrustedForwardedAddress() throws {
        let trusted = ["127.0.0.1", "10.0.0.0/8"].compactMap(IPNetwork.init)
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: ["203.0.113.5"]), "203.0.113.5")
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: ["6.6.6.6, 203.0.113.5"]), "203.0.113.5")
        XCTAssertEqual(
            trusted.client(peer: "127.0.0.1", forwardedFor: ["6.6.6.6", "203.0.113.5, 10.0.0.7"]), "203.0.113.5",
            "several headers are one list; trusted hops are skipped")
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: ["10.0.0.9, 10.0.0.7"]), "10.0.0.9")
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: ["1.1.1.1, nonsense"]), "127.0.0.1")
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: ["nonsense, 10.0.0.7"]), "10.0.0.7")
        XCTAssertEqual(trusted.client(peer: "127.0.0.1", forwardedFor: []), "127.0.0.1")
        XCTAssertEqual(
            trusted.client(peer: "198.51.100.1", forwardedFor: ["203.0.113.5"]), "198.51.100.1",
            "an untrusted peer's header is ignored")
        XCTAssertEqual([IPNetwork]().client(peer: "127.0.0.1", forwardedFor: ["203.0.113.5"]), "127.0.0.1")
    }
}
