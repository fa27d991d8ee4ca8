import CShims
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Seals an export job: report + data files → ZIP (libarchive, deflate) → age (streamed, never an
/// unencrypted ZIP on disk) → `bundle.zip.age`, with a signed `manifest.json`, published atomically.
package struct ExportBundler: JobFinisher {
    package let recipients: [AgeRecipient]
    package let signer: ManifestSigner
    /// Group of the published files (0640), if configured.
    package let group: gid_t?
    /// The journal head at sealing time (null before the journal exists).
    package let journalHead: @Sendable () -> JSONValue
    /// The facts, languages and templates of the subject report (config.yaml).
    package let report: ReportSettings

    package init(
        recipients: [AgeRecipient], signer: ManifestSigner, group: gid_t?,
        journalHead: @escaping @Sendable () -> JSONValue, report: ReportSettings = ReportSettings()
    ) {
        self.report = report
        self.recipients = recipients
        self.signer = signer
        self.group = group
        self.journalHead = journalHead
    }

    package func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published {
        guard !recipients.isEmpty else {
            throw DSARError(
                .config, "no recipients configured: set `recipients:` in \(layout.config) (age1… keys or files)",
                path: layout.config)
        }
        return try OutboxPublisher.publish(jobID: job.record.jobID, layout: layout) { staging in
            let now = Date()
            // The findings go straight from memory into the ZIP, file by file, in chunks.
            let findings = FindingsWriter.plan(job.outcomes, subject: job.identifiers)
            let dataFiles = findings.map(\.name)
            let bundlePath = staging + "/bundle.zip.age"
            let fd = open(bundlePath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o640)
            if fd < 0 { throw DSARError.syscall("cannot create", path: bundlePath) }
            // Exactly 0640 whatever the umask: the privacy team's group must be able to read it.
            if fchmod(fd, 0o640) != 0 {
                close(fd)
                throw DSARError.syscall("cannot set mode on", path: bundlePath)
            }
            var hasher = StreamingSHA256()
            var size: Int64 = 0
            // Cleared when the descriptor is closed: a write after that (there must be none) would
            // land in whatever file reused the number.
            var fdOpen = true
            let entries: [ZipStreamWriter.Entry]
            do {
                defer {
                    fdOpen = false
                    close(fd)
                }
                let encryptor = try AgeEncryptor(recipients: recipients) { chunk in
                    guard fdOpen else {
                        throw DSARError(
                            .processing, "bundle writer used after \(bundlePath) was closed", path: bundlePath)
                    }
                    try chunk.withUnsafeBytes { try FileSystem.writeAll(fd, $0, path: bundlePath) }
                    hasher.update(chunk)
                    size += Int64(chunk.count)
                }
                let zip = try ZipStreamWriter(mtime: now) { try encryptor.write($0) }
                let report = SubjectReport.render(job, files: dataFiles, now: now, settings: self.report)
                try zip.add("README.txt", bytes: Array(report.readme.utf8))
                try zip.add("index.html", bytes: Array(report.index.utf8))
                // Pages of large tables, one at a time (each rendered, written, released).
                for p in report.layout.pages {
                    let page = SubjectReport.page(
                        job, layout: report.layout, table: p.table, page: p.page, settings: self.report)
                    try zip.add(page.path, bytes: Array(page.html.utf8))
                }
                CrashPoint.hit("seal.writing")
                for f in findings {
                    if FindingsWriter.estimatedSize(f, job.outcomes) <= 8 << 20 {
                        // Small: produced once, in memory.
                        var bytes: [UInt8] = []
                        try FindingsWriter.produce(f, job.outcomes) { bytes += $0 }
                        try zip.add(f.name, bytes: bytes)
                    } else {
                        // Large: a counting pass for the exact size, then streamed in chunks.
                        let size = try FindingsWriter.size(f, job.outcomes)
                        try zip.add(f.name, size: size) { emit in
                            try FindingsWriter.produce(f, job.outcomes, emit: emit)
                        }
                    }
                }
                try zip.finish()
                try encryptor.finish()
                entries = zip.entries
                // Writeback starts now; the publisher fsyncs every staged file (and reports a full disk).
                _ = dsar_start_writeback(fd)
            }
            let manifest = Manifest(
                jobID: job.record.jobID, requestID: job.record.requestID, action: job.record.action,
                regulation: job.record.regulation,
                dryRun: job.record.dryRun, subject: job.record.subject, createdAt: now,
                bundle: Manifest.File(name: "bundle.zip.age", size: size, sha256: hasher.hexDigest()),
                files: entries.map { Manifest.File(name: $0.name, size: $0.size, sha256: $0.sha256) },
                connectors: ExportBundler.connectorSummary(job.outcomes, subject: job.identifiers),
                recipients: recipients.map(\.string),
                signerPrincipal: signer.principal, signerKey: signer.key.publicKeyLine, journalHead: journalHead(),
                extra: [ExportBundler.coverageMember(job)])
            let manifestBytes = try ExportBundler.writeSigned(manifest, signer: signer, into: staging, group: group)
            if let group, chown(bundlePath, uid_t.max, group) != 0 {
                throw DSARError.syscall("cannot set group \(group) on", path: bundlePath)
            }
            logger.info(
                "bundle sealed",
                metadata: ["job": "\(job.record.jobID)", "files": "\(entries.count)", "bytes": "\(size)"])
            return manifestBytes
        }
    }

    /// Per-connector facts for the manifest (no personal data): `mentions` counts records of other
    /// people that only mention the subject (exported reduced to those text fields), `masked` the
    /// other people's e-mail addresses, phone numbers and IPs masked in the export (``ExportView``).
    package static func connectorSummary(_ outcomes: [ConnectorOutcome], subject: [Identifier]) -> [JSONValue] {
        outcomes.map { o in
            let st = ExportView.stats(o, subject: subject)
            return .obj([
                "name": .string(o.name), "status": .string(o.status.rawValue), "records": .int(o.findings.records),
                "mentions": .int(st.mentions), "masked": .int(st.masked),
                "category": .str(o.metadata.category), "error": .str(o.error),
                "sources": .array(o.findings.coverage.map(\.json)),
                "gaps": .array(o.findings.gaps.map(\.json)),
            ])
        }
    }

    /// The statement of coverage: whether every configured connector searched every source it
    /// names and accounted for every occurrence of the subject's identifiers (see README "What
    /// verified means"). `complete` is true only for a COMPLETED job.
    package static func coverageMember(_ job: FinishingJob, extraGaps: [CoverageGap] = []) -> JSONMember {
        let gaps = job.outcomes.flatMap(\.findings.gaps) + extraGaps
        let failed = job.outcomes.filter { $0.status != .ok }.map(\.name)
        let sources = job.outcomes.reduce(0) { $0 + $1.findings.coverage.count }
        let unparsed = job.outcomes.reduce(0) { $0 + $1.findings.coverage.reduce(0) { $0 + $1.unparsed } }
        return JSONMember(
            key: "coverage",
            value: .obj([
                "complete": .bool(
                    job.record.status == .completed && gaps.isEmpty && failed.isEmpty && !job.outcomes.isEmpty),
                "connectors_configured": .int(job.outcomes.count),
                "connectors_failed": .array(failed.map { .string($0) }),
                "source_files": .int(sources),
                "unparsed_records": .int(unparsed),
                "gaps": .array(gaps.map(\.json)),
            ]))
    }

    /// Writes `manifest.json` and `manifest.json.sig` (0640) into the staging directory `dir`
    /// (``OutboxPublisher`` fsyncs every file before publishing). Returns the manifest bytes written.
    @discardableResult
    package static func writeSigned(
        _ manifest: Manifest, signer: ManifestSigner, into dir: String, group: gid_t?
    ) throws -> [UInt8] {
        let bytes = manifest.bytes
        let sig = try signer.sign(bytes)
        try FileSystem.writeScratch(dir + "/manifest.json", bytes, mode: 0o640)
        try FileSystem.writeScratch(dir + "/manifest.json.sig", Array(sig.utf8), mode: 0o640)
        if let group {
            for n in ["manifest.json", "manifest.json.sig"] where chown(dir + "/" + n, uid_t.max, group) != 0 {
                throw DSARError.syscall("cannot set group \(group) on", path: dir + "/" + n)
            }
        }
        return bytes
    }
}
