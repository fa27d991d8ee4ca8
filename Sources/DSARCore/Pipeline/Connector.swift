import Foundation
import Logging

/// The Art. 15 facts about a data source, shown to the data subject.
public struct SourceMetadata: Sendable, Equatable, Codable {
    public var description: String?
    public var category: String?
    public var purpose: String?
    public var retention: String?

    public init(description: String? = nil, category: String? = nil, purpose: String? = nil, retention: String? = nil) {
        self.description = description
        self.category = category
        self.purpose = purpose
        self.retention = retention
    }
}

/// One job as a connector sees it: who to look for and where to put what it finds.
public struct ScanJob: Sendable {
    public var jobID: String
    public var action: RequestAction
    public var identifiers: [Identifier]
    public var dryRun: Bool
    /// The job's private work directory (inside `tmp/`, mode 0700).
    public var workDir: String

    public init(jobID: String, action: RequestAction, identifiers: [Identifier], dryRun: Bool, workDir: String) {
        self.jobID = jobID
        self.action = action
        self.identifiers = identifiers
        self.dryRun = dryRun
        self.workDir = workDir
    }
}

/// What one connector found for one job.
public struct ConnectorFindings: Sendable {
    /// Records found.
    public var records: Int
    /// Files written under the job's work dir, relative to it (e.g. `data/shop-db/customers.json`).
    public var files: [String]
    /// Identifiers learnt from matching records, with provenance (identity expansion).
    public var derived: [(Identifier, String)]
    /// Extra facts for the job record (no personal data).
    public var details: [String: String]

    public init(records: Int = 0, files: [String] = [], derived: [(Identifier, String)] = [], details: [String: String] = [:]) {
        self.records = records
        self.files = files
        self.derived = derived
        self.details = details
    }
}

/// A data source that can be searched for many subjects in one pass.
public protocol Connector: Sendable {
    /// Unique name (from its config).
    var name: String { get }
    /// What the subject is told about this source.
    var metadata: SourceMetadata { get }
    /// Searches the source once for every job of the batch; returns findings per job id.
    func scan(_ jobs: [ScanJob], logger: Logger) async throws -> [String: ConnectorFindings]
}

/// The outcome of one connector for one job, as handed to the finisher.
public struct ConnectorOutcome: Sendable {
    public enum Status: String, Sendable { case ok, failed, skipped }
    public var name: String
    public var metadata: SourceMetadata
    public var status: Status
    public var findings: ConnectorFindings
    public var error: String?
    public var attempts: Int
    public var durationMs: Int

    public init(
        name: String, metadata: SourceMetadata, status: Status, findings: ConnectorFindings, error: String? = nil,
        attempts: Int = 1, durationMs: Int = 0
    ) {
        self.name = name
        self.metadata = metadata
        self.status = status
        self.findings = findings
        self.error = error
        self.attempts = attempts
        self.durationMs = durationMs
    }
}
