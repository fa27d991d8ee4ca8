import CArchive
import Foundation

/// Checks a published outbox entry: the manifest signature, the bundle's size and hash, and, with
/// an identity, every file inside the encrypted ZIP against the manifest.
package enum BundleVerifier {
    /// What was checked.
    package struct Report: Sendable {
        package var signer: String
        package var principal: String?
        package var action: String
        package var bundleChecked: Bool
        package var filesChecked: Int
        package var lines: [String]
        /// False only with `skipSignerCheck` and no trust anchor: the signature is valid, but by anyone's key.
        package var signerVerified: Bool
    }

    /// Verifies `entry` (an `outbox/<job-id>` directory). The trust anchor is `allowedSigners` (an
    /// allowed_signers file), else `trusted` (OpenSSH public key lines, e.g. the spool's
    /// `keys/signing_key.pub`). Without either it throws, since a valid signature by an unknown key
    /// proves nothing, unless `skipSignerCheck` (`--insecure-skip-signer`): then the report says
    /// `signerVerified == false`. With `checkSubjectCopy`, a `subject.zip.age` beside the bundle
    /// must be the job's last recorded delivery (see ``subjectCopyLine(entry:jobID:)``).
    package static func verify(
        entry: String, identities: [AgeIdentity], trusted: [String], allowedSigners: AllowedSigners?,
        skipSignerCheck: Bool = false, checkSubjectCopy: Bool = true
    ) throws -> Report {
        let manifestPath = entry + "/manifest.json"
        let sigPath = entry + "/manifest.json.sig"
        guard FileSystem.exists(manifestPath) else {
            throw DSARError(.notFound, "\(manifestPath) does not exist", path: manifestPath)
        }
        guard FileSystem.exists(sigPath) else { throw DSARError(.notFound, "\(sigPath) does not exist", path: sigPath) }
        let bytes = try FileSystem.readFile(manifestPath, limit: 64 << 20)
        let sig = String(decoding: try FileSystem.readFile(sigPath, limit: 1 << 20), as: UTF8.self)
        let blob: [UInt8]
        do {
            blob = try SSHSig.verify(armored: sig, message: bytes, namespace: Manifest.namespace)
        } catch {
            throw DSARError(.verification, "manifest signature INVALID: \(error)", path: sigPath, cause: error)
        }
        var lines = ["signature: valid (\(SSHSig.fingerprint(of: blob)), namespace \(Manifest.namespace))"]
        let manifest: JSONValue
        do { manifest = try JSONParser.parse(bytes) } catch {
            throw DSARError(
                .verification, "manifest.json is not valid JSON: \(error)", path: manifestPath, cause: error)
        }
        var principal: String?
        if case .string(let p)? = manifest["signer"]?["principal"] { principal = p }
        let keyText = SSHSig.publicKeyText(of: blob)
        if let allowedSigners {
            guard let p = principal else { throw DSARError(.verification, "the manifest names no signer principal") }
            if let why = allowedSigners.check(principal: p, keyBlob: blob, namespace: Manifest.namespace, at: Date()) {
                throw DSARError(.verification, "signer not allowed by \(allowedSigners.path): \(why)")
            }
            lines.append("signer: \(p) allowed by \(allowedSigners.path)")
        } else if !trusted.isEmpty {
            let known = trusted.contains { line in
                let parts = line.split(separator: " ")
                return parts.count >= 2 && "\(parts[0]) \(parts[1])" == keyText
            }
            guard known else {
                throw DSARError(
                    .verification,
                    "the manifest was signed by \(SSHSig.fingerprint(of: blob)), which is not the trusted signing key")
            }
            lines.append("signer: the spool's signing key")
        } else if skipSignerCheck {
            lines.append(
                "signer: NOT verified (--insecure-skip-signer): signed by \(SSHSig.fingerprint(of: blob)), a key nothing vouches for; anyone could have signed it"
            )
        } else {
            throw DSARError(
                .verification,
                "no trust anchor for the manifest signer: it is signed by \(SSHSig.fingerprint(of: blob)), but no allowed_signers file was given "
                    + "and no spool signing key is reachable, so the signature proves nothing. Pass --allowed-signers FILE (a copy of the "
                    + "spool's keys/allowed_signers you trust) or --spool DIR (the spool that signed it); --insecure-skip-signer checks "
                    + "integrity only",
                path: sigPath)
        }
        var action = "?"
        if case .string(let a)? = manifest["action"] { action = a }
        // The signature vouches for the manifest, not for where it lies: another job's entry
        // copied into `outbox/<this-job>/` is validly signed too. The directory of a job id must
        // hold that job's manifest.
        guard case .string(let jobID)? = manifest["job_id"] else {
            throw DSARError(.verification, "the manifest names no job_id", path: manifestPath)
        }
        let dirName = URL(fileURLWithPath: entry).standardizedFileURL.lastPathComponent
        if dirName != jobID, UUID(uuidString: dirName) != nil {
            throw DSARError(
                .verification,
                "\(entry) holds the manifest of job \(jobID), not of job \(dirName): the entry was moved or swapped with another job's",
                path: manifestPath)
        }
        var requestText = ""
        if case .string(let r)? = manifest["request_id"] { requestText = ", request \(r)" }
        lines.append("job: \(jobID) (\(action)\(requestText))")
        // A validly signed manifest of this job may still be an earlier attempt's (withdrawn by
        // `dsar retry`, then put back from a backup or mirror): inside its spool, the entry must be
        // the publication the job record names.
        if let rec = spoolRecord(entry: entry, jobID: jobID) {
            try checkCurrentPublication(rec, manifestBytes: bytes, path: manifestPath)
            if rec.manifestSHA256 != nil {
                lines.append("publication: the job's current one (manifest SHA-256 matches the job record)")
            }
        }
        var bundleChecked = false
        var filesChecked = 0
        if case .object? = manifest["bundle"] {
            guard case .string(let name)? = manifest["bundle"]?["name"],
                case .number(let sizeText)? = manifest["bundle"]?["size"],
                case .string(let want)? = manifest["bundle"]?["sha256"], !name.contains("/")
            else { throw DSARError(.verification, "manifest bundle entry is malformed") }
            let path = entry + "/" + name
            let data = try FileSystem.readFile(path, limit: Int.max)
            var h = StreamingSHA256()
            h.update(data)
            guard String(data.count) == sizeText else {
                throw DSARError(
                    .verification, "\(name) is \(data.count) bytes, the manifest says \(sizeText)", path: path)
            }
            guard h.hexDigest() == want else {
                throw DSARError(
                    .verification, "\(name) SHA-256 \(h.hexDigest()) does not match the manifest (\(want))", path: path)
            }
            bundleChecked = true
            lines.append("bundle: \(name) \(data.count) bytes, SHA-256 matches")
            if !identities.isEmpty {
                var plain: [UInt8] = []
                do {
                    try AgeDecryptor.decrypt(data, identities: identities) { plain += $0 }
                } catch {
                    throw DSARError(.verification, "cannot decrypt \(name): \(error)", path: path, cause: error)
                }
                let inside = try readZip(plain)
                var expected: [(String, String, String)] = []
                if case .array(let files)? = manifest["files"] {
                    for f in files {
                        if case .string(let n)? = f["name"], case .number(let s)? = f["size"],
                            case .string(let d)? = f["sha256"]
                        {
                            expected.append((n, s, d))
                        }
                    }
                }
                guard inside.count == expected.count else {
                    throw DSARError(
                        .verification, "the ZIP holds \(inside.count) files, the manifest lists \(expected.count)")
                }
                for (got, want) in zip(inside, expected) {
                    guard got.name == want.0, String(got.size) == want.1, got.sha256 == want.2 else {
                        throw DSARError(
                            .verification, "file \(got.name) in the ZIP does not match the manifest entry \(want.0)")
                    }
                }
                filesChecked = inside.count
                lines.append("contents: \(inside.count) files, names, sizes and SHA-256 match the manifest")
            }
        }
        if checkSubjectCopy, let line = try subjectCopyLine(entry: entry, jobID: jobID) { lines.append(line) }
        return Report(
            signer: SSHSig.fingerprint(of: blob), principal: principal, action: action, bundleChecked: bundleChecked,
            filesChecked: filesChecked, lines: lines,
            signerVerified: allowedSigners != nil || !trusted.isEmpty)
    }

    /// The record of job `jobID` when `entry` lies in its spool (`<spool>/outbox/<job-id>`) and the
    /// record is readable; nil otherwise (an entry copied elsewhere is checked on its own).
    static func spoolRecord(entry: String, jobID: String) -> JobRecord? {
        let outbox = URL(fileURLWithPath: entry).standardizedFileURL.deletingLastPathComponent()
        guard outbox.lastPathComponent == "outbox" else { return nil }
        let layout = SpoolLayout(root: outbox.deletingLastPathComponent().path)
        guard FileSystem.exists(layout.jobRecord(jobID)) else { return nil }
        return try? JobStore(layout: layout).load(jobID)
    }

    /// Throws unless `manifestBytes` (an outbox entry's `manifest.json`) are the job's current
    /// publication: the SHA-256 the record kept when the job was published (`manifest_sha256`).
    /// A job retried since (`dsar retry` withdrew its entry) and not published again has none, and
    /// no entry is current. A record from before dsar kept the hash, never retried, is not compared.
    package static func checkCurrentPublication(_ rec: JobRecord, manifestBytes: [UInt8], path: String) throws {
        var h = StreamingSHA256()
        h.update(manifestBytes)
        let got = h.hexDigest()
        let retried = rec.history.last { $0.event == "retried" }.map { " (retried at \($0.at))" } ?? ""
        if let want = rec.manifestSHA256 {
            guard want != got else { return }
            throw DSARError(
                .verification,
                "this entry is not the job's current publication\(retried): its manifest.json has SHA-256 \(got), "
                    + "the job record \(rec.jobID) was published with \(want); an earlier attempt's entry put back "
                    + "(from a backup or a mirror) is not the answer: remove it and restore the current entry",
                path: path)
        }
        guard !retried.isEmpty, rec.outbox == nil else { return }
        throw DSARError(
            .verification,
            "this entry is not the job's current publication\(retried): job \(rec.jobID) is \(rec.status.rawValue) "
                + "and has not been published again since; an earlier attempt's entry was withdrawn by `dsar retry` "
                + "and is not the answer: remove it",
            path: path)
    }

    /// The report line of the data subject's copy (`dsar deliver`), nil when there is none. The
    /// manifest was signed before the copy existed, so it does not cover it: when the entry lies in
    /// its spool (`<spool>/outbox/<job-id>`), the copy must be the last delivery the job record
    /// lists (same SHA-256 and size), else verification fails.
    static func subjectCopyLine(entry: String, jobID: String) throws -> String? {
        let path = entry + "/" + SubjectDelivery.fileName
        guard FileSystem.exists(path) else { return nil }
        let got = try SubjectDelivery.sha256(ofFile: path)
        let root = URL(fileURLWithPath: entry).standardizedFileURL.deletingLastPathComponent()
            .deletingLastPathComponent().path
        let recordPath = SpoolLayout(root: root).jobRecord(jobID)
        guard FileSystem.exists(recordPath), let rec = try? JobStore(layout: SpoolLayout(root: root)).load(jobID)
        else {
            return
                "subject copy: \(SubjectDelivery.fileName) \(got.bytes) bytes, SHA-256 \(got.sha256) (passphrase-encrypted by `dsar deliver`; not covered by the manifest, and no job record beside it to compare with)"
        }
        guard let last = rec.deliveries?.last else {
            throw DSARError(
                .verification,
                "\(path) is not a delivery of job \(jobID): its job record lists none (a leftover of an interrupted `dsar deliver`, or put there by someone else); rerun `dsar deliver` or remove it",
                path: path)
        }
        guard last.sha256 == got.sha256, last.bytes == got.bytes else {
            throw DSARError(
                .verification,
                "\(path) (SHA-256 \(got.sha256), \(got.bytes) bytes) is not the copy delivered \(last.at) (SHA-256 \(last.sha256), \(last.bytes) bytes): it was replaced or modified",
                path: path)
        }
        return
            "subject copy: \(SubjectDelivery.fileName) \(got.bytes) bytes, SHA-256 matches delivery \(rec.deliveries?.count ?? 1) of the job record (\(last.at)); passphrase-encrypted, not covered by the manifest"
    }

    /// Every entry of a ZIP held in memory: name, size, SHA-256.
    package static func readZip(_ bytes: [UInt8]) throws -> [ZipStreamWriter.Entry] {
        guard let a = archive_read_new() else { throw DSARError(.io, "libarchive: cannot create a reader") }
        defer { archive_read_free(a) }
        archive_read_support_format_zip(a)
        var out: [ZipStreamWriter.Entry] = []
        try bytes.withUnsafeBytes { raw in
            guard archive_read_open_memory(a, raw.baseAddress, raw.count) == ARCHIVE_OK else {
                throw DSARError(.verification, "not a ZIP archive: \(String(cString: archive_error_string(a)))")
            }
            var entry: OpaquePointer?
            var buf = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let r = archive_read_next_header(a, &entry)
                if r == ARCHIVE_EOF { break }
                guard r >= ARCHIVE_WARN, let entry else {
                    throw DSARError(.verification, "corrupt ZIP: \(String(cString: archive_error_string(a)))")
                }
                let name = archive_entry_pathname_utf8(entry).map { String(cString: $0) } ?? ""
                var h = StreamingSHA256()
                var size: Int64 = 0
                while true {
                    let n = buf.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
                    if n < 0 {
                        throw DSARError(
                            .verification, "corrupt ZIP entry \(name): \(String(cString: archive_error_string(a)))")
                    }
                    if n == 0 { break }
                    buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    size += Int64(n)
                }
                out.append(ZipStreamWriter.Entry(name: name, size: size, sha256: h.hexDigest()))
            }
        }
        return out
    }
}
