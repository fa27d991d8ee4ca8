import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `dsar deliver`: the data subject's own copy of an export, `outbox/<job-id>/subject.zip.age`.
///
/// It is the very ZIP inside the job's signed `bundle.zip.age`, decrypted with the privacy team's
/// age identity and re-encrypted as it streams (never a plaintext ZIP on disk) to a fresh age
/// passphrase (scrypt) recipient. The passphrase is generated here, returned once to be shown to
/// the operator, and never written anywhere: not in the job record, the journal, a log or a file.
package enum SubjectDelivery {
    /// The name of the subject's copy in the outbox entry.
    package static let fileName = "subject.zip.age"

    /// What a delivery made.
    package struct Result: Sendable {
        /// The job delivered.
        package var jobID: String
        /// The path of the subject's copy (under the spool root as given).
        package var path: String
        /// What the job record now lists for this delivery.
        package var delivery: JobRecord.Delivery
        /// Which delivery of the job this is (1 for the first).
        package var number: Int
        /// The job's status (COMPLETED or PARTIAL).
        package var status: JobStatus
        /// Set for a PARTIAL job: what the subject's copy lacks, for the operator to tell them.
        package var warning: String?
        /// The passphrase that opens the copy. Show it once; it exists nowhere else.
        package var passphrase: String
    }

    /// Makes the subject's copy of export job `jobID` (see ``SubjectDelivery``), records it in the
    /// job record (`deliveries`) and journals `job.delivered`. The caller holds the spool lock.
    ///
    /// Refused: a job that is not an export, a dry run, a job that has not ended or ended FAILED
    /// (no published bundle), and a job delivered already unless `force` (a new file and passphrase
    /// replace the old, which stops opening anything), a case closed as withdrawn or refused (and one
    /// closed as answered unless `force`), and an entry that is not the job's current publication (an
    /// earlier attempt's, put back after `dsar retry`). A PARTIAL job is delivered with a warning.
    /// Before a byte is decrypted the manifest signature is checked against the spool's signing key
    /// and the bundle against the manifest's size and SHA-256; the ciphertext actually streamed is
    /// hashed again and must match too, or nothing is published.
    package static func deliver(
        jobID: String, layout: SpoolLayout, config: SpoolConfig, identities: [AgeIdentity], force: Bool,
        audit: any AuditSink, now: Date = Date(), workFactor: Int = AgeScryptRecipient.defaultWorkFactor
    ) throws -> Result {
        let store = JobStore(layout: layout)
        let rec = try store.load(jobID)
        let recordPath = layout.jobRecord(jobID)
        guard rec.action == .export else {
            throw DSARError(
                .usage,
                "job \(jobID) is an erasure (\(rec.action.rawValue)) job: only an export is delivered to the data subject; its receipt stays in \(layout.outboxEntry(jobID))",
                path: recordPath)
        }
        guard !rec.dryRun else {
            throw DSARError(
                .usage,
                "job \(jobID) is a dry run: its bundle is a rehearsal, not the answer to the subject; submit the request without dry_run to deliver",
                path: recordPath)
        }
        switch rec.status {
        case .completed, .partial: break
        case .failed:
            throw DSARError(
                .usage,
                "job \(jobID) ended FAILED: it has no published bundle to deliver (\(rec.error ?? "see `dsar events \(jobID)`")); fix the cause and `dsar retry \(jobID)`",
                path: recordPath)
        case .pending, .running:
            throw DSARError(
                .usage,
                "job \(jobID) is \(rec.status.rawValue): it has no bundle yet; deliver once `dsar run` has finished it",
                path: recordPath)
        }
        // A case closed as withdrawn or refused is not answered with the data; one closed as
        // answered was answered already (by this or another channel): only --force sends it again.
        if let c = rec.closure, c.reason != .answered || !force {
            let why =
                c.reason == .answered
                ? "the person was answered already; --force delivers a new copy anyway"
                : "nothing is delivered for a case that was \(c.reason.rawValue); a new request needs a new drop"
            throw DSARError(
                .usage, "job \(jobID): the case was closed (\(c.reason.rawValue)) at \(c.at): \(why)", path: recordPath)
        }
        let entry = layout.outboxEntry(jobID)
        let bundlePath = entry + "/bundle.zip.age"
        guard FileSystem.exists(bundlePath) else {
            throw DSARError(
                .notFound,
                "job \(jobID) has no published bundle \(bundlePath) (withdrawn, or removed by outbox_retention_days)",
                path: bundlePath)
        }
        let target = entry + "/" + fileName
        let relative = "outbox/\(jobID)/\(fileName)"
        TempFile.removeStale(near: target)
        let previous = rec.deliveries ?? []
        let replacing = FileSystem.exists(target)
        if replacing, !force {
            // A copy no record speaks of was left by a delivery stopped before it was recorded:
            // its passphrase was never shown, so it is replaced without --force.
            let onDisk = try sha256(ofFile: target)
            if let last = previous.last, last.sha256 == onDisk.sha256 {
                throw DSARError(
                    .usage,
                    "job \(jobID) was delivered already (\(last.at), \(relative)); --force makes a new file and passphrase, and the old passphrase then opens nothing",
                    path: target)
            }
        }

        // Only the job's current publication, never an earlier attempt's entry put back after a retry.
        let manifestBytes = try FileSystem.readFile(entry + "/manifest.json", limit: 64 << 20)
        try BundleVerifier.checkCurrentPublication(rec, manifestBytes: manifestBytes, path: entry + "/manifest.json")
        // The signature and the bundle's hash first: nothing unverified is handed to the subject.
        let trusted = KeyMaterial.trustedSigningKeys(layout)
        // The subject copy is replaced below; a leftover one must not stop that.
        let report = try BundleVerifier.verify(
            entry: entry, identities: [], trusted: trusted, allowedSigners: nil, checkSubjectCopy: false)
        guard report.bundleChecked else {
            throw DSARError(.verification, "the manifest of \(entry) lists no bundle", path: entry + "/manifest.json")
        }
        let manifest = try JSONParser.parse(manifestBytes)
        guard case .string(let wantSHA)? = manifest["bundle"]?["sha256"] else {
            throw DSARError(.verification, "the manifest bundle entry has no sha256", path: entry + "/manifest.json")
        }

        let gid = try config.outboxGroupID(layout)
        let passphrase = PassphraseGenerator.generate()
        let recipient = try AgeScryptRecipient(passphrase: passphrase, workFactor: workFactor)
        let fd = open(bundlePath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw DSARError.syscall("cannot open", path: bundlePath) }
        defer { close(fd) }
        var inHash = StreamingSHA256()
        var outHash = StreamingSHA256()
        var outBytes: Int64 = 0
        let reader: (UnsafeMutableRawBufferPointer) throws -> Int = { dest in
            while true {
                let n = read(fd, dest.baseAddress, dest.count)
                if n > 0 { inHash.update(UnsafeRawBufferPointer(rebasing: dest[0..<n])) }
                if n >= 0 { return n }
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot read", path: bundlePath)
            }
        }
        do {
            try AgeFileOutput.write(to: target, mode: 0o640, group: gid) { put in
                let enc = try AgeEncryptor(scrypt: recipient) { bytes in
                    outHash.update(bytes)
                    outBytes += Int64(bytes.count)
                    try put(bytes)
                }
                do {
                    try AgeDecryptor.decrypt(reader: reader, identities: identities) { try enc.write($0) }
                } catch let e as AgeError {
                    let hint =
                        e.kind == .noMatch
                        ? "; the identity file must hold the key of one of the recipients in config.yaml" : ""
                    throw DSARError(
                        .verification, "cannot decrypt \(bundlePath): \(e.message)\(hint)", path: bundlePath)
                }
                try enc.finish()
                // The bytes decrypted are the bytes the manifest vouches for (not a file swapped after the check).
                guard inHash.hexDigest() == wantSHA else {
                    throw DSARError(
                        .verification,
                        "\(bundlePath) changed while it was read (SHA-256 \(inHash.hexDigest()), the manifest says \(wantSHA)); nothing was delivered",
                        path: bundlePath)
                }
            }
        } catch let e as AgeError { throw e.dsarError }
        CrashPoint.hit("deliver.renamed")
        let delivery = JobRecord.Delivery(
            at: Timestamp.format(now), file: relative, sha256: outHash.hexDigest(), bytes: outBytes)
        let number = previous.count + 1
        let updated = try store.update(jobID) { r in
            r.deliveries = (r.deliveries ?? []) + [delivery]
            r.note(
                "delivered",
                "\(relative) for the data subject (passphrase-encrypted, delivery \(number)\(replacing ? ", replacing the previous copy" : ""))",
                now: now)
        }
        try audit.append(
            AuditEvent.jobDelivered(
                job: jobID, subject: updated.subject, file: relative, sha256: delivery.sha256, bytes: delivery.bytes,
                delivery: number))
        var warning: String?
        if rec.status == .partial {
            warning =
                "job \(jobID) is PARTIAL, so the copy may be incomplete (\(rec.error ?? "see `dsar status \(jobID)`")); "
                + "tell the data subject what is missing and why"
        }
        return Result(
            jobID: jobID, path: target, delivery: delivery, number: number, status: rec.status, warning: warning,
            passphrase: passphrase)
    }

    static func sha256(ofFile path: String) throws -> (sha256: String, bytes: Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if fd < 0 { throw DSARError.syscall("cannot open", path: path) }
        defer { close(fd) }
        var h = StreamingSHA256()
        var total: Int64 = 0
        var buf = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DSARError.syscall("cannot read", path: path)
            }
            if n == 0 { break }
            buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            total += Int64(n)
        }
        return (h.hexDigest(), total)
    }
}

/// Passphrases a person can read aloud and type: groups of 4 from 31 lowercase letters and digits
/// without the lookalikes 0/o, 1/l/i, dash-separated. 7 groups: 28 × log2(31) ≈ 138.7 bits.
package enum PassphraseGenerator {
    /// The symbols used.
    package static let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
    /// How many dash-separated groups.
    package static let groups = 7
    /// Symbols per group.
    package static let groupLength = 4

    /// The entropy of one generated passphrase, in bits.
    package static var entropyBits: Double { Double(groups * groupLength) * log2(Double(alphabet.count)) }

    /// A fresh passphrase from the system's CSPRNG, each symbol uniform.
    package static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        var parts: [String] = []
        for _ in 0..<groups {
            parts.append(
                String((0..<groupLength).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &rng)] }))
        }
        return parts.joined(separator: "-")
    }
}
