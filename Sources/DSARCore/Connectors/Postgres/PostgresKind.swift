import CLibPQ
import Foundation
import Logging

/// `type: postgres`: a live PostgreSQL database (or a PostgreSQL-protocol engine) through libpq,
/// searched and erased by the shared ``LiveDBConnector``.
///
/// `connection:` is a libpq conninfo string (`host=/var/run/postgresql dbname=shop user=dsar`), a
/// `postgresql://` / `postgres://` URI, or a mapping of libpq keywords (`{ service: shop }` reads
/// pg_service.conf; `sslmode`, `sslrootcert`… pass through). A password never sits in the YAML.
package enum PostgresKind: ConnectorKind {
    package static let type = "postgres"
    package static let keys = LiveDBSettings.keys + ["connection"]
    package static var readsFiles: Bool { false }

    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> PostgresSettings {
        var s = PostgresSettings()
        s.live = LiveDBSettings.parse(y, &context)
        if y.isScalar("name"), let n = y.string("name") { s.name = n }
        if y.isMap("connection") {
            guard let m = y.map("connection") else { return s }
            let known = Set(PostgresConninfo.keywords)
            // `password:` here is reported by LiveDBSettings.parse, and never passed on.
            for k in m.keys where !["password", "passwd"].contains(k.lowercased()) {
                guard let v = m.string(k) else { continue }
                if !known.contains(k) {
                    let suggestion = ConfigSuggest.didYouMean(k, among: PostgresConninfo.keywords).map {
                        " (did you mean \($0)?)"
                    }
                    m.problem(k, "unknown libpq connection keyword\(suggestion ?? "")")
                } else {
                    s.conninfo.append((k, v))
                }
            }
            if let bad = PostgresConninfo.badPort(s.conninfo) { m.problem("port", bad) }
            if s.conninfo.isEmpty && m.keys.isEmpty {
                y.problem("connection", "is empty: give libpq keywords such as service, host, dbname, user")
            }
        } else if let c = y.string("connection", required: true) {
            switch PostgresConninfo.parse(c) {
            case .success(let pairs):
                // LiveDBSettings.parse reports the usual spellings; libpq's parse catches the rest.
                if pairs.contains(where: { $0.0 == "password" })
                    && !y.problems.contains(where: { $0.key == "connection" })
                {
                    y.problem("connection", PostgresConninfo.inlinePassword)
                }
                s.conninfo = pairs.filter { $0.0 != "password" }
                if let bad = PostgresConninfo.badPort(pairs) { y.problem("connection", bad) }
            case .failure(let message):
                y.problem(
                    "connection",
                    "is not a libpq conninfo string (host=… dbname=… user=…) or postgresql:// URI: \(message)")
            }
        }
        return s
    }

    package static func check(
        _ settings: PostgresSettings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        LiveDBSettings.check(settings, of: config, y, checks)
    }
}

/// The settings of a `type: postgres` connector.
package struct PostgresSettings: LiveDriverSettings {
    package static var kind: any ConnectorKind.Type { PostgresKind.self }
    /// `tables:`, `order:`, timeouts and `password_file:`.
    package var live = LiveDBSettings()
    /// The connector's name (for error messages).
    package var name = "postgres"
    /// `connection:` as libpq keyword/value pairs (never a password).
    package var conninfo: [(String, String)] = []

    /// No connection yet.
    package init() {}

    /// `postgres://host:port/db` (a socket directory as host; a service as `service=…`).
    package var target: String {
        PostgresConninfo.target(conninfo, environment: ProcessInfo.processInfo.environment)
    }

    package func connect(password: String?, timeoutSeconds: Double, logger: Logger) throws -> any LiveDatabase {
        try PostgresDatabase.connect(
            name: name, conninfo: conninfo, password: password, timeoutSeconds: timeoutSeconds, logger: logger)
    }
}

/// libpq connection strings: parsing (``PQconninfoParse``), keywords and the target they name.
package enum PostgresConninfo {
    /// Why an inline password is refused.
    static let inlinePassword =
        "a password never sits in the YAML: use password_file (mode 0600), libpq's .pgpass / PGPASSFILE, or PGPASSWORD in the environment"

    /// Why a `port` is not one (libpq checks it only when connecting), or nil.
    static func badPort(_ pairs: [(String, String)]) -> String? {
        guard let port = pairs.last(where: { $0.0 == "port" })?.1 else { return nil }
        let ok = port.split(separator: ",", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) && (Int($0) ?? 0) <= 65535
        }
        return ok ? nil : "port \"\(port)\" is not a TCP port number (1 to 65535)"
    }

    /// Every keyword libpq accepts (``PQconndefaults``).
    package static let keywords: [String] = {
        guard let opts = PQconndefaults() else { return [] }
        defer { PQconninfoFree(opts) }
        var out: [String] = []
        var i = 0
        while let k = opts[i].keyword {
            out.append(String(cString: k))
            i += 1
        }
        return out
    }()

    /// The keyword/value pairs of a conninfo string or URI, or libpq's message. `service: shop`
    /// (YAML-looking) is read as `service=shop`.
    package static func parse(_ text: String) -> Result<[(String, String)], ConninfoError> {
        var text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("service:") {
            let name = text.dropFirst("service:".count).trimmingCharacters(in: .whitespaces)
            if !name.isEmpty && !name.contains(" ") && !name.contains("=") { text = "service=" + name }
        }
        var err: UnsafeMutablePointer<CChar>?
        guard let opts = PQconninfoParse(text, &err) else {
            var message = "out of memory"
            if let err {
                message = String(cString: err).trimmingCharacters(in: .whitespacesAndNewlines)
                PQfreemem(err)
            }
            return .failure(ConninfoError(message: message))
        }
        defer { PQconninfoFree(opts) }
        var out: [(String, String)] = []
        var i = 0
        while let k = opts[i].keyword {
            if let v = opts[i].val { out.append((String(cString: k), String(cString: v))) }
            i += 1
        }
        return .success(out)
    }

    /// libpq's reason a connection string cannot be read.
    package struct ConninfoError: Error, Sendable, CustomStringConvertible {
        package var message: String
        package var description: String { message }
    }

    /// `postgres://host:port/db` for keyword pairs, with libpq's environment defaults for what is
    /// not given (PGHOST, PGPORT, PGDATABASE, PGUSER); never a password.
    package static func target(_ pairs: [(String, String)], environment env: [String: String]) -> String {
        func value(_ k: String) -> String? { pairs.last { $0.0 == k && !$0.1.isEmpty }?.1 }
        let service = value("service") ?? env["PGSERVICE"]
        var host = value("host") ?? value("hostaddr") ?? env["PGHOST"]
        if host == nil && service == nil { host = "/var/run/postgresql" }
        let port = value("port") ?? env["PGPORT"] ?? (service == nil ? "5432" : nil)
        var db = value("dbname") ?? env["PGDATABASE"] ?? value("user") ?? env["PGUSER"]
        if db == nil && service == nil { db = ProcessInfo.processInfo.userName }
        var out = "postgres://" + (host ?? "") + (port.map { ":" + $0 } ?? "") + "/" + (db ?? "")
        if let service { out += "?service=" + service }
        return out
    }
}
