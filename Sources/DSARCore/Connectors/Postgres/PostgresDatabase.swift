import CLibPQ
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What the server said when a statement failed: its SQLSTATE and, for constraint violations,
/// the constraint and table. Kept as the ``DSARError/cause`` of the error the connector reports.
package struct PostgresServerError: Error, Sendable, Equatable {
    /// The SQLSTATE (`55P03`, `23503`); empty when libpq failed before the server answered.
    package var sqlstate: String
    /// The primary message (without DETAIL, which may echo the row's values).
    package var message: String
    /// The constraint involved (`orders_customer_id_fkey`), if any.
    package var constraint: String?
    /// The table involved, if any.
    package var table: String?
}

/// One libpq connection (``LiveDatabase``): bound text parameters (`$n`, arrays as literals for
/// `= ANY($n)`), typed results, the catalog from `pg_catalog`, ``interrupt()`` via `PQcancel`.
///
/// Its calls block; the connector runs them on a thread of its own. ``interrupt()`` may be called
/// from any thread at any time.
package final class PostgresDatabase: LiveDatabase, @unchecked Sendable {
    /// `postgres://host:port/db` as connected (a socket directory as host).
    package let target: String
    /// The connector's name (the connector adds it and the target to messages; logs use it).
    package let name: String
    /// PostgreSQL binds at most 65535 parameters per statement.
    package var maxParameters: Int { 65535 }
    package var supportsArrayParameters: Bool { true }

    private var conn: OpaquePointer?
    private let lock = NSLock()
    private var cancel: OpaquePointer?
    private var busy = false
    private var closeRequested = false

    private init(name: String, conn: OpaquePointer) {
        self.name = name
        self.conn = conn
        let host = PQhost(conn).map { String(cString: $0) } ?? ""
        let port = PQport(conn).map { String(cString: $0) } ?? ""
        let db = PQdb(conn).map { String(cString: $0) } ?? ""
        self.target = "postgres://\(host)\(port.isEmpty ? "" : ":" + port)/\(db)"
        self.cancel = PQgetCancel(conn)
    }

    deinit {
        close()
        lock.lock()
        if let cancel { PQfreeCancel(cancel) }
        cancel = nil
        lock.unlock()
    }

    /// Connects with `conninfo` (keyword pairs, never a password), `password` as libpq's
    /// `password` keyword when given, `application_name=dsar`, within `timeoutSeconds`; then sets
    /// the session to ISO dates in UTC so timestamps read as RFC 3339.
    package static func connect(
        name: String, conninfo: [(String, String)], password: String?, timeoutSeconds: Double, logger: Logger
    ) throws -> PostgresDatabase {
        var pairs = conninfo.filter { $0.0 != "password" && $0.0 != "client_encoding" }
        if !pairs.contains(where: { $0.0 == "connect_timeout" }) {
            pairs.append(("connect_timeout", String(max(2, Int(timeoutSeconds.rounded(.up))))))
        }
        if !pairs.contains(where: { $0.0 == "application_name" }) { pairs.append(("application_name", "dsar")) }
        pairs.append(("client_encoding", "UTF8"))
        if let password { pairs.append(("password", password)) }
        let keys = pairs.map { strdup($0.0) }
        let values = pairs.map { strdup($0.1) }
        defer {
            for p in keys { free(p) }
            for p in values {
                if let p { memset(p, 0, strlen(p)) }  // the password
                free(p)
            }
        }
        var kp: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var vp: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        guard let conn = PQconnectStartParams(&kp, &vp, 0) else {
            throw DSARError(.io, "libpq is out of memory")
        }
        let deadline = Date().addingTimeInterval(max(timeoutSeconds, 0.1))
        var state = PGRES_POLLING_WRITING
        while PQstatus(conn) != CONNECTION_BAD {
            if state == PGRES_POLLING_OK { break }
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 {
                PQfinish(conn)
                throw DSARError(
                    .io,
                    "no connection within \(timeoutSeconds) s: the server does not answer"
                )
            }
            var fd = pollfd(
                fd: PQsocket(conn), events: Int16(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), revents: 0)
            if fd.fd >= 0 { _ = poll(&fd, 1, Int32(min(remaining, 0.2) * 1000) + 1) }
            state = PQconnectPoll(conn)
            if state == PGRES_POLLING_FAILED { break }
        }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = errorText(conn)
            PQfinish(conn)
            let denied =
                message.contains("authentication failed") || message.contains("no password supplied")
                || message.contains("permission denied")
            throw DSARError(
                denied ? .permissions : .io, message,
                cause: PostgresServerError(sqlstate: "", message: message))
        }
        let db = PostgresDatabase(name: name, conn: conn)
        try db.run(
            "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'iso_8601'; SET extra_float_digits = 3; SET bytea_output = 'hex'; SET standard_conforming_strings = on"
        )
        logger.debug("connected", metadata: ["connector": "\(name)", "target": "\(db.target)"])
        return db
    }

    static func errorText(_ conn: OpaquePointer?) -> String {
        guard let conn, let m = PQerrorMessage(conn) else { return "unknown libpq error" }
        return String(cString: m).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: "; ")
    }

    // MARK: SQL text

    package func quote(_ identifier: String) -> String {
        identifier.split(separator: ".", omittingEmptySubsequences: false)
            .map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ".")
    }

    package func placeholder(_ n: Int) -> String { "$\(n)" }

    package func containsCaseInsensitive(_ columnSQL: String, _ patternSQL: String) -> String {
        "\(columnSQL)::text ILIKE \(patternSQL) ESCAPE '\\'"
    }

    package func likePattern(_ needle: String) -> String {
        var out = "%"
        for c in needle.unicodeScalars {
            if c == "%" || c == "_" || c == "\\" { out += "\\" }
            out.unicodeScalars.append(c)
        }
        return out + "%"
    }

    // MARK: Statements

    @discardableResult
    package func query(_ sql: String, _ params: [LiveParam], row: ([LiveValue]) throws -> Void) throws -> [String] {
        let res = try exec(sql, params)
        defer { PQclear(res) }
        let nf = Int(PQnfields(res))
        let names = (0..<nf).map { String(cString: PQfname(res, Int32($0))) }
        let types = (0..<nf).map { UInt32(PQftype(res, Int32($0))) }
        var values = [LiveValue](repeating: .null, count: nf)
        for r in 0..<PQntuples(res) {
            for c in 0..<nf {
                if PQgetisnull(res, r, Int32(c)) != 0 {
                    values[c] = .null
                } else {
                    values[c] = PostgresValues.value(
                        PQgetvalue(res, r, Int32(c)), length: Int(PQgetlength(res, r, Int32(c))), type: types[c])
                }
            }
            try row(values)
        }
        return names
    }

    @discardableResult
    package func execute(_ sql: String, _ params: [LiveParam]) throws -> Int {
        let res = try exec(sql, params)
        defer { PQclear(res) }
        return Int(String(cString: PQcmdTuples(res))) ?? 0
    }

    package func begin(readOnly: Bool) throws { try run(readOnly ? "BEGIN READ ONLY" : "BEGIN") }

    /// Commits; a transaction the server already aborted is reported, never taken for a commit
    /// (the server answers COMMIT in a failed transaction with ROLLBACK).
    package func commit() throws {
        if try withConn({ PQtransactionStatus($0) }) == PQTRANS_INERROR {
            try? run("ROLLBACK")
            throw DSARError(
                .processing, "the transaction failed earlier and was rolled back; nothing was committed")
        }
        let res = try exec("COMMIT", [])
        defer { PQclear(res) }
        let status = String(cString: PQcmdStatus(res))
        guard status == "COMMIT" else {
            throw DSARError(
                .processing, "COMMIT answered \(status): nothing was committed")
        }
    }

    package func rollback() throws { try run("ROLLBACK") }

    package func setTimeouts(lockMilliseconds: Int?, statementMilliseconds: Int?) throws {
        let lock = lockMilliseconds.map { String(max(0, $0)) } ?? "DEFAULT"
        let statement = statementMilliseconds.map { String(max(0, $0)) } ?? "DEFAULT"
        try run("SET lock_timeout TO \(lock); SET statement_timeout TO \(statement)")
    }

    package func interrupt() {
        lock.lock()
        defer { lock.unlock() }
        guard let cancel else { return }
        var buf = [CChar](repeating: 0, count: 256)
        _ = PQcancel(cancel, &buf, Int32(buf.count))
    }

    /// Closes the connection; while a call runs on the connection's thread, it is interrupted and
    /// the connection closes when that call returns.
    package func close() {
        lock.lock()
        if busy {
            closeRequested = true
            lock.unlock()
            interrupt()
            return
        }
        let c = conn
        conn = nil
        lock.unlock()
        if let c { PQfinish(c) }
    }

    /// Runs `body` on the open connection (marked busy, so ``close()`` from another thread waits
    /// for it to return).
    private func withConn<T>(_ body: (OpaquePointer) throws -> T) throws -> T {
        lock.lock()
        guard let c = conn else {
            lock.unlock()
            throw closedError()
        }
        busy = true
        lock.unlock()
        defer {
            lock.lock()
            busy = false
            let finish = closeRequested
            if finish { conn = nil }
            lock.unlock()
            if finish { PQfinish(c) }
        }
        return try body(c)
    }

    // MARK: libpq

    /// Runs SQL without parameters (several statements allowed), checking the result.
    func run(_ sql: String) throws {
        try withConn { conn in
            guard let res = PQexec(conn, sql) else { throw failure(nil, conn) }
            defer { PQclear(res) }
            let s = PQresultStatus(res)
            guard s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK else { throw failure(res, conn) }
        }
    }

    /// Runs one statement with text parameters; returns its result (the caller clears it).
    func exec(_ sql: String, _ params: [LiveParam]) throws -> OpaquePointer {
        let texts: [UnsafeMutablePointer<CChar>?] = try params.map { p in
            try PostgresValues.text(of: p).flatMap { strdup($0) }
        }
        defer { for p in texts { free(p) } }
        var ptrs: [UnsafePointer<CChar>?] = texts.map { $0.map { UnsafePointer($0) } }
        // Arrays and integers are typed (text[], int8[], int8), so `int4_col = ANY($1)` compares as
        // int8 and a value beyond int4 finds nothing instead of failing the statement; text stays
        // untyped (the server takes the column's type).
        var types: [UInt32] = params.map { p in
            switch p {
            case .textArray: 1009
            case .integerArray: 1016
            case .integer: 20
            case .text, .null: 0
            }
        }
        return try withConn { conn in
            let res = ptrs.withUnsafeMutableBufferPointer { buf in
                types.withUnsafeMutableBufferPointer { t in
                    PQexecParams(conn, sql, Int32(params.count), t.baseAddress, buf.baseAddress, nil, nil, 0)
                }
            }
            guard let res else { throw failure(nil, conn) }
            let s = PQresultStatus(res)
            guard s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK else {
                defer { PQclear(res) }
                throw failure(res, conn)
            }
            return res
        }
    }

    private func closedError() -> DSARError {
        DSARError(.processing, "the connection to \(target) is closed")
    }

    /// The error of a failed statement: the server's primary message, SQLSTATE and constraint
    /// (not DETAIL, which may echo row values), or libpq's message when the connection broke.
    func failure(_ res: OpaquePointer?, _ conn: OpaquePointer) -> DSARError {
        func field(_ code: UInt8) -> String? {
            guard let res, let p = PQresultErrorField(res, Int32(code)) else { return nil }
            return String(cString: p)
        }
        guard let sqlstate = field(UInt8(ascii: "C")) else {
            let message = Self.errorText(conn)
            return DSARError(
                .io, message,
                cause: PostgresServerError(sqlstate: "", message: message))
        }
        let e = PostgresServerError(
            sqlstate: sqlstate, message: field(UInt8(ascii: "M")) ?? "error", constraint: field(UInt8(ascii: "n")),
            table: field(UInt8(ascii: "t")))
        var text =
            "\(e.message) (SQLSTATE \(sqlstate)\(Self.conditions[sqlstate].map { " " + $0 } ?? ""))"
        if let c = e.constraint { text += "; constraint \"\(c)\"" + (e.table.map { " on table \"\($0)\"" } ?? "") }
        return DSARError(Self.code(sqlstate), text, cause: e)
    }

    /// Transient failures (a lock, a conflict, the connection) are `.io` so the connector's
    /// `retries` apply; authentication and privileges are `.permissions`.
    static func code(_ sqlstate: String) -> DSARError.Code {
        if sqlstate.hasPrefix("08") || sqlstate.hasPrefix("57P")
            || ["55P03", "40001", "40P01", "53300"].contains(sqlstate)
        {
            return .io
        }
        if sqlstate.hasPrefix("28") || sqlstate == "42501" { return .permissions }
        return .processing
    }

    /// Names of the SQLSTATEs an operator meets most.
    static let conditions: [String: String] = [
        "55P03": "lock_not_available", "57014": "query_canceled", "23503": "foreign_key_violation",
        "23505": "unique_violation", "23502": "not_null_violation", "23514": "check_violation",
        "28P01": "invalid_password", "28000": "invalid_authorization_specification",
        "42501": "insufficient_privilege", "42P01": "undefined_table", "42703": "undefined_column",
        "42601": "syntax_error", "42883": "undefined_function", "40001": "serialization_failure",
        "40P01": "deadlock_detected", "25006": "read_only_sql_transaction", "25P02": "in_failed_sql_transaction",
        "22P02": "invalid_text_representation", "57P01": "admin_shutdown", "53300": "too_many_connections",
        "3D000": "invalid_catalog_name",
    ]
}
