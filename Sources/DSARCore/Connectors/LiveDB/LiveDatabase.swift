import Foundation
import Logging

/// One value of a live database row, typed as the engine reports it.
///
/// Findings write them as JSON: integers and decimals as numbers, NULL as null, booleans as
/// booleans, bytes (bytea, BLOB) as base64 strings, timestamps as RFC 3339 strings, JSON columns as
/// JSON. For matching, each value is compared as its text (``matchBytes``).
package enum LiveValue: Sendable, Equatable {
    case null
    case integer(Int64)
    /// numeric, decimal, float, real, double: the engine's exact text (`12.50`, `1e+30`).
    case decimal(String)
    case bool(Bool)
    case text(String)
    case bytes([UInt8])
    /// date, time, timestamp(tz), datetime: RFC 3339 text (`2026-11-28T09:30:00Z`, `2026-11-28`).
    case timestamp(String)
    /// json, jsonb: the JSON text as the engine returns it.
    case json(String)
}

/// What kind of values a column holds (from the catalog), which decides how a value is bound to
/// compare with it and what a redacted value becomes (the placeholder for text, NULL otherwise).
package enum LiveColumnKind: String, Sendable, Equatable {
    case text, integer, decimal, bool, bytes, timestamp, json, other
}

/// One column of a table, as the catalog describes it.
package struct LiveColumn: Sendable, Equatable {
    package var name: String
    package var kind: LiveColumnKind
    package var nullable: Bool
    /// The engine's type name (`character varying`, `bigint`, `varchar(255)`, `TEXT`).
    package var typeName: String

    package init(name: String, kind: LiveColumnKind, nullable: Bool, typeName: String) {
        self.name = name
        self.kind = kind
        self.nullable = nullable
        self.typeName = typeName
    }
}

/// A foreign key between two tables (names as configured: `public.orders`, `orders`).
package struct LiveForeignKey: Sendable, Equatable {
    package var constraint: String
    /// The referencing table (its rows must go before the parent's).
    package var child: String
    package var parent: String

    package init(constraint: String, child: String, parent: String) {
        self.constraint = constraint
        self.child = child
        self.parent = parent
    }
}

/// What the connecting role may do to a table.
package struct LivePrivileges: OptionSet, Sendable {
    package let rawValue: Int
    package init(rawValue: Int) { self.rawValue = rawValue }
    package static let select = LivePrivileges(rawValue: 1)
    package static let update = LivePrivileges(rawValue: 2)
    package static let delete = LivePrivileges(rawValue: 4)
}

/// A bound parameter. Values are always bound, never spliced into SQL text.
package enum LiveParam: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case null
    /// PostgreSQL only (``LiveDatabase/supportsArrayParameters``): one array parameter for `= ANY($n)`.
    case textArray([String])
    case integerArray([Int64])
}

