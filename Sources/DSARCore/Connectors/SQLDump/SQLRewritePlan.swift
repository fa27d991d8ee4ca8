/// What to do to one row found by ``SQLDumpReader``.
package enum SQLRowEdit: Sendable, Equatable {
    /// Remove the row: a COPY data line is dropped; an INSERT tuple is cut out of its statement
    /// (the whole statement goes when it has no tuple left).
    case delete
    /// Replace the values at these indices (into `SQLRow.values` / `valueRanges`) with `placeholder`
    /// where the original is a string, and with NULL where it is anything else (number, bool, blob, raw).
    case redact(columns: [Int], placeholder: String)
}

/// The edits to apply to one dump, keyed by the start offset of each row's `rowRange`.
///
/// Several edits of the same row merge: `delete` wins over any redaction; redactions of different
/// columns add up (for a column redacted twice, the first placeholder given is kept).
package struct SQLRewritePlan: Sendable {
    /// One planned row.
    struct Entry: Sendable, Equatable {
        /// `rowRange.end` of the row, to check that the plan was made from the same file.
        var rowEnd: Int64
        var table: String
        var line: Int
        var delete: Bool
        /// Column index → placeholder.
        var redact: [Int: String]
    }

    private(set) var entries: [Int64: Entry] = [:]

    /// An empty plan (rewriting with it copies the dump unchanged).
    package init() {}

    /// Adds an edit of `row` (a row the reader found in the same file that will be rewritten).
    package mutating func add(_ row: SQLRow, _ edit: SQLRowEdit) {
        let key = row.rowRange.start
        var e =
            entries[key]
            ?? Entry(rowEnd: row.rowRange.end, table: row.table, line: row.line, delete: false, redact: [:])
        switch edit {
        case .delete:
            e.delete = true
            e.redact = [:]
        case .redact(let columns, let placeholder):
            if e.delete { break }
            for c in columns where e.redact[c] == nil { e.redact[c] = placeholder }
            if e.redact.isEmpty && entries[key] == nil { return }  // nothing to do
        }
        entries[key] = e
    }

    /// True when the plan has no edits.
    package var isEmpty: Bool { entries.isEmpty }

    /// The number of rows with an edit.
    package var count: Int { entries.count }
}
