import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An IP address or a CIDR network (`127.0.0.1`, `::1`, `10.0.0.0/8`, `fd00::/8`), as
/// `serve.trusted_proxies` lists them. IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) count as
/// their IPv4 address, both in a network and in an address tested against it.
package struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// The network's address bytes (4 or 16), host bits cleared.
    package let bytes: [UInt8]
    /// The prefix length in bits.
    package let prefix: Int

    /// Parses `ADDRESS` or `ADDRESS/PREFIX`; nil when it is neither.
    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPNetwork.address(String(parts[0])) else { return nil }
        var prefix = address.count * 8
        if parts.count == 2 {
            guard let p = Int(parts[1]), String(p) == parts[1] else { return nil }
            // A v4-mapped network given in IPv6 notation keeps its v4 part of the prefix.
            let mapped = address.count == 4 && parts[0].contains(":")
            let bits = mapped ? p - 96 : p
            guard (0...(address.count * 8)).contains(bits) else { return nil }
            prefix = bits
        }
        self.prefix = prefix
        self.bytes = IPNetwork.masked(address, prefix)
    }

    /// The address bytes of `text` (4 for IPv4 and IPv4-mapped IPv6, 16 for other IPv6), nil when
    /// it is not an IP address. Brackets (`[::1]`) and a zone (`fe80::1%eth0`) are not accepted.
    package static func address(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let b = withUnsafeBytes(of: &v6) { Array($0) }
        if b[0..<10].allSatisfy({ $0 == 0 }), b[10] == 0xFF, b[11] == 0xFF { return Array(b[12..<16]) }
        return b
    }

    static func masked(_ address: [UInt8], _ prefix: Int) -> [UInt8] {
        address.enumerated().map { i, byte in
            let keep = min(8, max(0, prefix - i * 8))
            return keep == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
    }

    /// Whether the address `text` is in this network (false when it is no address).
    package func contains(_ text: String) -> Bool {
        guard let a = IPNetwork.address(text) else { return false }
        return contains(bytes: a)
    }

    /// Whether the address bytes (as ``address(_:)`` gives them) are in this network.
    package func contains(bytes a: [UInt8]) -> Bool {
        a.count == bytes.count && IPNetwork.masked(a, prefix) == bytes
    }

    /// `ADDRESS/PREFIX`.
    package var description: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var b = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        _ = inet_ntop(family, &b, &text, socklen_t(text.count))
        let end = text.firstIndex(of: 0) ?? text.count
        return String(decoding: text[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/\(prefix)"
    }
}

extension Array where Element == IPNetwork {
    /// The client a request came from when it arrived from `peer` with the `X-Forwarded-For` values
    /// `forwardedFor` (each a comma-separated list, oldest hop first): if the peer is one of these
    /// trusted proxies, the rightmost forwarded address that is not itself a trusted proxy (a
    /// client can only add entries to the left of what its proxy appended); else the peer. An
    /// entry that is no IP address ends the walk at the hop that added it.
    package func client(peer: String, forwardedFor: [String]) -> String {
        guard !isEmpty, trusts(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        var client = peer
        for hop in hops.reversed() {
            guard IPNetwork.address(hop) != nil else { break }
            client = hop
            if !trusts(hop) { break }
        }
        return client
    }

    /// Whether the address is in one of these networks.
    package func trusts(_ address: String) -> Bool {
        guard let a = IPNetwork.address(address) else { return false }
        return contains { $0.contains(bytes: a) }
    }
}
