import CMariaDB
import Foundation

/// One prepared statement of a ``MySQLDatabase``: its `?` parameters bound from ``LiveParam``s,
/// its result columns fetched as text by the library and typed by their field type.
final class MySQLStatement {
    private let stmt: UnsafeMutablePointer<MYSQL_STMT>
    private let connection: UnsafeMutablePointer<MYSQL>
    private let target: String
    private let sql: String
    private var params: UnsafeMutablePointer<MYSQL_BIND>?
    private var paramBuffers: [UnsafeMutableRawPointer] = []
    /// The rows the statement changed (found, for an UPDATE: `CLIENT_FOUND_ROWS`).
    private(set) var affectedRows = 0

    private init(
        _ stmt: UnsafeMutablePointer<MYSQL_STMT>, _ connection: UnsafeMutablePointer<MYSQL>, _ sql: String,
        target: String
    ) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
        self.target = target
    }

    /// Prepares `sql` on `h` and binds `values` to its `?` placeholders, in order.
    convenience init(_ h: UnsafeMutablePointer<MYSQL>, _ sql: String, _ values: [LiveParam], target: String) throws {
        guard let st = mysql_stmt_init(h) else { throw MySQLDatabase.error(h, target, "cannot make a statement") }
        self.init(st, h, sql, target: target)
        if mysql_stmt_prepare(st, sql, UInt(sql.utf8.count)) != 0 {
            let e = error("cannot prepare the statement")
            close()
            throw e
        }
        do { try bind(values) } catch {
            close()
            throw error
        }
    }

    /// The statement's error (`mysql_stmt_error`, `mysql_stmt_errno`, `mysql_stmt_sqlstate`), or
    /// the connection's when the statement has none (an error while rows stream in).
    private func error(_ what: String) -> DSARError {
        let text = sql.count > 300 ? String(sql.prefix(300)) + "…" : sql
        if mysql_stmt_errno(stmt) == 0 {
            return MySQLDatabase.error(connection, target, "\(what) `\(text)`")
        }
        return MySQLDatabase.describe(
            target, "\(what) `\(text)`", message: String(cString: mysql_stmt_error(stmt)),
            errno: mysql_stmt_errno(stmt), sqlstate: String(cString: mysql_stmt_sqlstate(stmt)))
    }

    private func bind(_ values: [LiveParam]) throws {
        let n = Int(mysql_stmt_param_count(stmt))
        guard n == values.count else {
            throw DSARError(
                .processing, "the statement has \(n) placeholders but \(values.count) values were given")
        }
        guard n > 0 else { return }
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: n)
        binds.initialize(repeating: MYSQL_BIND(), count: n)
        params = binds
        for (i, v) in values.enumerated() {
            switch v {
            case .null:
                binds[i].buffer_type = MYSQL_TYPE_NULL
            case .integer(let x):
                let p = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                p.storeBytes(of: x, as: Int64.self)
                paramBuffers.append(p)
                binds[i].buffer_type = MYSQL_TYPE_LONGLONG
                binds[i].buffer = p
            case .text(let s):
                var s = s
                let p = s.withUTF8 { u -> UnsafeMutableRawPointer in
                    let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, u.count), alignment: 1)
                    if let base = u.baseAddress { p.copyMemory(from: base, byteCount: u.count) }
                    binds[i].buffer_length = UInt(u.count)
                    return p
                }
                paramBuffers.append(p)
                binds[i].buffer_type = MYSQL_TYPE_STRING
                binds[i].buffer = p
            case .textArray, .integerArray:
                throw DSARError(
                    .processing, "MySQL has no array parameters (use IN (?, …) lists; parameter \(i + 1))")
            }
        }
        if mysql_stmt_bind_param(stmt, binds) != 0 { throw error("cannot bind the parameters of") }
    }

    /// Executes the statement.
    func execute() throws {
        if mysql_stmt_execute(stmt) != 0 { throw error("failed:") }
        let n = mysql_stmt_affected_rows(stmt)
        affectedRows = n == UInt64.max ? 0 : Int(clamping: n)
    }

    /// Fetches every row of the result (none for a statement without one); returns the column names.
    @discardableResult
    func fetchAll(_ row: ([LiveValue]) throws -> Void) throws -> [String] {
        guard let meta = mysql_stmt_result_metadata(stmt) else { return [] }
        defer { mysql_free_result(meta) }
        let n = Int(mysql_num_fields(meta))
        guard n > 0, let fields = mysql_fetch_fields(meta) else { return [] }
        let names = (0..<n).map { String(cString: fields[$0].name) }
        let kinds = (0..<n).map { MySQLValueKind(fields[$0]) }

        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: n)
        binds.initialize(repeating: MYSQL_BIND(), count: n)
        let lengths = UnsafeMutablePointer<UInt>.allocate(capacity: n)
        lengths.initialize(repeating: 0, count: n)
        let nulls = UnsafeMutablePointer<my_bool>.allocate(capacity: n)
        nulls.initialize(repeating: 0, count: n)
        let truncated = UnsafeMutablePointer<my_bool>.allocate(capacity: n)
        truncated.initialize(repeating: 0, count: n)
        var capacity = [Int](repeating: 256, count: n)
        var buffers = (0..<n).map { _ in UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 8) }
        defer {
            for b in buffers { b.deallocate() }
            binds.deallocate()
            lengths.deallocate()
            nulls.deallocate()
            truncated.deallocate()
        }
        for i in 0..<n {
            binds[i].buffer_type = MYSQL_TYPE_STRING
            binds[i].buffer = buffers[i]
            binds[i].buffer_length = UInt(capacity[i])
            binds[i].length = lengths + i
            binds[i].is_null = nulls + i
            binds[i].error = truncated + i
        }
        if mysql_stmt_bind_result(stmt, binds) != 0 { throw error("cannot bind the result of") }
        var values: [LiveValue] = []
        values.reserveCapacity(n)
        while true {
            let rc = mysql_stmt_fetch(stmt)
            if rc == MYSQL_NO_DATA { break }
            if rc == 1 { throw error("reading the result failed:") }
            values.removeAll(keepingCapacity: true)
            var grew = false
            for i in 0..<n {
                if nulls[i] != 0 {
                    values.append(.null)
                    continue
                }
                let len = Int(lengths[i])
                if len > capacity[i] {
                    // A long value: a buffer of its size, and the column fetched again into it.
                    buffers[i].deallocate()
                    buffers[i] = UnsafeMutableRawPointer.allocate(byteCount: len, alignment: 8)
                    capacity[i] = len
                    binds[i].buffer = buffers[i]
                    binds[i].buffer_length = UInt(len)
                    grew = true
                    if mysql_stmt_fetch_column(stmt, binds + i, UInt32(i), 0) != 0 {
                        throw error("reading a long value (column \(names[i])) failed:")
                    }
                }
                let bytes = UnsafeRawBufferPointer(start: buffers[i], count: len)
                values.append(kinds[i].value(bytes))
            }
            if grew, mysql_stmt_bind_result(stmt, binds) != 0 { throw error("cannot bind the result of") }
            try row(values)
        }
        return names
    }

    /// Frees the statement and its parameter buffers.
    func close() {
        mysql_stmt_close(stmt)
        for p in paramBuffers { p.deallocate() }
        paramBuffers = []
        params?.deallocate()
        params = nil
    }
}

