import Foundation
import Logging

/// `type: sqlite`: a live SQLite database file, searched read-only and erased in one transaction.
package enum SQLiteKind: ConnectorKind {
    package static let type = "sqlite"
    package static let keys = LiveDBSettings.keys + ["path", "busy_timeout"]
    package static var readsFiles: Bool { false }

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> SQLiteSettings {
        var s = SQLiteSettings()
        s.live = LiveDBSettings.parse(y, &context)
        if let p = y.string("path", required: true) {
            if p.trimmingCharacters(in: .whitespaces).isEmpty {
                y.problem("path", "is empty: give the database file (relative to this file)")
            } else {
                s.path = p.hasPrefix("/") ? p : context.dir + "/" + p
            }
        }
        if let b = y.seconds("busy_timeout", range: 0...86400) { s.busyTimeoutSeconds = b }
        return s
    }

    package static func check(
        _ s: SQLiteSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        guard checks.sources, !s.path.isEmpty else { return }
        guard FileSystem.exists(s.path) else {
            y.problem("path", "no database file \(s.path)")
            return
        }
        LiveDBSettings.check(s, of: config, y, checks)
    }
}

/// The settings of a `type: sqlite` connector.
package struct SQLiteSettings: LiveDriverSettings {
    package static var kind: any ConnectorKind.Type { SQLiteKind.self }
    /// `tables:`, `order:`, timeouts (``LiveDBSettings``).
    package var live = LiveDBSettings()
    /// `path:` (absolute; relative ones are relative to the YAML file).
    package var path = ""
    /// `busy_timeout:` in seconds: how long a statement waits for another connection's lock.
    package var busyTimeoutSeconds: Double = 5

    /// Defaults: no path, a busy timeout of 5 s.
    package init() {}

    package var target: String { "sqlite:\(path)" }

    /// Opens the file read-write (erasure).
    package func connect(password: String?, timeoutSeconds: Double, logger: Logger) throws -> any LiveDatabase {
        try SQLiteDatabase(path: path, readOnly: false, busyTimeoutMilliseconds: Int(busyTimeoutSeconds * 1000))
    }

    /// Opens the file read-only for searches (`SQLITE_OPEN_READONLY`), read-write for erasure.
    package func connect(
        password: String?, timeoutSeconds: Double, readOnly: Bool, logger: Logger
    ) throws
        -> any LiveDatabase
    {
        try SQLiteDatabase(path: path, readOnly: readOnly, busyTimeoutMilliseconds: Int(busyTimeoutSeconds * 1000))
    }
}
