import DSARCore
import Foundation

/// Which job answered an `Idempotency-Key` or a `request_id`, durably: one small file per key in
/// `serve/idempotency/`, named by a keyed HMAC of the key (never the key itself, which may be a
/// ticket number or worse), holding the job id and a digest of the body. It survives restarts.
///
/// The mapping is written (fsync, rename, fsync) before the request file: after a crash between the
/// two, a retry finds the mapping, sees no job under that id, and writes the request under the same
/// id, so a client never gets two jobs nor a job id that does not exist.
struct IdempotencyStore: Sendable {
    /// What a key was first used for.
    struct Entry: Sendable, Equatable {
        var jobID: String
        /// Hex SHA-256 of the body, keyed (for `Idempotency-Key`: the same key with another body is an error).
        var bodyDigest: String
    }

    enum Kind: String {
        case idempotencyKey = "idempotency-key"
        case requestID = "request-id"
    }

    let directory: String
    let pseudonymizer: Pseudonymizer

    init(layout: SpoolLayout, pseudonymizer: Pseudonymizer) {
        self.directory = layout.root + "/serve/idempotency"
        self.pseudonymizer = pseudonymizer
    }

    /// Creates `serve/idempotency/` (mode 0700).
    func create() throws {
        let parent = (directory as NSString).deletingLastPathComponent
        try FileSystem.makeDirectory(parent, mode: 0o700)
        try FileSystem.makeDirectory(directory, mode: 0o700)
    }

    func path(_ kind: Kind, _ key: String) -> String {
        directory + "/" + Hex.encode(pseudonymizer.keyedTag(domain: "serve-" + kind.rawValue, Array(key.utf8)))
    }

    /// The keyed digest of a body.
    func digest(_ body: [UInt8]) -> String { Hex.encode(pseudonymizer.keyedTag(domain: "serve-body", body)) }

    func lookup(_ kind: Kind, _ key: String) throws -> Entry? {
        let p = path(kind, key)
        guard FileSystem.exists(p) else { return nil }
        let lines = String(decoding: try FileSystem.readFile(p, limit: 4096), as: UTF8.self).split(separator: "\n")
        guard lines.count >= 2, ServerDrop.isUUID(String(lines[0])) else {
            throw DSARError(.io, "\(p) is not an idempotency record (job id and digest); remove it", path: p)
        }
        return Entry(jobID: String(lines[0]), bodyDigest: String(lines[1]))
    }

    func record(_ kind: Kind, _ key: String, _ entry: Entry) throws {
        try FileSystem.writeAtomically(
            path(kind, key), Array("\(entry.jobID)\n\(entry.bodyDigest)\n".utf8), mode: 0o600)
    }
}
