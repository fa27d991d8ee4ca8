import Foundation

/// Every identifier a job has learnt about its subject — the request's and the derived ones — kept
/// for the life of the case next to the claimed request: `active/<job-id>.identity.json` (mode 0600:
/// it holds personal data, like the request). It moves to `failed/` with the request when the job
/// ends FAILED or PARTIAL and is deleted with it when the job completes.
///
/// Once a delete has erased the row that linked two identifiers (an e-mail and a loyalty card), a
/// new search from the request alone can no longer reach the second one; a retry therefore starts
/// from this set, and scans can only add to it.
package struct IdentityClosure: Sendable, Equatable {
    /// One identifier and how it was learnt ("request", or "loyalty_card derived from shop.customers via email").
    package struct Entry: Sendable, Equatable, Codable {
        package var type: String
        package var value: String
        package var provenance: String

        package var identifier: Identifier { Identifier(type: type, value: value) }
    }

    /// The job the set belongs to.
    package var jobID: String
    /// The identifiers, unique by (type, value), in the order they were learnt.
    package private(set) var entries: [Entry]

    /// A set holding the request's identifiers (provenance "request").
    package init(jobID: String, request: [Identifier]) {
        self.jobID = jobID
        self.entries = []
        _ = merge(request.map { ($0, "request") })
    }

    /// The identifiers, without provenance.
    package var identifiers: [Identifier] { entries.map(\.identifier) }

    /// Adds identifiers not yet in the set (the first provenance wins); returns whether it grew.
    @discardableResult
    package mutating func merge(_ more: [(Identifier, String)]) -> Bool {
        var known = Set(identifiers)
        var grew = false
        for (id, provenance) in more where known.insert(id).inserted {
            entries.append(Entry(type: id.type, value: id.value, provenance: provenance))
            grew = true
        }
        return grew
    }

    /// `<dir>/<job-id>.identity.json`.
    package static func path(in dir: String, jobID: String) -> String { dir + "/\(jobID).identity.json" }

    /// Whether a file name in `active/` or `failed/` is an identity file.
    package static func isIdentityFile(_ name: String) -> Bool { name.hasSuffix(".identity.json") }

    struct Document: Codable {
        var format: Int
        var jobID: String
        var identifiers: [Entry]
        enum CodingKeys: String, CodingKey {
            case format
            case jobID = "job_id"
            case identifiers
        }
    }

    /// Reads a stored set; nil when there is none.
    package static func load(_ path: String) throws -> IdentityClosure? {
        guard FileSystem.exists(path) else { return nil }
        let doc: Document
        do {
            doc = try JSONDecoder().decode(Document.self, from: Data(try FileSystem.readFile(path, limit: 16 << 20)))
        } catch let e as DSARError {
            throw e
        } catch {
            throw DSARError(
                .io,
                "the identity file \(path) is unreadable (\(error)); it must be a JSON object with format 1, job_id and identifiers [{type, value, provenance}]",
                path: path, cause: error)
        }
        guard doc.format == 1 else {
            throw DSARError(
                .io, "the identity file \(path) has format \(doc.format); this dsar reads format 1", path: path)
        }
        var c = IdentityClosure(jobID: doc.jobID, request: [])
        c.entries = []
        _ = c.merge(doc.identifiers.map { ($0.identifier, $0.provenance) })
        return c
    }

    /// Writes the set durably (temp file, fsync, rename, and — unless `syncDirectory` is false, when
    /// the caller fsyncs the directory once for a batch — fsync of the directory), mode 0600.
    package func write(_ path: String, syncDirectory: Bool = true) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try e.encode(Document(format: 1, jobID: jobID, identifiers: entries))
        try FileSystem.writeAtomically(path, Array(data) + [0x0A], mode: 0o600, syncDirectory: syncDirectory)
    }
}

extension SpoolLayout {
    /// The identity set kept with a claimed request: `active/<job-id>.identity.json`.
    package func activeIdentity(_ jobID: String) -> String { IdentityClosure.path(in: active, jobID: jobID) }
    /// The identity set kept with a failed job's request: `failed/<job-id>.identity.json`.
    package func failedIdentity(_ jobID: String) -> String { IdentityClosure.path(in: failed, jobID: jobID) }
}
