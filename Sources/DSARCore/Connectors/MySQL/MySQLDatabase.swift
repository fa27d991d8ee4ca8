import CMariaDB
import Foundation
import Logging

/// One connection to a MySQL or MariaDB server through MariaDB Connector/C: prepared statements
/// with every value bound (`?`), results typed by their field type, the catalog from
/// `information_schema`.
///
/// Calls block; ``interrupt()`` may be called from any thread (`mariadb_cancel`: the connection's
/// socket is shut down, so what runs fails at once and the server rolls back an open transaction).
package final class MySQLDatabase: LiveDatabase, @unchecked Sendable {
    package let target: String
    package var maxParameters: Int { 1000 }
    package var supportsArrayParameters: Bool { false }
    /// Whether the server is MariaDB (`max_statement_time`) rather than MySQL (`max_execution_time`).
    package let isMariaDB: Bool
    /// The server's version string (`11.8.3-MariaDB-0+deb13u1`).
    package let serverVersion: String

    /// The handle; nil once closed. Guarded by `lock` against ``interrupt()`` from other threads.
    private var handle: UnsafeMutablePointer<MYSQL>?
    private let lock = NSLock()
    /// Calls running now (``using(_:)``), and whether ``close()`` waits for them to end.
    private var busy = 0
    private var closing = false

    private init(handle: UnsafeMutablePointer<MYSQL>, target: String) {
        self.handle = handle
        self.target = target
        self.serverVersion = String(cString: mysql_get_server_info(handle))
        self.isMariaDB = serverVersion.localizedCaseInsensitiveContains("mariadb")
    }

    deinit { close() }

    /// Connects as `settings` say; `password` nil leaves it to the option file and `MYSQL_PWD`.
    /// Connecting, and every single read or write on the connection, is bounded by `timeoutSeconds`.
    package static func connect(
        _ s: MySQLSettings, password: String?, timeoutSeconds: Double, logger: Logger
    ) throws -> MySQLDatabase {
        guard let h = mysql_init(nil) else {
            throw DSARError(.processing, "mysql_init failed (out of memory)")
        }
        var seconds = UInt32(max(1, min(Double(UInt32.max / 2), timeoutSeconds.rounded(.up))))
        mysql_options(h, MYSQL_OPT_CONNECT_TIMEOUT, &seconds)
        mysql_options(h, MYSQL_OPT_READ_TIMEOUT, &seconds)
        mysql_options(h, MYSQL_OPT_WRITE_TIMEOUT, &seconds)
        var off: my_bool = 0
        mysql_options(h, MYSQL_OPT_LOCAL_INFILE, &off)
        mysql_options(h, MYSQL_OPT_RECONNECT, &off)  // a reconnect would silently drop the transaction
        if let f = s.optionFile { mysql_options(h, MYSQL_READ_DEFAULT_FILE, f) }
        if let g = s.optionGroup { mysql_options(h, MYSQL_READ_DEFAULT_GROUP, g) }
        mysql_options(h, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        if let m = s.sslMode {
            var on: my_bool = 1
            mysql_options(h, MYSQL_OPT_SSL_ENFORCE, &on)
            if m == .verify_identity { mysql_options(h, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on) }
        }
        if let ca = s.sslCA { mysql_options(h, MYSQL_OPT_SSL_CA, ca) }
        let ok = mysql_real_connect(
            h, s.socket == nil ? s.host : "localhost", s.user, password, s.database, UInt32(s.port ?? 0), s.socket,
            UInt(CLIENT_FOUND_ROWS))
        guard ok != nil else {
            let e = error(h, s.target, nil)
            mysql_close(h)
            throw e
        }
        let db = MySQLDatabase(handle: h, target: s.target)
        // TIMESTAMP values come out in UTC (RFC 3339 with Z).
        try db.simple("SET time_zone = '+00:00'")
        logger.debug("connected", metadata: ["target": "\(s.target)", "server": "\(db.serverVersion)"])
        return db
    }

    /// The error the library reports for `h` (`mysql_error`, `mysql_errno`, `mysql_sqlstate`).
    static func error(_ h: UnsafeMutablePointer<MYSQL>, _ target: String, _ what: String?) -> DSARError {
        describe(
            target, what, message: String(cString: mysql_error(h)), errno: mysql_errno(h),
            sqlstate: String(cString: mysql_sqlstate(h)))
    }

    /// `what: message (MySQL error errno, SQLSTATE s)` with a hint for the usual causes; the
    /// connector puts its name and `target` in front (``LiveDBConnector``), so neither is repeated.
    static func describe(
        _ target: String, _ what: String?, message: String, errno: UInt32, sqlstate: String
    ) -> DSARError {
        let hint: String
        switch errno {
        case 1205: hint = "; another session holds a lock on these rows (raise lock_timeout or retry later)"
        case 1451, 1452:
            hint = "; a foreign key would break (list the child table in tables: or set order:); nothing was changed"
        case 1045: hint = "; check user:, password_file:, the option_file's password= or MYSQL_PWD"
        case 1142, 1143, 1044: hint = "; GRANT the privilege to the connecting user"
        case 2002, 2003, 2005: hint = "; check host:, port: or socket: and that the server runs"
        case 1969, 3024: hint = "; the statement ran longer than statement_timeout"
        default: hint = ""
        }
        let head = what.map { "\($0): " } ?? ""
        return DSARError(
            .processing, "\(head)\(message) (MySQL error \(errno), SQLSTATE \(sqlstate))\(hint)")
    }

    /// Runs `body` with the open handle (an error once closed). A ``close()`` from another thread
    /// while `body` runs closes the handle when `body` returns, so the handle is never freed under it.
    private func using<T>(_ body: (UnsafeMutablePointer<MYSQL>) throws -> T) throws -> T {
        lock.lock()
        guard let h = handle, !closing else {
            lock.unlock()
            throw DSARError(.processing, "the connection to the MySQL server is closed")
        }
        busy += 1
        lock.unlock()
        defer {
            lock.lock()
            busy -= 1
            let closeNow = closing && busy == 0
            if closeNow { handle = nil }
            lock.unlock()
            if closeNow { mysql_close(h) }
        }
        return try body(h)
    }

    /// Runs SQL without parameters through the text protocol (SET, START TRANSACTION, COMMIT).
    func simple(_ sql: String) throws {
        try using { h in
            if mysql_real_query(h, sql, UInt(sql.utf8.count)) != 0 { throw Self.error(h, target, "`\(sql)` failed") }
            if let r = mysql_store_result(h) { mysql_free_result(r) }
        }
    }

    package func quote(_ identifier: String) -> String {
        identifier.split(separator: ".", omittingEmptySubsequences: false)
            .map { "`" + $0.replacingOccurrences(of: "`", with: "``") + "`" }
            .joined(separator: ".")
    }

    package func placeholder(_ n: Int) -> String { "?" }

    /// `LOWER(col) LIKE ? ESCAPE '!'`: `!` rather than `\` as the escape, so the SQL means the same
    /// whether or not the server's `sql_mode` has `NO_BACKSLASH_ESCAPES`.
    package func containsCaseInsensitive(_ columnSQL: String, _ patternSQL: String) -> String {
        "LOWER(\(columnSQL)) LIKE \(patternSQL) ESCAPE '!'"
    }

    /// `%needle%`, lower-cased, with `!`, `%` and `_` escaped by `!`.
    package func likePattern(_ needle: String) -> String {
        var out = "%"
        for ch in needle.lowercased() {
            if ch == "!" || ch == "%" || ch == "_" { out.append("!") }
            out.append(ch)
        }
        out.append("%")
        return out
    }

    @discardableResult
    package func query(_ sql: String, _ params: [LiveParam], row: ([LiveValue]) throws -> Void) throws -> [String] {
        try using { h in
            let stmt = try MySQLStatement(h, sql, params, target: target)
            defer { stmt.close() }
            try stmt.execute()
            return try stmt.fetchAll(row)
        }
    }

    @discardableResult
    package func execute(_ sql: String, _ params: [LiveParam]) throws -> Int {
        try using { h in
            let stmt = try MySQLStatement(h, sql, params, target: target)
            defer { stmt.close() }
            try stmt.execute()
            try stmt.fetchAll { _ in }
            return stmt.affectedRows
        }
    }

    package func begin(readOnly: Bool) throws {
        try simple(readOnly ? "START TRANSACTION READ ONLY" : "START TRANSACTION READ WRITE")
    }

    package func commit() throws { try simple("COMMIT") }

    package func rollback() throws { try simple("ROLLBACK") }

    /// `innodb_lock_wait_timeout` and `lock_wait_timeout` (whole seconds, at least 1), and
    /// `max_statement_time` (MariaDB, seconds) or `max_execution_time` (MySQL, milliseconds, SELECTs only).
    package func setTimeouts(lockMilliseconds: Int?, statementMilliseconds: Int?) throws {
        if let ms = lockMilliseconds {
            let s = max(1, (ms + 999) / 1000)
            try simple("SET SESSION innodb_lock_wait_timeout = \(s), SESSION lock_wait_timeout = \(s)")
        }
        if let ms = statementMilliseconds {
            if isMariaDB {
                try simple("SET SESSION max_statement_time = \(Double(max(0, ms)) / 1000)")
            } else {
                try simple("SET SESSION max_execution_time = \(max(0, ms))")
            }
        }
    }

    package func interrupt() {
        lock.lock()
        defer { lock.unlock() }
        if let h = handle { _ = mariadb_cancel(h) }
    }

    /// Closes the connection now, or, while a call runs on another thread, when that call returns
    /// (call ``interrupt()`` first to make it return at once).
    package func close() {
        lock.lock()
        closing = true
        let h = busy == 0 ? handle : nil
        if h != nil { handle = nil }
        lock.unlock()
        if let h { mysql_close(h) }
    }
}
