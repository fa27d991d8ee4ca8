/// The SQL dialect a dump was written in; it decides quoting, escape and comment rules.
package enum SQLDialect: String, Sendable, CaseIterable {
    /// PostgreSQL `pg_dump` plain format (COPY blocks or `--inserts`).
    case postgres
    /// MySQL / MariaDB `mysqldump`.
    case mysql
    /// SQLite shell `.dump`.
    case sqlite
}

/// A decoded SQL value.
package enum SQLValue: Sendable, Equatable {
    /// SQL `NULL` (or `\N` in a COPY block).
    case null
    /// A numeric literal, exactly as written in the dump (e.g. `-3.50`, `1e+20`).
    case number(String)
    /// A character string, decoded (quotes and escapes resolved), as raw bytes (normally UTF-8).
    case string([UInt8])
    /// Binary data: `X'..'`, `0x..`, `_binary '..'`, PostgreSQL `bytea`, or a string in a blob-typed column.
    case blob([UInt8])
    /// `TRUE` / `FALSE` (or `t` / `f` in a COPY block of a `boolean` column).
    case bool(Bool)
    /// Any other expression, verbatim: `DEFAULT`, a function call, an array, an arithmetic expression.
    case raw(String)

    /// The decoded bytes of a `.string` or `.blob`; nil for the other cases.
    package var bytes: [UInt8]? {
        switch self {
        case .string(let b), .blob(let b): return b
        default: return nil
        }
    }

    /// The text of a `.string` (UTF-8, invalid sequences repaired), `.number` or `.raw`; nil otherwise.
    package var text: String? {
        switch self {
        case .string(let b): return String(decoding: b, as: UTF8.self)
        case .number(let s), .raw(let s): return s
        default: return nil
        }
    }
}

/// One row of table data found in a dump: a tuple of an `INSERT` or a data line of a `COPY` block.
package struct SQLRow: Sendable {
    /// Where a row came from.
    package enum Kind: Sendable {
        /// A data line of a PostgreSQL `COPY ... FROM stdin` block.
        case copy
        /// A tuple of an `INSERT` (or `REPLACE`) statement.
        case insert
    }

    /// Table name, unquoted, without schema prefix (`public.customers` gives `customers`).
    package var table: String
    /// The schema (or database) prefix of the table name, if the dump gave one.
    package var schema: String?
    /// Column names, from the COPY column list, the INSERT column list, or the table's CREATE TABLE; empty if unknown.
    package var columns: [String]
    /// The decoded values, one per field.
    package var values: [SQLValue]
    /// The byte range of each value's literal in the file (for COPY: each field, without the tab).
    package var valueRanges: [ByteRange]
    /// INSERT: the tuple `(…)` including the parentheses; COPY: the whole data line including its `\n`.
    package var rowRange: ByteRange
    /// INSERT: from `INSERT` through the terminating `;` (not the newline); COPY: same as `rowRange`.
    package var statementRange: ByteRange
    /// Index of this tuple within its INSERT statement (0 for COPY).
    package var tupleIndex: Int
    /// 1-based line number where the row starts.
    package var line: Int
    /// Whether the row came from a COPY block or an INSERT.
    package var kind: Kind

    /// Makes a row (mostly for tests and synthetic data; the reader builds its own).
    package init(
        table: String, schema: String?, columns: [String], values: [SQLValue], valueRanges: [ByteRange],
        rowRange: ByteRange, statementRange: ByteRange, tupleIndex: Int, line: Int, kind: Kind
    ) {
        self.table = table
        self.schema = schema
        self.columns = columns
        self.values = values
        self.valueRanges = valueRanges
        self.rowRange = rowRange
        self.statementRange = statementRange
        self.tupleIndex = tupleIndex
        self.line = line
        self.kind = kind
    }

    /// The value of the named column, if the column names are known and contain it.
    package subscript(column: String) -> SQLValue? {
        guard let i = columns.firstIndex(of: column), i < values.count else { return nil }
        return values[i]
    }
}

/// How a column's declared type affects decoding (COPY fields carry no type of their own).
enum SQLColumnType: Sendable, Equatable {
    case unknown, numeric, boolean, binary, other

    private static let numericNames: Set<String> = [
        "int", "integer", "smallint", "bigint", "tinyint", "mediumint", "int1", "int2", "int3", "int4", "int8",
        "serial", "serial2", "serial4", "serial8", "smallserial", "bigserial", "numeric", "decimal", "dec",
        "fixed", "real", "float", "float4", "float8", "double", "number", "unsigned", "signed",
    ]
    private static let binaryNames: Set<String> = [
        "bytea", "blob", "tinyblob", "mediumblob", "longblob", "binary", "varbinary",
    ]

    /// Classifies the first word of a declared column type (lower-cased), e.g. `numeric` of `numeric(10,2)`.
    init(declared word: String) {
        if word.isEmpty {
            self = .unknown
        } else if Self.numericNames.contains(word) {
            self = .numeric
        } else if Self.binaryNames.contains(word) {
            self = .binary
        } else if word == "bool" || word == "boolean" {
            self = .boolean
        } else {
            self = .other
        }
    }
}

/// What the reader knows about a table: its name and columns (from CREATE TABLE, or else a COPY/INSERT list).
struct SQLTableInfo: Sendable {
    var schema: String?
    var name: String
    var columns: [String]
    var types: [SQLColumnType]

    /// The declared type of a column, by name.
    func type(of column: String) -> SQLColumnType {
        guard let i = columns.firstIndex(of: column), i < types.count else { return .unknown }
        return types[i]
    }
}
