import Foundation
import Logging

/// One delete job as an eraser sees it: every identifier (request + derived).
package struct EraseJob: Sendable {
    package var jobID: String
    package var identifiers: [Identifier]
    package var dryRun: Bool
    /// The batch's scratch directory in the spool's `tmp/` (mode 0700; "" when there is none).
    package var workDir: String
    package init(jobID: String, identifiers: [Identifier], dryRun: Bool, workDir: String = "") {
        self.jobID = jobID
        self.identifiers = identifiers
        self.dryRun = dryRun
        self.workDir = workDir
    }
}

/// What erasure did to one source file for one job (no personal data).
package struct FileErasure: Sendable, Equatable {
    package var connector: String
    package var file: String
    /// The SQL table the counts are for (nil for sources without tables).
    package var table: String?
    /// What erasure was configured to do to the subject's records here (`retain`: nothing changed).
    package var strategy: EraseStrategy
    package var deleted = 0
    package var redacted = 0
    package var retained = 0
    /// Records of the subject still found after the rewrite (must be `retained`).
    package var remaining = 0
    package var sha256Before: String?
    package var sha256After: String?
    package var reason: String?
    package var detail: String?
    /// Why the file could not be (completely) erased, or what failed after it was (the `reopen:`
    /// command); the job is PARTIAL with it (``ErasureOutcome/errors``).
    package var error: String?

    package init(connector: String, file: String, table: String? = nil, strategy: EraseStrategy) {
        self.connector = connector
        self.file = file
        self.table = table
        self.strategy = strategy
    }

    /// Records the file's hashes before and after the rewrite on each result that changed something.
    static func stampHashes(_ results: inout [FileErasure], before: String?, after: String?) {
        for k in results.indices where results[k].deleted + results[k].redacted > 0 {
            results[k].sha256Before = before
            results[k].sha256After = after
        }
    }

    /// Adds to `out` the results (one per job, in `jobs` order) that concern their job's subject.
    static func collect(_ results: [FileErasure], for jobs: [EraseJob], into out: inout [String: [FileErasure]]) {
        for (k, job) in jobs.enumerated() {
            let f = results[k]
            if f.deleted + f.redacted + f.retained + f.remaining > 0 || f.error != nil {
                out[job.jobID, default: []].append(f)
            }
        }
    }

    /// As JSON for the receipt.
    package var json: JSONValue {
        .obj([
            "connector": .string(connector), "file": .string(file), "table": .str(table),
            "strategy": .string(strategy.rawValue), "deleted": .int(deleted),
            "redacted": .int(redacted), "retained": .int(retained), "remaining": .int(remaining),
            "sha256_before": .str(sha256Before), "sha256_after": .str(sha256After), "reason": .str(reason),
            "detail": .str(detail),
            "error": .str(error),
        ])
    }
}

/// What erasure did for one job.
package struct ErasureOutcome: Sendable {
    package var files: [FileErasure]
    /// Connector name → why it could not erase.
    package var errors: [String: String]
    /// What the second search after erasure found that must not be there (any entry makes the job PARTIAL).
    package var verification: [CoverageGap] = []
    package init(files: [FileErasure], errors: [String: String]) {
        self.files = files
        self.errors = errors
    }
    /// Records of the subject still present that are not under retention.
    package var unexpectedRemaining: Int { files.reduce(0) { $0 + max(0, $1.remaining - $1.retained) } }
}

/// What erasure is configured to do to a connector's records: one entry for a source without
/// tables, one per configured table for SQL dumps.
package struct EraseStrategyEntry: Sendable, Equatable {
    /// The SQL table (nil for sources without tables).
    package var table: String?
    package var strategy: EraseStrategy
    /// The legal hold or statutory retention of a `retain`.
    package var reason: String?

    package init(table: String? = nil, strategy: EraseStrategy, reason: String? = nil) {
        self.table = table
        self.strategy = strategy
        self.reason = reason
    }

    /// As JSON for a receipt.
    package var json: JSONValue {
        .obj(["table": .str(table), "strategy": .string(strategy.rawValue), "reason": .str(reason)])
    }
}

/// A connector that can erase what it finds.
package protocol ErasingConnector: Connector {
    /// What erasure does here (for the receipt of a dry run): never empty.
    var eraseStrategies: [EraseStrategyEntry] { get }
    /// Erases every job's records from every source in one rewrite per file, then re-scans to verify.
    func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]]
    /// Whether a dry run can carry out the erasure and undo it (a transaction rolled back), so that
    /// its receipt reports what would change (``EraseJob/dryRun`` jobs are then passed to ``erase``).
    /// Sources rewritten in place cannot: their dry run reports what the search found.
    var rehearsesErasure: Bool { get }
}

extension ErasingConnector {
    package var rehearsesErasure: Bool { false }
}
