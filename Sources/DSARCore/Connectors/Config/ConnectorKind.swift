import Foundation

/// One kind of data source (`type:` in a connector's YAML): everything dsar knows about it lives in
/// its own folder under `Connectors/` (reader, settings, parse, check, scan, erase) and the kind is
/// listed once in ``ConnectorRegistry/kinds``. Nothing outside that folder switches on the kind.
package protocol ConnectorKind {
    /// The kind's own typed configuration, parsed from its YAML keys.
    associatedtype Settings: ConnectorSettings
    /// The `type:` value (`csv`, `sqldump`…).
    static var type: String { get }
    /// The YAML keys this kind accepts besides the common ones (``ConnectorCatalog/commonKeys``);
    /// any other key is reported as unknown.
    static var keys: [String] { get }
    /// Whether the kind reads files: then `paths:` (required), `follow_symlinks:` and
    /// `max_file_bytes:` are accepted and the globs are checked. Default: true.
    static var readsFiles: Bool { get }
    /// Parses the kind's keys of one connector file, reporting problems on `y` (`file:line: key: what`).
    static func parse(_ y: YAMLMap, _ context: inout ConnectorParseContext) -> Settings
    /// Checks the parsed settings against the data they name, as deeply as `checks` asks
    /// (`connectors check`, Preflight): headers, tables, executables. Default: nothing to check.
    static func check(_ settings: Settings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks)
}

extension ConnectorKind {
    /// Most kinds read files.
    package static var readsFiles: Bool { true }
    /// Nothing to check beyond parsing.
    package static func check(
        _ settings: Settings, of config: ConnectorConfig, _ y: YAMLMap, _ checks: ConnectorCatalog.Checks
    ) {}
}

/// A kind's typed settings, held by ``ConnectorConfig/settings``; it makes the runtime connector.
package protocol ConnectorSettings: Sendable {
    /// The kind these settings belong to.
    static var kind: any ConnectorKind.Type { get }
    /// The runtime connector (scan, and erase for an ``ErasingConnector``) of `config`.
    func connector(_ config: ConnectorConfig) -> any Connector
    /// Lines `connectors check` prints under the connector instead of its files (kinds that read
    /// no files: the command they run). Default: none.
    var summary: [String] { get }
    /// What `connectors check` prints under a connector that reads no files, after the checks
    /// passed (default: ``summary``); a live database connects and says what it found.
    func describe(_ config: ConnectorConfig) -> [String]
}

extension ConnectorSettings {
    /// No summary lines.
    package var summary: [String] { [] }
    package func describe(_ config: ConnectorConfig) -> [String] { summary }
}

/// What a kind's ``ConnectorKind/parse(_:_:)`` may need beyond its YAML section.
package struct ConnectorParseContext: Sendable {
    /// The YAML file.
    package var file: String
    /// The YAML file's directory (relative paths and programs are relative to it).
    package var dir: String
    /// How deeply the config is checked.
    package var checks: ConnectorCatalog.Checks
    /// Things that work but are likely wrong, as `file:line` (they do not fail the check).
    package var warnings: [ConfigProblem] = []

    /// A context for `file` checked with `checks`.
    package init(file: String, checks: ConnectorCatalog.Checks) {
        self.file = file
        self.dir = (file as NSString).deletingLastPathComponent
        self.checks = checks
    }
}