/// How a result column's text (as Connector/C converts it) becomes a ``LiveValue``.
enum MySQLValueKind: Equatable {
    case integer, decimal, bit, date, datetime, timestamp, json, bytes, text, null

    /// The kind of `field`: by its type, and its character set for strings (63: binary).
    init(_ field: MYSQL_FIELD) {
        switch field.type {
        case MYSQL_TYPE_TINY, MYSQL_TYPE_SHORT, MYSQL_TYPE_LONG, MYSQL_TYPE_INT24, MYSQL_TYPE_LONGLONG,
            MYSQL_TYPE_YEAR:
            self = .integer
        case MYSQL_TYPE_DECIMAL, MYSQL_TYPE_NEWDECIMAL, MYSQL_TYPE_FLOAT, MYSQL_TYPE_DOUBLE: self = .decimal
        case MYSQL_TYPE_BIT: self = .bit
        case MYSQL_TYPE_DATE, MYSQL_TYPE_NEWDATE: self = .date
        case MYSQL_TYPE_DATETIME: self = .datetime
        case MYSQL_TYPE_TIMESTAMP: self = .timestamp
        case MYSQL_TYPE_JSON: self = .json
        case MYSQL_TYPE_NULL: self = .null
        case MYSQL_TYPE_TINY_BLOB, MYSQL_TYPE_MEDIUM_BLOB, MYSQL_TYPE_LONG_BLOB, MYSQL_TYPE_BLOB,
            MYSQL_TYPE_VAR_STRING, MYSQL_TYPE_STRING, MYSQL_TYPE_VARCHAR, MYSQL_TYPE_GEOMETRY:
            if field.charsetnr == 63 {
                self = .bytes
            } else {
                self = Self.formatName(field) == "json" ? .json : .text
            }
        default: self = .text
        }
    }

    /// MariaDB's extended metadata format name (`json` for a JSON column, which is LONGTEXT there).
    private static func formatName(_ field: MYSQL_FIELD) -> String? {
        var f = field
        var attr = MARIADB_CONST_STRING()
        guard mariadb_field_attr(&attr, &f, MARIADB_FIELD_ATTR_FORMAT_NAME) == 0, let p = attr.str, attr.length > 0
        else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: p, count: attr.length), as: UTF8.self).lowercased()
    }

    /// The value of a column's bytes.
    func value(_ b: UnsafeRawBufferPointer) -> LiveValue {
        switch self {
        case .null: return .null
        case .bytes: return .bytes(Array(b))
        case .bit:
            guard b.count <= 8 else { return .bytes(Array(b)) }
            var x: UInt64 = 0
            for byte in b { x = x << 8 | UInt64(byte) }
            return x <= UInt64(Int64.max) ? .integer(Int64(x)) : .decimal(String(x))
        default: break
        }
        let s = String(decoding: b, as: UTF8.self)
        switch self {
        case .integer: return Int64(s).map(LiveValue.integer) ?? .decimal(s)
        case .decimal: return .decimal(s)
        case .json: return .json(s)
        case .date: return s.hasPrefix("0000") ? .text(s) : .timestamp(s)
        case .datetime, .timestamp:
            if s.hasPrefix("0000") { return .text(s) }
            let t = s.replacingOccurrences(of: " ", with: "T")
            return .timestamp(self == .timestamp ? t + "Z" : t)
        default: return .text(s)
        }
    }
}
