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
        LiveDBSettings()  // the LiveDB core fills this in
    }

    /// `connectors check` for a live database: connects, checks that every table and column exists
    /// and that the role has the privileges the configuration needs, reporting on `y`.
    package static func check<S: LiveDriverSettings>(
        _ settings: S, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {}
}

extension LiveDriverSettings {
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

    package func retains(table: String) -> Bool { settings.live.tables[table]?.erase == .retain }

    package func scan(_ batch: ScanBatch, logger: Logger) async throws -> [String: ConnectorFindings] {
        throw DSARError(.processing, "connector \(name): the live database search is not built yet")
    }

    package func erase(_ jobs: [EraseJob], logger: Logger) async throws -> [String: [FileErasure]] {
        throw DSARError(.processing, "connector \(name): the live database erasure is not built yet")
    }
}
