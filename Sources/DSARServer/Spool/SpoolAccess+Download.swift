import DSARCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension SpoolAccess {
    /// The signer of this spool's download links (its key derived from the pseudonym key).
    package var downloadSigner: DownloadTokenSigner { DownloadTokenSigner(pseudonymizer: pseudonymizer) }

    /// `GET /dsar/{jobId}/download`: a signed link to `file` of the job's published entry, valid
    /// for `ttl` seconds from `now`, granted to `principal` (a JWT `sub`; nil under `auth: none`).
    /// Throws a 404 ``Problem`` when the job has no published entry (unknown, PENDING, RUNNING,
    /// FAILED, withdrawn) or the entry has no such file. The grant is journaled
    /// (`download.granted`, the principal as its pseudonym) before the link is returned: no link
    /// without its journal entry.
    package func downloadLink(
        _ jobID: String, file: DownloadFile, ttl: Double, now: Date, principal: String?, instance: String
    ) throws -> (token: String, expires: Date) {
        let record: JobRecord
        switch try state(jobID) {
        case .unknown: throw Problem.notFound("no job \(jobID)", instance: instance)
        case .inbox, .claimed:
            throw Problem.notFound(
                "job \(jobID) is PENDING: nothing is published yet; ask again once GET /dsar/\(jobID) says COMPLETED or PARTIAL",
                instance: instance)
        case .rejected:
            throw Problem.notFound(
                "job \(jobID) was REJECTED by intake: it has no published entry (GET /dsar/\(jobID) says why)",
                instance: instance)
        case .record(let r): record = r
        }
        guard record.status.isTerminal, record.outbox != nil else {
            throw Problem.notFound(
                record.status.isTerminal
                    ? "job \(jobID) ended \(record.status.rawValue): it has no published entry (GET /dsar/\(jobID) says why)"
                    : "job \(jobID) is \(record.status.rawValue): nothing is published yet; ask again once GET /dsar/\(jobID) says COMPLETED or PARTIAL",
                instance: instance)
        }
        guard let dir = try OutboxDownload.openEntry(layout, jobID: jobID) else {
            throw Problem.notFound(
                "the published entry of job \(jobID) is gone (withdrawn, or removed by outbox retention)",
                instance: instance)
        }
        defer { close(dir) }
        let manifest = try readManifest(dir)
        switch try OutboxDownload.openFile(file.fileName, in: dir, etag: { _, _ in nil }) {
        case .file: break
        case .missing:
            throw Problem.notFound(
                file == .subjectCopy
                    ? "the entry of job \(jobID) has no \(file.fileName): `dsar deliver \(jobID)` makes it"
                    : "the entry of job \(jobID) has no \(file.fileName)", instance: instance)
        case .refused(let why):
            throw Problem(
                .forbidden, "refused", title: "Not allowed",
                detail: "\(file.fileName) of job \(jobID) is not a regular file of its outbox entry; it is not served",
                instance: instance, errors: [.init(field: "file", message: why)])
        }
        let expires = Int64((now.timeIntervalSince1970 + ttl).rounded(.down))
        let token = DownloadToken(
            jobID: jobID, file: file, expires: expires, attempt: UInt32(clamping: record.attempts),
            generation: DownloadToken.generation(manifest: manifest))
        let at = Date(timeIntervalSince1970: Double(expires))
        try Journal(layout: layout, signer: nil).append(
            .downloadGranted(
                job: jobID, subject: record.subject, file: file.fileName, expires: Timestamp.format(at),
                principal: principal.map(pseudonymizer.principalPseudonym)))
        return (downloadSigner.encode(token), at)
    }

    /// `GET /files/{token}`: opens the file a valid token names, if its entry is still the one the
    /// link was made for (same attempt, same manifest), else throws a 410 ``Problem``; a symlink or
    /// anything but a regular file directly in the entry is refused (403).
    package func openDownload(_ token: DownloadToken, instance: String) throws -> OutboxDownload.OpenFile {
        let jobID = token.jobID
        let gone = Problem(
            .gone, "gone", title: "The download is gone",
            detail:
                "the entry this link was made for is no longer published (the job was retried, or outbox retention removed it); ask GET /dsar/\(jobID)/download for a new link",
            instance: instance)
        guard case .record(let record) = try state(jobID), record.status.isTerminal, record.outbox != nil,
            UInt32(clamping: record.attempts) == token.attempt
        else { throw gone }
        guard let dir = try OutboxDownload.openEntry(layout, jobID: jobID) else { throw gone }
        defer { close(dir) }
        let manifest = try readManifest(dir)
        guard DownloadToken.generation(manifest: manifest) == token.generation else { throw gone }
        let name = token.file.fileName
        let opened = try OutboxDownload.openFile(name, in: dir) { size, fd in
            switch token.file {
            case .bundle: return try OutboxDownload.bundleETag(manifest: manifest, size: size)
            case .manifest: return manifest.map(OutboxDownload.etag(of:))
            case .signature:
                return OutboxDownload.etag(
                    of: try OutboxDownload.readAll(fd, size: size, limit: 1 << 20, name: name))
            case .subjectCopy:
                // The hash `dsar deliver` recorded, when the file is still that copy's size.
                guard let d = record.deliveries?.last, d.file.hasSuffix("/" + name), d.bytes == size,
                    d.sha256.utf8.count == 64
                else { return nil }
                return "\"" + d.sha256.lowercased() + "\""
            }
        }
        switch opened {
        case .file(let f): return f
        case .missing: throw gone
        case .refused(let why):
            throw Problem(
                .forbidden, "refused", title: "Not allowed",
                detail: "\(name) of job \(jobID) is not a regular file of its outbox entry; it is not served",
                instance: instance, errors: [.init(field: "token", message: why)])
        }
    }

    /// The entry's `manifest.json` (nil when it has none; a symlink there is an error).
    func readManifest(_ dir: Int32) throws -> [UInt8]? {
        var bytes: [UInt8]?
        switch try OutboxDownload.openFile(
            "manifest.json", in: dir,
            etag: { size, fd in
                bytes = try OutboxDownload.readAll(fd, size: size, limit: 64 << 20, name: "manifest.json")
                return nil
            })
        {
        case .file: return bytes
        case .missing: return nil
        case .refused(let why): throw DSARError(.permissions, "refusing an outbox entry: \(why)")
        }
    }
}
