import Foundation
import Logging

/// The Art. 15 facts about a data source, shown to the data subject.
package struct SourceMetadata: Sendable, Equatable, Codable {
    package var description: String?
    package var category: String?
    package var purpose: String?
    package var retention: String?
    /// The legal basis of the processing (Art. 6/9), e.g. "contract (Art. 6(1)(b) GDPR)".
    package var legalBasis: String?
    /// Where the data came from (Art. 15(1)(g)), e.g. "collected from you at sign-up" (`source:`).
    package var origin: String?
    /// Who receives the data (Art. 15(1)(c), 15(2)); `[]`: nobody; nil: not stated.
    package var disclosedTo: [Disclosure]?
    /// Automated decision-making (Art. 15(1)(h)): the text, or `none`.
    package var automatedDecisions: String?
    /// Translations of the free-text facts: key (`description`, `category`, `purpose`, `retention`,
    /// `legal_basis`, `source`, `automated_decisions`) → language → text, from `key: { en: …, de: … }`.
    /// The plain properties hold the text of the first language given.
    package var translations: [String: [String: String]]?

    package init(
        description: String? = nil, category: String? = nil, purpose: String? = nil, retention: String? = nil,
        legalBasis: String? = nil, origin: String? = nil, disclosedTo: [Disclosure]? = nil,
        automatedDecisions: String? = nil
    ) {
        self.description = description
        self.category = category
        self.purpose = purpose
        self.retention = retention
        self.legalBasis = legalBasis
        self.origin = origin
        self.disclosedTo = disclosedTo
        self.automatedDecisions = automatedDecisions
    }

    /// The fact `key` (a config key, e.g. `legal_basis`) in `language`, or its default text.
    package func text(_ key: String, _ language: String) -> String? {
        if let t = translations?[key]?[language] { return t }
        switch key {
        case "description": return description
        case "category": return category
        case "purpose": return purpose
        case "retention": return retention
        case "legal_basis": return legalBasis
        case "source": return origin
        case "automated_decisions": return automatedDecisions
        default: return nil
        }
    }
}

/// One job as a connector sees it: who to look for and where to put what it finds.
package struct ScanJob: Sendable {
    package var jobID: String
    package var action: RequestAction
    package var identifiers: [Identifier]
    package var dryRun: Bool
    /// A scratch directory (inside `tmp/`, mode 0700; shared by the batch, wiped with it).
    package var workDir: String

    package init(jobID: String, action: RequestAction, identifiers: [Identifier], dryRun: Bool, workDir: String) {
        self.jobID = jobID
        self.action = action
        self.identifiers = identifiers
        self.dryRun = dryRun
        self.workDir = workDir
    }
}

/// One record found for a subject: where it is and what it holds.
package struct FoundRecord: Sendable {
    /// Output group: the table, or the source file's base name.
    package var table: String
    /// The source file.
    package var source: String
    /// 1-based line where the record starts.
    package var line: Int
    /// The record's bytes in the source (decompressed offsets for gzip).
    package var range: Range<Int64>?
    /// Column → value (logs: `{"line": text}`), kept encoded: the JSON object as the findings file
    /// holds it (indent 2, nested two levels deep). One allocation per record instead of one per
    /// field, which bounds the memory of large exports.
    package var recordJSON: [UInt8]
    /// The nesting level `recordJSON` is written at.
    static let recordLevel = 2

    /// Column → value, decoded from ``recordJSON``.
    package var fields: [JSONMember] {
        guard let v = try? JSONParser.parse(recordJSON), case .object(let members) = v else { return [] }
        return members
    }
    /// The original bytes of the record (CSV row, log line), exported as they are.
    package var raw: [UInt8]?
    /// How it matched, e.g. `email`, `user_id (customer_id)`, `email in body`.
    package var matchedOn: [String]
    /// For CSV sources: the header line's raw bytes (shared storage), so rows export as CSV.
    package var rawHeader: [UInt8]?
    /// Matched the subject only through free text (a `text:` column): someone else's record that
    /// mentions the subject. Its export keeps only ``textFields`` (GDPR Art. 15(4), see ``ExportView``).
    package var mention: Bool
    /// Free-text fields in which other people's e-mail addresses, phone numbers and IPs are masked
    /// in the export: the matching text columns of a mention, `line` of a text log line, the string
    /// fields of a JSON log line. Empty (no allocation) for a structured match.
    package var textFields: [String]

    /// ``textFields`` of a text log line (shared storage).
    package static let lineField = ["line"]

    package init(
        table: String, source: String, line: Int, range: Range<Int64>? = nil, fields: [JSONMember], raw: [UInt8]? = nil,
        matchedOn: [String], rawHeader: [UInt8]? = nil, mention: Bool = false, textFields: [String] = []
    ) {
        self.rawHeader = rawHeader
        self.mention = mention
        self.textFields = textFields
        self.table = table
        self.source = source
        self.line = line
        self.range = range
        var json: [UInt8] = []
        JSONWriter(indent: 2).write(.object(fields), into: &json, level: FoundRecord.recordLevel)
        self.recordJSON = json
        self.raw = raw
        self.matchedOn = matchedOn
    }
}

