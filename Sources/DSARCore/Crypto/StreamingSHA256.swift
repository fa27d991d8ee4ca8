@preconcurrency import Crypto

/// Incremental SHA-256 over byte pieces (for manifests, test vectors and checksums).
public struct StreamingSHA256: Sendable {
    private var hasher = SHA256()

    public init() {}

    public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) { hasher.update(bufferPointer: bytes) }

    /// The digest (32 bytes).
    public func finalize() -> [UInt8] { Array(hasher.finalize()) }

    /// The digest as lower-case hex.
    public func hexDigest() -> String { Hex.encode(finalize()) }

    /// SHA-256 of `bytes` as lower-case hex.
    public static func hex(_ bytes: [UInt8]) -> String {
        var h = StreamingSHA256()
        h.update(bytes)
        return h.hexDigest()
    }
}
