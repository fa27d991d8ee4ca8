@preconcurrency import Crypto

/// Incremental SHA-256 over byte pieces (for manifests, test vectors and checksums).
package struct StreamingSHA256: Sendable {
    private var hasher = SHA256()

    package init() {}

    package mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }

    package mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// The digest (32 bytes).
    package func finalize() -> [UInt8] { Array(hasher.finalize()) }

    /// The digest as lower-case hex.
    package func hexDigest() -> String { Hex.encode(finalize()) }

    /// SHA-256 of `bytes` as lower-case hex.
    package static func hex(_ bytes: [UInt8]) -> String {
        var h = StreamingSHA256()
        h.update(bytes)
        return h.hexDigest()
    }
}
