import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// The rendered `GET /dsar/{jobId}` document of recorded jobs, keyed by the identity of the record
/// file it was rendered from, so that an unchanged record is served without decoding and
/// re-encoding it (about half the server's CPU per status request otherwise).
///
/// The identity is what one `fstat` of the open record says: device, inode, size, and mtime and
/// ctime to the nanosecond. `JobStore` writes a record by rename, so a changed record is a new
/// inode (and a new ctime even where the file system reuses the number); an in-place change would
/// still move mtime/ctime. The bytes are rendered from the same descriptor that was fstat'ed, so
/// they always belong to the identity they are stored under.
///
/// Bounded by entries and bytes: two generations of at most half the budget each; a hit in the old
/// generation moves to the new one, and when the new one is full the old one is dropped (roughly LRU).
final class StatusCache: Sendable {
    struct Identity: Hashable, Sendable {
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var mtimeSec: Int64
        var mtimeNsec: Int64
        var ctimeSec: Int64
        var ctimeNsec: Int64

        init(_ st: stat) {
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            size = Int64(st.st_size)
            mtimeSec = Int64(st.st_mtim.tv_sec)
            mtimeNsec = Int64(st.st_mtim.tv_nsec)
            ctimeSec = Int64(st.st_ctim.tv_sec)
            ctimeNsec = Int64(st.st_ctim.tv_nsec)
        }
    }

    struct Entry: Sendable {
        var identity: Identity
        var bytes: [UInt8]
    }

    struct Generations: Sendable {
        var current: [String: Entry] = [:]
        var currentBytes = 0
        var previous: [String: Entry] = [:]
    }

    /// Most entries held (both generations).
    let maxEntries: Int
    /// Most document bytes held (both generations).
    let maxBytes: Int
    /// Larger documents are not cached.
    let maxDocument: Int
    private let state = NIOLockedValueBox(Generations())

    init(maxEntries: Int = 4096, maxBytes: Int = 64 << 20, maxDocument: Int = 1 << 20) {
        self.maxEntries = max(2, maxEntries)
        self.maxBytes = maxBytes
        self.maxDocument = maxDocument
    }

    /// The cached document of `jobID` if it was rendered from a file with this identity.
    func lookup(_ jobID: String, _ identity: Identity) -> [UInt8]? {
        state.withLockedValue { g in
            if let e = g.current[jobID] { return e.identity == identity ? e.bytes : nil }
            guard let e = g.previous.removeValue(forKey: jobID), e.identity == identity else { return nil }
            Self.insert(e, for: jobID, into: &g, maxEntries: maxEntries, maxBytes: maxBytes)
            return e.bytes
        }
    }

    /// Remembers the document rendered from a file with this identity.
    func store(_ jobID: String, _ identity: Identity, _ bytes: [UInt8]) {
        guard bytes.count <= maxDocument else { return }
        state.withLockedValue { g in
            g.previous.removeValue(forKey: jobID)
            Self.insert(
                .init(identity: identity, bytes: bytes), for: jobID, into: &g, maxEntries: maxEntries,
                maxBytes: maxBytes)
        }
    }

    /// How many entries are held (tests).
    var count: Int { state.withLockedValue { $0.current.count + $0.previous.count } }

    private static func insert(_ e: Entry, for jobID: String, into g: inout Generations, maxEntries: Int, maxBytes: Int)
    {
        if let old = g.current.updateValue(e, forKey: jobID) {
            g.currentBytes -= old.bytes.count
        }
        g.currentBytes += e.bytes.count
        if g.current.count >= maxEntries / 2 || g.currentBytes >= maxBytes / 2 {
            g.previous = g.current
            g.current = [:]
            g.currentBytes = 0
        }
    }
}
