import CSQLite
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One connection to an SQLite file (``LiveDatabase``): read-only for searches
/// (`SQLITE_OPEN_READONLY`), read-write with `PRAGMA foreign_keys=ON` for erasure, whose
/// transaction takes the write lock up front (`BEGIN IMMEDIATE`); another connection's lock is
/// waited for up to `busy_timeout`, then the statement fails (rolled back, job PARTIAL).
package final class SQLiteDatabase: LiveDatabase {
    package let path: String
    let readOnly: Bool
    private var db: OpaquePointer?
    private let lock = NSLock()
    /// When the running statement must stop (`statement_timeout`), checked by the progress handler.
    private var deadline: Double = .infinity
    private var statementMilliseconds: Int?
    private let busyMilliseconds: Int

    static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    /// Opens `path` (which must exist).
    package init(path: String, readOnly: Bool, busyTimeoutMilliseconds: Int) throws {
        self.path = path
        self.readOnly = readOnly
        self.busyMilliseconds = busyTimeoutMilliseconds
        guard FileSystem.exists(path) else {
            throw DSARError(.notFound, "the SQLite database \(path) does not exist", path: path)
        }
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            sqlite3_close_v2(handle)
            throw DSARError(.io, "cannot open the SQLite database \(path): \(message)", path: path)
        }
        db = handle
        sqlite3_busy_timeout(handle, Int32(clamping: busyTimeoutMilliseconds))
        sqlite3_progress_handler(
            handle, 1000,
            { ctx in
                guard let ctx else { return 0 }
                let me = Unmanaged<SQLiteDatabase>.fromOpaque(ctx).takeUnretainedValue()
                return ProcessInfo.processInfo.systemUptime > me.deadline ? 1 : 0
            }, Unmanaged.passUnretained(self).toOpaque())
        if !readOnly {
            try execute("PRAGMA foreign_keys=ON", [])
            // Deleted and overwritten content is zeroed in the file, not left in free pages.
            try execute("PRAGMA secure_delete=ON", [])
        }
    }

    deinit { close() }

    package var target: String { "sqlite:\(path)" }
    package var maxParameters: Int {
        guard let db else { return 999 }
        return Int(sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
    }
    package var supportsArrayParameters: Bool { false }
    /// `BEGIN IMMEDIATE` locks the database for the whole erasure.
    package var rowLockClause: String { "" }

    package func quote(_ identifier: String) -> String {
        identifier.split(separator: ".", omittingEmptySubsequences: false)
            .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ".")
    }

    package func placeholder(_ n: Int) -> String { "?\(n)" }

    /// SQLite's LIKE ignores ASCII case.
    package func containsCaseInsensitive(_ columnSQL: String, _ patternSQL: String) -> String {
        "\(columnSQL) LIKE \(patternSQL) ESCAPE '\\'"
    }

    package func likePattern(_ needle: String) -> String {
        var s = "%"
        for c in needle {
            if c == "%" || c == "_" || c == "\\" { s.append("\\") }
            s.append(c)
        }
        return s + "%"
    }

    func error(_ what: String, _ rc: Int32) -> DSARError {
        let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        let busy = rc & 0xFF == SQLITE_BUSY || rc & 0xFF == SQLITE_LOCKED
        let code: DSARError.Code = busy ? .io : .processing
        let extra =
            busy
            ? " (another connection holds a lock on \(path); waited busy_timeout \(busyMilliseconds) ms)"
            : rc == SQLITE_INTERRUPT ? " (interrupted: statement_timeout or the connector's timeout)" : ""
        return DSARError(code, "\(what): \(message)\(extra)", path: path)
    }

    private func prepare(_ sql: String, _ params: [LiveParam]) throws -> OpaquePointer {
        guard let db else { throw DSARError(.processing, "the SQLite database \(path) is closed", path: path) }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error("cannot prepare a statement on \(path)", rc) }
        for (k, p) in params.enumerated() {
            let i = Int32(k + 1)
            let rc: Int32
            switch p {
            case .null: rc = sqlite3_bind_null(stmt, i)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, i, v)
            case .text(let s): rc = sqlite3_bind_text(stmt, i, s, -1, SQLiteDatabase.transient)
            case .textArray, .integerArray:
                sqlite3_finalize(stmt)
                throw DSARError(.processing, "SQLite has no array parameters")
            }
            if rc != SQLITE_OK {
                sqlite3_finalize(stmt)
                throw error("cannot bind parameter \(i)", rc)
            }
        }
        if let ms = statementMilliseconds {
            deadline = ProcessInfo.processInfo.systemUptime + Double(ms) / 1000
        } else {
            deadline = .infinity
        }
        return stmt
    }

    @discardableResult
    package func query(_ sql: String, _ params: [LiveParam], row: ([LiveValue]) throws -> Void) throws -> [String] {
        let stmt = try prepare(sql, params)
        defer { sqlite3_finalize(stmt) }
        let n = sqlite3_column_count(stmt)
        let names = (0..<n).map { String(cString: sqlite3_column_name(stmt, $0)) }
        let declared = (0..<n).map { sqlite3_column_decltype(stmt, $0).map { String(cString: $0) } ?? "" }
        let kinds = declared.map(SQLiteDatabase.kind)
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error("a query on \(path) failed", rc) }
            var values: [LiveValue] = []
            values.reserveCapacity(Int(n))
            for i in 0..<n { values.append(value(stmt, i, kinds[Int(i)])) }
            try row(values)
        }
        return names
    }

    private func value(_ stmt: OpaquePointer, _ i: Int32, _ kind: LiveColumnKind) -> LiveValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_NULL: return .null
        case SQLITE_INTEGER:
            let v = sqlite3_column_int64(stmt, i)
            return kind == .bool && (v == 0 || v == 1) ? .bool(v == 1) : .integer(v)
        case SQLITE_FLOAT: return .decimal(text(stmt, i))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(stmt, i))
            guard count > 0, let p = sqlite3_column_blob(stmt, i) else { return .bytes([]) }
            return .bytes(Array(UnsafeRawBufferPointer(start: p, count: count)))
        default:
            let s = text(stmt, i)
            switch kind {
            case .timestamp: return .timestamp(SQLiteDatabase.rfc3339(s))
            case .json: return .json(s)
            default: return .text(s)
            }
        }
    }

    private func text(_ stmt: OpaquePointer, _ i: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, i) else { return "" }
        let count = Int(sqlite3_column_bytes(stmt, i))
        return String(decoding: UnsafeRawBufferPointer(start: p, count: count), as: UTF8.self)
    }

    /// `2026-11-28 09:30:00` (SQLite's UTC text) as RFC 3339 (`2026-11-28T09:30:00Z`); other text as it is.
    static func rfc3339(_ s: String) -> String {
        let b = Array(s.utf8)
        guard b.count >= 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x20 || b[10] == 0x54, b[13] == 0x3A else {
            return s
        }
        var out = b
        out[10] = 0x54
        let hasZone = b.count > 19 && (b.last == 0x5A || b[19...].contains(0x2B) || b[19...].contains(0x2D))
        return String(decoding: out, as: UTF8.self) + (hasZone ? "" : "Z")
    }

    /// The kind of a declared column type (SQLite's affinity rules, with dates, booleans and JSON).
    static func kind(_ declared: String) -> LiveColumnKind {
        let t = declared.uppercased()
        if t.contains("BOOL") { return .bool }
        if t.contains("DATE") || t.contains("TIME") { return .timestamp }
        if t.contains("JSON") { return .json }
        if t.contains("INT") { return .integer }
        if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") { return .text }
        if t.contains("BLOB") { return .bytes }
        if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") || t.contains("NUMERIC")
            || t.contains("DECIMAL")
        {
            return .decimal
        }
        return .other
    }

    @discardableResult
    package func execute(_ sql: String, _ params: [LiveParam]) throws -> Int {
        let stmt = try prepare(sql, params)
        defer { sqlite3_finalize(stmt) }
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_DONE { break }
            if rc != SQLITE_ROW { throw error("a statement on \(path) failed", rc) }
        }
        return Int(sqlite3_changes(db))
    }

    package func begin(readOnly: Bool) throws {
        try execute(readOnly ? "BEGIN" : "BEGIN IMMEDIATE", [])
    }
    package func commit() throws { try execute("COMMIT", []) }
    package func rollback() throws {
        guard let db, sqlite3_get_autocommit(db) == 0 else { return }
        try execute("ROLLBACK", [])
    }

    /// The lock wait is `busy_timeout:` (set when opening); `statement_timeout` stops a statement
    /// through the progress handler.
    package func setTimeouts(lockMilliseconds: Int?, statementMilliseconds: Int?) throws {
        self.statementMilliseconds = statementMilliseconds
    }

    package func columns(of table: String) throws -> [LiveColumn]? {
        var out: [LiveColumn] = []
        try query("SELECT name, type, \"notnull\" FROM pragma_table_info(?1)", [.text(table)]) { r in
            guard case .text(let name) = r[0] else { return }
            let type: String
            if case .text(let t) = r[1] { type = t } else { type = "" }
            var notNull = false
            if case .integer(let n) = r[2] { notNull = n != 0 }
            out.append(LiveColumn(name: name, kind: SQLiteDatabase.kind(type), nullable: !notNull, typeName: type))
        }
        return out.isEmpty ? nil : out
    }

    package func primaryKey(of table: String) throws -> [String] {
        var keys: [(Int64, String)] = []
        try query("SELECT name, pk FROM pragma_table_info(?1) WHERE pk > 0", [.text(table)]) { r in
            if case .text(let name) = r[0], case .integer(let k) = r[1] { keys.append((k, name)) }
        }
        return keys.sorted { $0.0 < $1.0 }.map(\.1)
    }

    package func foreignKeys(among tables: [String]) throws -> [LiveForeignKey] {
        var out: [LiveForeignKey] = []
        for child in tables {
            var byID: [Int64: (parent: String, from: [String])] = [:]
            try query("SELECT id, \"table\", \"from\" FROM pragma_foreign_key_list(?1)", [.text(child)]) { r in
                guard case .integer(let id) = r[0], case .text(let parent) = r[1] else { return }
                var from = ""
                if case .text(let f) = r[2] { from = f }
                byID[id, default: (parent, [])].from.append(from)
            }
            for id in byID.keys.sorted() {
                let fk = byID[id]!
                guard let parent = tables.first(where: { $0.lowercased() == fk.parent.lowercased() }) else { continue }
                out.append(
                    LiveForeignKey(
                        constraint: "\(child)(\(fk.from.joined(separator: ", "))) REFERENCES \(parent)", child: child,
                        parent: parent))
            }
        }
        return out
    }

    /// SELECT when the file is readable; UPDATE and DELETE when it (and its directory, for the
    /// journal) is writable.
    package func privileges(on table: String) throws -> LivePrivileges {
        var p: LivePrivileges = []
        if access(path, R_OK) == 0 { p.insert(.select) }
        let dir = (path as NSString).deletingLastPathComponent
        if access(path, W_OK) == 0 && access(dir.isEmpty ? "." : dir, W_OK) == 0 { p.formUnion([.update, .delete]) }
        return p
    }

    package func interrupt() {
        lock.lock()
        defer { lock.unlock() }
        if let db { sqlite3_interrupt(db) }
    }

    package func close() {
        lock.lock()
        defer { lock.unlock() }
        if let db { sqlite3_close_v2(db) }
        db = nil
    }
}
