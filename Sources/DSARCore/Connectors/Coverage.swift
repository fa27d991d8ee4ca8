import Foundation

/// What one scan established about one source file (no personal data): the statement of coverage
/// that manifests and receipts carry.
package struct SourceCoverage: Sendable, Equatable {
    /// The source file.
    package var file: String
    /// Its size as stored (compressed size for gzip).
    package var bytes: Int64
    /// SHA-256 of the bytes as stored, hex (nil: not a file, e.g. a plugin).
    package var sha256: String?
    /// Records read and parsed (rows, lines, tuples).
    package var records: Int
    /// Records that could not be parsed.
    package var unparsed: Int
    /// Lines where unparsed records start (the first ``maxListedLines``).
    package var unparsedLines: [Int]
    /// Why the source looks cut off (nil: complete, or a kind without an end marker).
    package var truncated: String?
    /// Whether the file's raw bytes were searched independently of the parser (see ``RawVerifier``).
    package var rawSearched: Bool

    /// How many unparsed lines are listed per file.
    package static let maxListedLines = 100

    package init(
        file: String, bytes: Int64, sha256: String?, records: Int = 0, unparsed: Int = 0, unparsedLines: [Int] = [],
        truncated: String? = nil, rawSearched: Bool = false
    ) {
        self.file = file
        self.bytes = bytes
        self.sha256 = sha256
        self.records = records
        self.unparsed = unparsed
        self.unparsedLines = unparsedLines
        self.truncated = truncated
        self.rawSearched = rawSearched
    }

    /// Counts an unparsed record starting on `line`.
    package mutating func addUnparsed(line: Int) {
        unparsed += 1
        if unparsedLines.count < SourceCoverage.maxListedLines { unparsedLines.append(line) }
    }

    /// As JSON for manifests and receipts.
    package var json: JSONValue {
        .obj([
            "file": .string(file), "bytes": .number(String(bytes)), "sha256": .str(sha256), "records": .int(records),
            "unparsed_records": .int(unparsed), "unparsed_lines": .array(unparsedLines.map { .int($0) }),
            "truncated": .str(truncated), "raw_searched": .bool(rawSearched),
        ])
    }
}

/// Why a job cannot be stated complete for one source: a place where the subject's data may be
/// that the structured search did not account for. Holds identifier *types* and locations only.
package struct CoverageGap: Sendable, Equatable {
    /// The kinds of gap.
    package enum Kind: String, Sendable {
        /// A record that could not be parsed holds an identifier of the subject.
        case unparsedRecord = "unparsed_record"
        /// The raw bytes hold an identifier of the subject outside every record the rules matched.
        case unmatched
        /// The source is cut off.
        case truncated
        /// A configured column is not in the source.
        case missingColumn = "missing_column"
        /// The connector's paths match no file.
        case noSources = "no_sources"
        /// A path the globs match cannot be read as a source (a FIFO, device, socket, directory, a
        /// symlink without `follow_symlinks`, a file over `max_file_bytes`): it was not searched.
        case unreadable = "unreadable_source"
        /// The identifier is still in the source after erasure, outside every retained record.
        case remaining
    }

    package var kind: Kind
    package var connector: String
    package var file: String?
    package var line: Int?
    /// The identifier type concerned (never its value).
    package var type: String?
    /// What is wrong and what to do, for the operator.
    package var message: String

    package init(kind: Kind, connector: String, file: String?, line: Int? = nil, type: String? = nil, message: String) {
        self.kind = kind
        self.connector = connector
        self.file = file
        self.line = line
        self.type = type
        self.message = message
    }

    /// `file:line: message` (or the message alone).
    package var located: String {
        guard let file else { return "\(connector): \(message)" }
        return "\(connector): \(file)\(line.map { ":\($0)" } ?? ""): \(message)"
    }

    /// As JSON for manifests and receipts.
    package var json: JSONValue {
        .obj([
            "kind": .string(kind.rawValue), "connector": .string(connector), "file": .str(file),
            "line": line.map { .int($0) } ?? .null,
            "identifier_type": .str(type), "message": .string(message),
        ])
    }
}

extension ConnectorFindings {
    /// Adds gaps that concern every job (truncation, missing columns, no sources).
    mutating func addSourceGaps(_ gaps: [CoverageGap]) { self.gaps += gaps }
}
