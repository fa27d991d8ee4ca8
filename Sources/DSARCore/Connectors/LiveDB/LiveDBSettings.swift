import Foundation
import Logging

/// What every live-database kind (`postgres`, `mysql`, `sqlite`) configures the same way:
/// `tables:` exactly as for `sqldump` (`match`, `text`, `erase`, `redact`, `reason`, `expand`),
/// `order:` (erase order, children first), `lock_timeout:`, `statement_timeout:` and
/// `password_file:` (0600, checked like keys; a `password:` key is refused).
package struct LiveDBSettings: Sendable {
    /// The YAML keys parsed here (each kind adds its connection keys).
    package static let keys = ["tables", "order", "lock_timeout", "statement_timeout", "password_file"]

    /// The rules per table.
    package var tables: [String: RecordRules] = [:]
    /// The tables in the order of the YAML file.
    package var tableOrder: [String] = []
    /// `order:`: the erase order (children first); nil: from the catalog's foreign keys.
    package var order: [String]?
    /// `lock_timeout:` in seconds (nil: 10).
    package var lockTimeoutSeconds: Double?
    /// `statement_timeout:` in seconds (nil: the connector's `timeout`).
    package var statementTimeoutSeconds: Double?
    /// `password_file:` (absolute; relative ones are relative to the YAML file).
    package var passwordFile: String?

    package init() {}

    /// Parses the shared keys of one connector file, reporting problems on `y`.
    package static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> LiveDBSettings {
        var c = LiveDBSettings()
        (c.tables, c.tableOrder) = ConnectorCatalog.tables(y)
        if y.has("order") {
            let order = y.strings("order") ?? []
            for t in order where c.tables[t] == nil {
                let hint = ConfigSuggest.didYouMean(t, among: c.tableOrder).map { " (did you mean \"\($0)\"?)" } ?? ""
                y.problem("order", "\"\(t)\" is not a table listed under `tables:`\(hint)")
            }
            c.order = order
        }
        c.lockTimeoutSeconds = y.seconds("lock_timeout", range: 0.001...86400)
        c.statementTimeoutSeconds = y.seconds("statement_timeout", range: 0.001...86400)
        if let p = y.string("password_file") {
            let path = p.hasPrefix("/") ? p : context.dir + "/" + p
            c.passwordFile = path
            if context.checks.sources {
                do { try SecretFile.check(path, what: "the password file") } catch let e as DSARError {
                    y.problem("password_file", e.message)
                } catch { y.problem("password_file", "\(error)") }
            }
        }
        rejectPassword(y)
        if y.isMap("connection"), let conn = y.map("connection") { rejectPassword(conn) }
        return c
    }

    static let passwordAdvice =
        "a password never sits in the YAML: use password_file (mode 0600), the library's own files (.pgpass, option_file) or the environment (PGPASSWORD, MYSQL_PWD)"

    /// A `password:` key (or `password=` inside a conninfo string) is a problem.
    static func rejectPassword(_ y: YAMLMap) {
        for key in y.keys where key.lowercased() == "password" || key.lowercased() == "passwd" {
            _ = y.node(key)  // reported here, not as an unknown key
            y.problem(key, passwordAdvice)
        }
        if let conn = y.isScalar("connection") ? y.string("connection") : nil {
            let lower = conn.lowercased()
            let inURI = lower.range(of: #"^[a-z]+://[^/@]*:[^/@]*@"#, options: .regularExpression) != nil
            if lower.range(of: #"(^|\s)password\s*="#, options: .regularExpression) != nil || inURI
                || lower.contains("password=")
            {
                y.problem("connection", passwordAdvice)
            }
        }
    }

    /// The password from `password_file:` (first line, without its line break), nil without one.
    package func password() throws -> String? {
        guard let passwordFile else { return nil }
        let bytes = try SecretFile.read(passwordFile, what: "the password file", limit: 4096)
        var s = String(decoding: bytes, as: UTF8.self)
        if let nl = s.firstIndex(where: { $0 == "\n" || $0 == "\r" }) { s = String(s[..<nl]) }
        return s
    }

    /// `connectors check` for a live database: connects, checks that every table and column exists
    /// and that the role has the privileges the configuration needs, reporting on `y`.
    package static func check<S: LiveDriverSettings>(
        _ settings: S, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {
        guard checks.sources && y.problems.isEmpty else { return }
        let live = settings.live
        let db: any LiveDatabase
        do {
            db = try settings.connect(
                password: try live.password(), timeoutSeconds: min(config.timeoutSeconds, 10), readOnly: true,
                logger: Logger(label: "dsar.check"))
        } catch {
            let message = (error as? DSARError)?.message ?? "\(error)"
            y.problem("-", "connector \(config.name): cannot connect to \(settings.target): \(message)")
            return
        }
        defer { db.close() }
        let tables = y.map("tables")
        for t in live.tableOrder {
            guard let rules = live.tables[t] else { continue }
            do {
                guard let cols = try db.columns(of: t) else {
                    tables?.problem(t, "table \"\(t)\" does not exist in \(db.target)")
                    continue
                }
                let have = cols.map(\.name)
                for name in Set(rules.match.map(\.column) + rules.text + rules.redact).sorted()
                where !have.contains(name) {
                    let hint = ConfigSuggest.didYouMean(name, among: have).map { " (did you mean \"\($0)\"?)" } ?? ""
                    tables?.problem(
                        t, "table \"\(t)\" has no column \"\(name)\"\(hint); it has: \(have.joined(separator: ", "))")
                }
                let p = try db.privileges(on: t)
                for (need, what) in LiveDBSettings.needed(rules) where !p.contains(need) {
                    tables?.problem(t, "the role lacks \(what) on \(t) (GRANT \(what) ON \(t) TO <role>)")
                }
            } catch {
                let message = (error as? DSARError)?.message ?? "\(error)"
                tables?.problem(t, "connector \(config.name): \(message)")
            }
        }
    }

    /// The privileges a table's rules need: SELECT always, DELETE for `erase: delete` (and UPDATE,
    /// for rows found only through `text:` columns), UPDATE for `redact`.
    static func needed(_ r: RecordRules) -> [(LivePrivileges, String)] {
        var out: [(LivePrivileges, String)] = [(.select, "SELECT")]
        switch r.erase {
        case .delete, .dropLine:
            out.append((.delete, "DELETE"))
            if !r.text.isEmpty { out.append((.update, "UPDATE")) }
        case .redact: out.append((.update, "UPDATE"))
        case .retain, .plugin: break
        }
        return out
    }
}

extension LiveDriverSettings {
    /// For `connectors check`: where it connected, and per table the columns it uses and the
    /// privileges the role has against those the configuration needs.
    package func describe(_ config: ConnectorConfig) -> [String] {
        let db: any LiveDatabase
        do {
            db = try connect(
                password: try live.password(), timeoutSeconds: min(config.timeoutSeconds, 10), readOnly: true,
                logger: Logger(label: "dsar.check"))
        } catch {
            return ["connects to \(target): \((error as? DSARError)?.message ?? "\(error)")"]
        }
        defer { db.close() }
        var out = ["connected to \(db.target)"]
        let names: [(LivePrivileges, String)] = [(.select, "SELECT"), (.update, "UPDATE"), (.delete, "DELETE")]
        for t in live.tableOrder {
            guard let rules = live.tables[t] else { continue }
            let used = Set(rules.match.map(\.column) + rules.text + rules.redact).sorted()
            let has = (try? db.privileges(on: t)).map { p in names.filter { p.contains($0.0) }.map(\.1) } ?? []
            let needs = LiveDBSettings.needed(rules).map(\.1)
            out.append(
                "table \(t): columns \(used.joined(separator: ", ")); erase: \(rules.erase.rawValue); role may \(has.isEmpty ? "nothing" : has.joined(separator: ", ")) (needs \(needs.joined(separator: ", ")))"
            )
        }
        return out
    }

    /// The runtime connector of a live database (shared by every engine).
    package func connector(_ config: ConnectorConfig) -> any Connector {
        LiveDBConnector(config: config, settings: self)
    }
    /// Connects to a live database: no files.
    package var summary: [String] { ["connects to \(target)"] }
}

/// Searches and erases a live database for a whole batch (pushdown queries, one transaction per
/// erasure, verified before COMMIT). Shared by the `postgres`, `mysql` and `sqlite` kinds.
package struct LiveDBConnector: ErasingConnector {
    package let config: ConnectorConfig
    package let settings: any LiveDriverSettings

    package init(config: ConnectorConfig, settings: any LiveDriverSettings) {
        self.config = config
        self.settings = settings
    }

    package var name: String { config.name }
    package var metadata: SourceMetadata { config.metadata }
    package var timeoutSeconds: Double? { config.timeoutSeconds }
    package var retries: Int? { config.retries }

    package var eraseStrategies: [EraseStrategyEntry] {
        settings.live.tableOrder.map { t in
            EraseStrategyEntry(
                table: t, strategy: settings.live.tables[t]?.erase ?? .delete, reason: settings.live.tables[t]?.reason)
        }
    }

    /// A dry run executes the statements in a transaction and rolls it back.
    package var rehearsesErasure: Bool { true }

    package func retains(table: String) -> Bool { settings.live.tables[table]?.erase == .retain }
}
