import Foundation
import Logging

/// `type: mysql`: a live MySQL or MariaDB database through MariaDB Connector/C.
///
/// ```yaml
/// name: crm-live
/// type: mysql
/// connection: { host: localhost, database: crm, user: dsar, option_file: /etc/dsar/my.cnf, option_group: dsar }
/// tables:
///   customers: { match: { email: email }, erase: delete }
/// ```
///
/// The password comes from `password_file:`, the option file (`password=` in its group) or
/// `MYSQL_PWD`; a `password:` key under `connection:` is refused.
package enum MySQLKind: ConnectorKind {
    package static let type = "mysql"
    package static let keys = LiveDBSettings.keys + ["connection"]
    package static var readsFiles: Bool { false }

    /// The keys of `connection:`.
    package static let connectionKeys = [
        "host", "port", "socket", "database", "user", "option_file", "option_group", "ssl_mode", "ssl_ca",
    ]

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> MySQLSettings {
        var s = MySQLSettings(live: LiveDBSettings.parse(y, &context))
        guard let c = y.map("connection", required: true) else { return s }
        if c.has("password") {
            _ = c.string("password")
            c.problem(
                "password",
                "a password never sits in the YAML: use password_file: (mode 0600), `password=` in the option_file, or MYSQL_PWD"
            )
        }
        s.host = c.string("host")
        if let p = c.int("port", range: 1...65535) { s.port = p }
        s.socket = c.string("socket").map { resolve($0, context.dir) }
        if let d = c.string("database", required: true) {
            if d.isEmpty { c.problem("database", "expected the name of a database") } else { s.database = d }
        }
        s.user = c.string("user")
        s.optionFile = c.string("option_file").map { resolve($0, context.dir) }
        s.optionGroup = c.string("option_group")
        if let m = c.string("ssl_mode") {
            if let v = MySQLSettings.SSLMode(rawValue: m) {
                s.sslMode = v
            } else {
                c.problem(
                    "ssl_mode",
                    "expected one of: \(MySQLSettings.SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        s.sslCA = c.string("ssl_ca").map { resolve($0, context.dir) }
        if s.host != nil && s.socket != nil {
            c.problem("socket", "give either host: (TCP) or socket: (a Unix socket), not both")
        }
        c.rejectUnknownKeys(allowed: connectionKeys)
        return s
    }

    package static func check(
        _ s: MySQLSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        if checks.sources, let f = s.optionFile, let c = y.map("connection"),
            !FileManager.default.isReadableFile(atPath: f)
        {
            c.problem("option_file", "cannot read \(f): give the path of a readable my.cnf file")
            return
        }
        LiveDBSettings.check(s, of: config, y, checks)
    }

    /// `path` made absolute against the YAML file's directory.
    static func resolve(_ path: String, _ dir: String) -> String {
        path.hasPrefix("/") ? path : (dir as NSString).appendingPathComponent(path)
    }
}

/// The settings of a `type: mysql` connector: the shared live-database part and `connection:`.
package struct MySQLSettings: LiveDriverSettings {
    package static var kind: any ConnectorKind.Type { MySQLKind.self }

    /// `ssl_mode:` (nil: the library's default).
    package enum SSLMode: String, Sendable, CaseIterable {
        /// TLS required, the server's certificate not verified.
        case required
        /// TLS required and the server's certificate verified (against `ssl_ca:` when given).
        case verify_identity
    }

    package var live: LiveDBSettings
    /// `host:` (nil: localhost, the library's default socket).
    package var host: String?
    /// `port:` (nil: 3306).
    package var port: Int?
    /// `socket:`: a Unix socket path.
    package var socket: String?
    /// `database:`.
    package var database: String = ""
    /// `user:` (nil: from the option file or the login name).
    package var user: String?
    /// `option_file:` (`MYSQL_READ_DEFAULT_FILE`).
    package var optionFile: String?
    /// `option_group:` (`MYSQL_READ_DEFAULT_GROUP`).
    package var optionGroup: String?
    package var sslMode: SSLMode?
    /// `ssl_ca:`: CA certificate file.
    package var sslCA: String?

    package init(live: LiveDBSettings) { self.live = live }

    /// `mysql://host:port/db`, or `mysql://localhost/db?socket=/path` (never a password).
    package var target: String {
        if let socket { return "mysql://localhost/\(database)?socket=\(socket)" }
        if let host { return "mysql://\(host.contains(":") ? "[\(host)]" : host):\(port ?? 3306)/\(database)" }
        return "mysql://localhost/\(database)"
    }

    package func connect(password: String?, timeoutSeconds: Double, logger: Logger) throws -> any LiveDatabase {
        try MySQLDatabase.connect(self, password: password, timeoutSeconds: timeoutSeconds, logger: logger)
    }
}
