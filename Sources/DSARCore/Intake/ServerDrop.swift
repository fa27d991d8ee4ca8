import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Requests that `dsar serve` writes into `inbox/`, under the job id the server already answered with.
///
/// The file is `http-<jobid>-<tag>.json`, where the tag is a keyed HMAC of the job id under the
/// spool key (``Pseudonymizer/keyedTag(domain:_:)``): intake keeps that job id when it claims the
/// file, and nobody without the key (an SFTP user) can choose a job id. A `http-*.json` drop whose
/// tag does not check is rejected, and so is a tagged file whose job id already exists.
///
/// The server writes it as a temp dot file in `inbox/` (`.http-….json.dsar-<pid>-<n>.tmp`, which
/// ``PickupRules`` ignores), fsyncs it, renames it into place without replacing, and fsyncs the
/// directory: intake sees the complete request or nothing.
package enum ServerDrop {
    /// Name prefix reserved for server-written requests.
    package static let prefix = "http-"
    static let domain = "http-job"

    /// The inbox file name for a server-assigned job id.
    package static func fileName(jobID: String, pseudonymizer: Pseudonymizer) -> String {
        "\(prefix)\(jobID)-\(tag(jobID, pseudonymizer)).json"
    }

    static func tag(_ jobID: String, _ p: Pseudonymizer) -> String {
        Hex.encode(p.keyedTag(domain: domain, Array(jobID.utf8)).prefix(16))
    }

    /// What a drop's name says about its job id: nil for an ordinary drop (intake assigns one), the
    /// job id for a server-written file, or the reason a `http-*` name is refused.
    package static func jobID(fromName name: String, pseudonymizer: Pseudonymizer) -> Result<String?, RequestProblem> {
        guard name.hasPrefix(prefix), name.hasSuffix(".json") else { return .success(nil) }
        let stem = name.dropFirst(prefix.count).dropLast(5)
        // <36-character UUID>-<32 hex digits>
        let refused = RequestProblem(
            "file names starting with \"\(prefix)\" are reserved for requests written by dsar serve (their job id is signed with the spool key); rename the file and upload it again"
        )
        guard stem.count == 36 + 1 + 32 else { return .failure(refused) }
        let jobID = String(stem.prefix(36))
        let given = String(stem.suffix(32))
        guard stem[stem.index(stem.startIndex, offsetBy: 36)] == "-", isUUID(jobID),
            constantTimeEqual(Array(given.utf8), Array(tag(jobID, pseudonymizer).utf8))
        else { return .failure(refused) }
        return .success(jobID)
    }

    /// A lower-case canonical UUID (8-4-4-4-12 hex digits).
    package static func isUUID(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count == 36 else { return false }
        for (i, c) in b.enumerated() {
            if [8, 13, 18, 23].contains(i) {
                if c != 0x2D { return false }
            } else if !((0x30...0x39).contains(c) || (0x61...0x66).contains(c)) {
                return false
            }
        }
        return true
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in 0..<a.count { d |= a[i] ^ b[i] }
        return d == 0
    }

    /// Writes a validated request into `inbox/` durably (temp dot file, fsync, rename without
    /// replacing, fsync of `inbox/`). Returns false when the file already exists (nothing written).
    ///
    /// `signature` (an armored SSHSIG over `bytes`, checked by the server) is written first as
    /// `<name>.sig`, durably, so intake never sees the request without it and verifies it as it
    /// does a signed drop's.
    package static func write(
        _ bytes: [UInt8], jobID: String, layout: SpoolLayout, pseudonymizer: Pseudonymizer, signature: [UInt8]? = nil
    ) throws -> Bool {
        let path = layout.inbox + "/" + fileName(jobID: jobID, pseudonymizer: pseudonymizer)
        if let signature { try FileSystem.writeAtomically(path + ".sig", signature, mode: 0o640) }
        let temp = try TempFile.create(near: path, mode: 0o640)
        var moved = false
        defer { if !moved { unlink(temp.path) } }
        do {
            defer { close(temp.fd) }
            try bytes.withUnsafeBytes { try FileSystem.writeAll(temp.fd, $0, path: temp.path) }
            if fsync(temp.fd) != 0 { throw DSARError.syscall("cannot fsync", path: temp.path) }
        }
        guard try FileSystem.renameNoReplace(temp.path, to: path) else { return false }
        moved = true
        try FileSystem.syncDirectory(layout.inbox)
        return true
    }

    /// Where a server-assigned job is before intake has made its record: `inbox` (waiting to be
    /// claimed), `rejected` (intake refused it; the reason is beside it), or nil (not known here).
    package static func locate(
        jobID: String, layout: SpoolLayout, pseudonymizer: Pseudonymizer
    ) -> (
        state: String, path: String
    )? {
        let name = fileName(jobID: jobID, pseudonymizer: pseudonymizer)
        if FileSystem.exists(layout.inbox + "/" + name) { return ("inbox", layout.inbox + "/" + name) }
        if FileSystem.exists(layout.rejected + "/" + name) { return ("rejected", layout.rejected + "/" + name) }
        return nil
    }

    /// Removes temp files a killed server left in `inbox/` (never a complete request).
    package static func removeStaleTemps(layout: SpoolLayout) {
        for name in (try? FileSystem.list(layout.inbox)) ?? [] where name.hasPrefix("." + prefix) {
            guard let base = name.dropFirst().components(separatedBy: ".json.dsar-").first,
                let pid = TempFile.owner(of: name, base: base + ".json")
            else { continue }
            if pid > 0 && pid != getpid() && kill(pid, 0) == 0 { continue }
            unlink(layout.inbox + "/" + name)
        }
    }
}
