import Foundation
import Logging

/// Finishes delete jobs by publishing a signed erasure receipt (`manifest.json` with `"action":
/// "delete"`, no bundle): per source file what was deleted, redacted or retained (and why), what
/// remains after the verifying re-scan, and each file's SHA-256 before and after. A dry run publishes
/// the same kind of report of what would be erased, changing nothing.
package struct ErasureReportFinisher: JobFinisher {
    package let signer: ManifestSigner
    package let group: gid_t?
    package let journalHead: @Sendable () -> JSONValue
    /// What erasure does per connector name (``ErasingConnector/eraseStrategies``), for the report.
    package let strategies: [String: [EraseStrategyEntry]]

    package init(
        signer: ManifestSigner, group: gid_t?, strategies: [String: [EraseStrategyEntry]],
        journalHead: @escaping @Sendable () -> JSONValue
    ) {
        self.signer = signer
        self.group = group
        self.strategies = strategies
        self.journalHead = journalHead
    }

    package func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> Published {
        if !job.record.dryRun {
            guard let erasure = job.erasure else {
                throw DSARError(
                    .processing, "the delete job reached publishing without an erasure result; nothing was published")
            }
            return try OutboxPublisher.publish(jobID: job.record.jobID, layout: layout) { staging in
                let retained: [JSONValue] = erasure.files.filter { $0.retained > 0 }.map {
                    .obj([
                        "connector": .string($0.connector), "file": .string($0.file), "records": .int($0.retained),
                        "reason": .str($0.reason),
                    ])
                }
                let manifest = Manifest(
                    jobID: job.record.jobID, requestID: job.record.requestID, action: .delete,
                    regulation: job.record.regulation,
                    dryRun: false, subject: job.record.subject, createdAt: Date(), bundle: nil, files: [],
                    connectors: ExportBundler.connectorSummary(job.outcomes, subject: job.identifiers), recipients: [],
                    signerPrincipal: signer.principal,
                    signerKey: signer.key.publicKeyLine, journalHead: journalHead(),
                    extra: [
                        ExportBundler.coverageMember(job, extraGaps: erasure.verification),
                        JSONMember(
                            key: "erasure",
                            value: .obj([
                                "dry_run": .bool(false),
                                // True only when the job is COMPLETED: every source searched, every
                                // occurrence accounted for, and the second search found nothing unexpected.
                                "verified": .bool(
                                    job.record.status == .completed && erasure.verification.isEmpty
                                        && erasure.errors.isEmpty
                                        && erasure.unexpectedRemaining == 0),
                                "verification_gaps": .array(erasure.verification.map(\.json)),
                                "deleted": .int(erasure.files.reduce(0) { $0 + $1.deleted }),
                                "redacted": .int(erasure.files.reduce(0) { $0 + $1.redacted }),
                                "retained": .int(erasure.files.reduce(0) { $0 + $1.retained }),
                                "remaining": .int(erasure.unexpectedRemaining),
                                "sources": .array(erasure.files.map(\.json)),
                                "retained_records": .array(retained),
                                "errors": .object(
                                    erasure.errors.keys.sorted().map {
                                        JSONMember(key: $0, value: .string(erasure.errors[$0]!))
                                    }),
                            ])),
                    ])
                return try ExportBundler.writeSigned(manifest, signer: signer, into: staging, group: group)
            }
        }
        return try OutboxPublisher.publish(jobID: job.record.jobID, layout: layout) { staging in
            let sources: [JSONValue] = job.outcomes.map { o in
                var byTable: [String: Int] = [:]
                for r in o.findings.found { byTable[r.table, default: 0] += 1 }
                return .obj([
                    "name": .string(o.name), "status": .string(o.status.rawValue),
                    "would_erase": .int(o.findings.records),
                    "strategy": ErasureReportFinisher.render(strategies[o.name]),
                    "tables": .object(byTable.keys.sorted().map { JSONMember(key: $0, value: .int(byTable[$0]!)) }),
                ])
            }
            let manifest = Manifest(
                jobID: job.record.jobID, requestID: job.record.requestID, action: .delete,
                regulation: job.record.regulation,
                dryRun: true, subject: job.record.subject, createdAt: Date(), bundle: nil, files: [],
                connectors: ExportBundler.connectorSummary(job.outcomes, subject: job.identifiers), recipients: [],
                signerPrincipal: signer.principal,
                signerKey: signer.key.publicKeyLine, journalHead: journalHead(),
                extra: [
                    ExportBundler.coverageMember(job),
                    JSONMember(
                        key: "erasure",
                        value: .obj([
                            "dry_run": .bool(true), "sources": .array(sources),
                            // Where the erasure could be carried out and undone (a live database's
                            // transaction, rolled back): what it would change, per table.
                            "rehearsed": .array((job.erasure?.files ?? []).map(\.json)),
                            "rehearsal_errors": .object(
                                (job.erasure?.errors ?? [:]).sorted { $0.key < $1.key }.map {
                                    JSONMember(key: $0.key, value: .string($0.value))
                                }),
                        ])),
                ])
            return try ExportBundler.writeSigned(manifest, signer: signer, into: staging, group: group)
        }
    }

    /// A connector's strategies in the dry-run report: the strategy's name for a source without
    /// tables, a list of `{table, strategy, reason}` for one with tables (SQL dumps), null when unknown.
    static func render(_ entries: [EraseStrategyEntry]?) -> JSONValue {
        guard let entries, !entries.isEmpty else { return .null }
        if entries.count == 1, entries[0].table == nil { return .string(entries[0].strategy.rawValue) }
        return .array(entries.map(\.json))
    }
}
