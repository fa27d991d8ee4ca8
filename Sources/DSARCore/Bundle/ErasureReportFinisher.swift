import Foundation
import Logging

/// Finishes delete jobs. A dry run publishes a signed report of what would be erased (per source,
/// with the configured strategy), changing nothing. Real erasure is done by an eraser; until one is
/// configured, a delete job that is not a dry run fails with a clear reason (its request is kept in
/// `failed/`, so nothing is lost).
public struct ErasureReportFinisher: JobFinisher {
    public let signer: ManifestSigner
    public let group: gid_t?
    public let journalHead: @Sendable () -> JSONValue
    /// Erasure strategy per connector name (for the report).
    public let strategies: [String: String]

    public init(signer: ManifestSigner, group: gid_t?, strategies: [String: String], journalHead: @escaping @Sendable () -> JSONValue) {
        self.signer = signer
        self.group = group
        self.strategies = strategies
        self.journalHead = journalHead
    }

    public func finish(_ job: FinishingJob, layout: SpoolLayout, logger: Logger) throws -> String {
        guard job.record.dryRun else {
            throw DSARError(
                .processing,
                "erasure is not available in this version of dsar; nothing was changed. Submit the request with \"dry_run\": true to see what would be erased")
        }
        return try OutboxPublisher.publish(jobID: job.record.jobID, layout: layout) { staging in
            let sources: [JSONValue] = job.outcomes.map { o in
                var byTable: [String: Int] = [:]
                for r in o.findings.found { byTable[r.table, default: 0] += 1 }
                return .obj([
                    "name": .string(o.name), "status": .string(o.status.rawValue), "would_erase": .int(o.findings.records),
                    "strategy": .str(strategies[o.name]),
                    "tables": .object(byTable.keys.sorted().map { JSONMember(key: $0, value: .int(byTable[$0]!)) }),
                ])
            }
            let manifest = Manifest(
                jobID: job.record.jobID, requestID: job.record.requestID, action: .delete, regulation: job.record.regulation,
                dryRun: true, subject: job.record.subject, createdAt: Date(), bundle: nil, files: [],
                connectors: ExportBundler.connectorSummary(job.outcomes), recipients: [], signerPrincipal: signer.principal,
                signerKey: signer.key.publicKeyLine, journalHead: journalHead(),
                extra: [JSONMember(key: "erasure", value: .obj(["dry_run": .bool(true), "sources": .array(sources)]))])
            try ExportBundler.writeSigned(manifest, signer: signer, into: staging, group: group)
        }
    }
}