/// One open connection to a live database: the engine-specific part of the `postgres`, `mysql`
/// and `sqlite` kinds. The shared search and erasure (``LiveDBConnector``) build their SQL through
/// it and never splice a value into SQL text.
///
/// A connection is used by one task at a time; its calls block (the connector runs them on a
/// thread of its own) except ``interrupt()``.
package protocol LiveDatabase: AnyObject {
    /// Where it is connected, for receipts and the journal: engine, host or socket, port and
    /// database (`postgres://db.internal:5432/shop`, `sqlite:/var/lib/app/app.db`); never a password.
    var target: String { get }
    /// The most parameters one statement may bind (chunk `IN (…)` lists below it).
    var maxParameters: Int { get }
    /// Whether `= ANY($n)` with one array parameter works (PostgreSQL); else `IN (?, …)` lists.
    var supportsArrayParameters: Bool { get }

    /// A table or column name quoted for this engine (`"a""b"`, `` `a``b` ``); a dotted table
    /// name (`public.orders`) is quoted part by part.
    func quote(_ identifier: String) -> String
    /// The placeholder of the `n`-th parameter (1-based) of a statement: `$n` or `?`.
    func placeholder(_ n: Int) -> String
    /// SQL for "`columnSQL` contains `patternSQL` (a placeholder) case-insensitively" for the text
    /// prefilter (`ILIKE`, `LIKE`, `instr(lower(…), …)`); patterns are bound with ``likePattern(_:)``.
    func containsCaseInsensitive(_ columnSQL: String, _ patternSQL: String) -> String
    /// The value to bind for the prefilter of `needle` (`%needle%` with `%`, `_` and `\` escaped, or
    /// the lower-cased needle for `instr`).
    func likePattern(_ needle: String) -> String

    /// Runs a query; `row` gets each row's values in column order. Returns the column names.
    @discardableResult
    func query(_ sql: String, _ params: [LiveParam], row: ([LiveValue]) throws -> Void) throws -> [String]
    /// Runs a statement; returns the rows it changed.
    @discardableResult
    func execute(_ sql: String, _ params: [LiveParam]) throws -> Int

    /// Starts a transaction (`readOnly` for searches where the engine supports it).
    func begin(readOnly: Bool) throws
    func commit() throws
    func rollback() throws
    /// Sets how long a statement may wait for a lock and run, in milliseconds (nil: the server's
    /// default), for this connection.
    func setTimeouts(lockMilliseconds: Int?, statementMilliseconds: Int?) throws

    /// The table's columns, or nil when there is no such table.
    func columns(of table: String) throws -> [LiveColumn]?
    /// The table's primary key columns (empty: none; rows are then addressed by all their values).
    func primaryKey(of table: String) throws -> [String]
    /// The foreign keys between any two of `tables`.
    func foreignKeys(among tables: [String]) throws -> [LiveForeignKey]
    /// What the connecting role may do to the table.
    func privileges(on table: String) throws -> LivePrivileges
    /// Why the connecting role may not see every row of the table (row-level security that
    /// applies to it), or nil when it sees them all. A search that cannot see every row cannot say
    /// "0 found" or "0 remaining". Default: nil (engines without row filtering).
    func rowFilter(on table: String) throws -> String?

    /// Aborts what the connection runs now (PQcancel, mariadb_cancel, sqlite3_interrupt); may be
    /// called from another thread, also after the connection was closed.
    func interrupt()
    /// Closes the connection (an open transaction is rolled back by the server).
    func close()
    /// What erasure appends to its SELECT to lock the rows it will change (`" FOR UPDATE"`, the
    /// default; `""` where a transaction locks the whole database, as SQLite's `BEGIN IMMEDIATE`).
    var rowLockClause: String { get }
}

extension LiveDatabase {
    /// `SELECT … FOR UPDATE` (PostgreSQL, MySQL/MariaDB).
    package var rowLockClause: String { " FOR UPDATE" }
}

/// The settings of a live-database kind: the shared part plus how to connect.
package protocol LiveDriverSettings: ConnectorSettings {
    /// `tables:`, `order:`, timeouts and `password_file:` (``LiveDBSettings``).
    var live: LiveDBSettings { get }
    /// Where the connector connects (as ``LiveDatabase/target``), known before connecting.
    var target: String { get }
    /// Opens one connection. `password` comes from `password_file:` (nil: the library's own files
    /// and environment apply: `.pgpass`, `PGPASSFILE`, `option_file`, `PGPASSWORD`, `MYSQL_PWD`).
    /// `timeoutSeconds` bounds connecting (an unreachable server fails with the library's message).
    func connect(password: String?, timeoutSeconds: Double, logger: Logger) throws -> any LiveDatabase
    /// Opens one connection for searching only (`readOnly`) or for erasure. Default: ``connect(password:timeoutSeconds:logger:)``
    /// (engines whose read-only transactions suffice); SQLite opens the file read-only.
    func connect(password: String?, timeoutSeconds: Double, readOnly: Bool, logger: Logger) throws -> any LiveDatabase
}

extension LiveDriverSettings {
    /// The same connection either way (a read-only transaction makes the search read-only).
    package func connect(
        password: String?, timeoutSeconds: Double, readOnly: Bool, logger: Logger
    ) throws
        -> any LiveDatabase
    {
        try connect(password: password, timeoutSeconds: timeoutSeconds, logger: logger)
    }
}

extension LiveDatabase {
    package func rowFilter(on table: String) throws -> String? { nil }
}
