/// A connector made from its config and its kind's typed settings: what every kind that reads
/// sources itself shares (name, metadata, limits and source size come from the common config).
package protocol SettingsConnector: Connector {
    /// The kind's settings type.
    associatedtype Settings: ConnectorSettings
    /// The common part of the connector's configuration.
    var config: ConnectorConfig { get }
    /// The kind's own settings.
    var settings: Settings { get }
    /// A connector of `config` with its kind's `settings`.
    init(config: ConnectorConfig, settings: Settings)
}

extension SettingsConnector {
    package var name: String { config.name }
    package var metadata: SourceMetadata { config.metadata }
    package var timeoutSeconds: Double? { config.timeoutSeconds }
    package var retries: Int? { config.retries }
    package func sourceBytes() -> Int64? { config.totalSourceBytes() }

    /// A connector of `config`, whose settings must be of this kind (else a `DSARError`).
    package init(config: ConnectorConfig) throws {
        self.init(config: config, settings: try config.settings(as: Settings.self))
    }
}
