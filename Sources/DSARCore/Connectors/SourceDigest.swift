/// Size, SHA-256 and whether the last byte is a line feed, of a source file as stored (compressed
/// bytes for gzip), taken from the bytes a reader read from disk: what ``FindingsCollector/cover``
/// records instead of reading the file again (``RawVerifier/hash(_:options:)``).
package struct SourceDigest: Sendable, Equatable {
    /// Bytes read, from offset 0 to the end of the file.
    package var bytes: Int64
    /// SHA-256 of those bytes, lower-case hex.
    package var sha256: String
    /// Whether the last byte is `\n` (true for an empty file, as ``RawVerifier/hash(_:options:)`` says).
    package var endsWithNewline: Bool

    /// A digest of these values.
    package init(bytes: Int64, sha256: String, endsWithNewline: Bool) {
        self.bytes = bytes
        self.sha256 = sha256
        self.endsWithNewline = endsWithNewline
    }
}

/// A running digest of the bytes a reader reads from disk, in file order from offset 0.
///
/// Each byte is hashed once, the first time it is read: a block that starts inside the bytes
/// hashed so far (a re-read after the reader resumed at an earlier offset) adds only its new tail.
/// A block that starts past them (a skip) spoils the digest: ``finish(atEnd:)`` is then nil, and
/// so is it unless the reader says it reached the end of the file.
struct RunningDigest: Sendable {
    private var hasher = StreamingSHA256()
    /// Bytes hashed so far (the file offset of the next byte to hash).
    private(set) var total: Int64 = 0
    private var last: UInt8 = 0x0A
    /// Whether a block did not continue the bytes hashed so far.
    private(set) var broken = false

    init() {}

    /// Adds the bytes of a block read at file offset `offset`.
    mutating func feed(_ block: UnsafeRawBufferPointer, at offset: Int64) {
        guard !broken, block.count > 0 else { return }
        guard offset <= total else {
            broken = true
            return
        }
        let skip = Int(total - offset)
        guard skip < block.count else { return }
        let fresh = UnsafeRawBufferPointer(rebasing: block[skip...])
        hasher.update(fresh)
        total += Int64(fresh.count)
        last = fresh[fresh.count - 1]
    }

    /// Adds the next bytes of a sequential read.
    mutating func feed(_ block: UnsafeRawBufferPointer) { feed(block, at: total) }

    /// The digest of the whole file, when the reader read to its end (`atEnd`: a read returned 0
    /// at offset ``total``) and no block was skipped; nil otherwise.
    func finish(atEnd: Bool) -> SourceDigest? {
        guard atEnd, !broken else { return nil }
        return SourceDigest(bytes: total, sha256: hasher.hexDigest(), endsWithNewline: last == 0x0A)
    }
}