/// What one connector found for one job.
package struct ConnectorFindings: Sendable {
    /// The records found.
    package var found: [FoundRecord]
    /// Identifiers learnt from matching records, with provenance (identity expansion).
    package var derived: [(Identifier, String)]
    /// Extra facts for the job record (no personal data).
    package var details: [String: String]
    /// Records found (plugins may report a count without records).
    package var records: Int
    /// Every source file the scan read, with size, hash and parse counts (the same for every job of a batch).
    package var coverage: [SourceCoverage] = []
    /// Where this job's data may be that the scan did not account for; any gap makes the job PARTIAL.
    package var gaps: [CoverageGap] = []

    package init(
        found: [FoundRecord] = [], derived: [(Identifier, String)] = [], details: [String: String] = [:],
        records: Int? = nil
    ) {
        self.found = found
        self.derived = derived
        self.details = details
        self.records = records ?? found.count
    }
}

/// All jobs of one scan round with one hash table of all their identifiers.
package struct ScanBatch: Sendable {
    package var jobs: [ScanJob]
    package var table: IdentifierTable

    package init(jobs: [ScanJob]) {
        self.jobs = jobs
        self.table = IdentifierTable(jobs: jobs.map(\.identifiers))
    }

    /// The batch an eraser (or the second search after erasure) scans: one delete job per erase job,
    /// with its whole identity set.
    package init(erasing jobs: [EraseJob]) {
        self.init(
            jobs: jobs.map {
                ScanJob(
                    jobID: $0.jobID, action: .delete, identifiers: $0.identifiers, dryRun: false, workDir: $0.workDir)
            })
    }
}

/// A data source that can be searched for many subjects in one pass.
package protocol Connector: Sendable {
    /// Unique name (from its config).
    var name: String { get }
    /// What the subject is told about this source.
    var metadata: SourceMetadata { get }
    /// Searches the source once for every job of the batch; returns findings per job id.
    func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings]
    /// Seconds one scan may take (nil: the runner's default).
    var timeoutSeconds: Double? { get }
    /// Retries on transient I/O errors (nil: the runner's default).
    var retries: Int? { get }
    /// Total bytes a scan will read, for progress (nil: unknown, e.g. a plugin).
    func sourceBytes() -> Int64?
    /// Whether records of `table` (a found record's ``FoundRecord/table``) are kept by erasure
    /// (`erase: retain`), so that finding them after erasure is expected.
    func retains(table: String) -> Bool
    /// Whether the second search after erasure runs this connector's scan again (true for sources
    /// dsar reads itself; a plugin reports its own `remaining` count instead).
    var searchedAgainAfterErasure: Bool { get }
}

extension Connector {
    package var timeoutSeconds: Double? { nil }
    package var retries: Int? { nil }
    package func sourceBytes() -> Int64? { nil }
    package func retains(table: String) -> Bool { false }
    package var searchedAgainAfterErasure: Bool { true }
}

/// The outcome of one connector for one job, as handed to the finisher.
package struct ConnectorOutcome: Sendable {
    package enum Status: String, Sendable { case ok, failed, skipped }
    package var name: String
    package var metadata: SourceMetadata
    package var status: Status
    package var findings: ConnectorFindings
    package var error: String?
    package var attempts: Int
    package var durationMs: Int

    package init(
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
