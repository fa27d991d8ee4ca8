import Foundation

/// Every connector kind dsar knows. Adding a kind is one folder under `Connectors/` and one entry here.
package enum ConnectorRegistry {
    /// The kinds, in the order their names are listed in messages.
    package static let kinds: [any ConnectorKind.Type] = [
        CSVKind.self, SQLDumpKind.self, LogKind.self, ExecKind.self, SQLiteKind.self, MySQLKind.self, PostgresKind.self,
        SparkKind.self,
    ]

    /// The `type:` names of every kind.
    package static var names: [String] { kinds.map { $0.type } }

    /// The kind whose `type:` is `name`.
    package static func kind(named name: String) -> (any ConnectorKind.Type)? {
        kinds.first { $0.type == name }
    }

    /// One runtime connector per config.
    package static func make(_ configs: [ConnectorConfig]) -> [any Connector] {
        configs.map { $0.makeConnector() }
    }
}
