import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What erasure does to a matching record.
package enum EraseStrategy: String, Sendable, CaseIterable, Codable {
    /// Remove the record (row, line).
    case delete
    /// Replace the listed columns' values (logs: every matched identifier) with a placeholder.
    case redact
    /// Legal hold or statutory retention: change nothing, list it in the receipt with the reason.
    case retain
    /// Logs: remove the whole line.
    case dropLine = "drop_line"
    /// Exec plugins: the plugin's own `erase` action decides (not accepted in YAML).
    case plugin

    /// The strategies an operator may write in a connector's `erase:`.
    package static let configurable: [EraseStrategy] = [.delete, .redact, .retain, .dropLine]
}

/// A column (or JSON field) that holds an identifier of a given type.
package struct FieldRule: Sendable, Equatable {
    package var column: String
    package var type: String
    /// Whether values of this column found in a matching row are added to the subject.
    package var expand: Bool
}

/// How records of one table (or one CSV file, or a JSON-lines log) are matched and erased.
package struct RecordRules: Sendable, Equatable {
    package var match: [FieldRule] = []
    /// Free-text columns searched for identifier tokens.
    package var text: [String] = []
    package var erase: EraseStrategy = .delete
    package var redact: [String] = []
    package var reason: String?
}

/// One connector's configuration (one YAML file in `connectors/`).
/// The fields every kind has; what is particular to a kind is in ``settings``.
package struct ConnectorConfig: Sendable {
    package var name: String
    /// The YAML file it came from.
    package var file: String
    /// Glob patterns, made absolute (relative ones are relative to the YAML file's directory).
    package var paths: [String]
    package var metadata: SourceMetadata
    package var timeoutSeconds: Double = 3600
    package var retries: Int = 2
    /// Replacement text for redacted values.
    package var placeholder: String = "[REDACTED]"
    /// `follow_symlinks: true`: a source that is a symlink is read through it (the target must still
    /// be a regular file); by default a symlink is refused like any file that is not regular.
    package var followSymlinks: Bool = false
    /// `max_file_bytes:`: a larger source is refused (not read), making its jobs PARTIAL; nil: any size.
    package var maxFileBytes: Int64?

    /// How this connector's sources are opened (``SourceFile``).
    package var sourceOptions: SourceFile.Options {
        SourceFile.Options(followSymlinks: followSymlinks, maxBytes: maxFileBytes)
    }

    /// Things that work but are likely wrong (a numeric type matched bare in text), as `file:line`.
    package var warnings: [ConfigProblem] = []
    /// The kind's own settings (``ConnectorKind/Settings``).
    package var settings: any ConnectorSettings

    /// A config of the kind of `settings`.
    package init(name: String, file: String, paths: [String], metadata: SourceMetadata, settings: any ConnectorSettings)
    {
        self.name = name
        self.file = file
        self.paths = paths
        self.metadata = metadata
        self.settings = settings
    }

    /// The kind's `type:` name.
    package var type: String { Swift.type(of: settings).kind.type }

    /// Whether the kind reads files (``ConnectorKind/readsFiles``).
    package var readsFiles: Bool { Swift.type(of: settings).kind.readsFiles }

    /// The runtime connector.
    package func makeConnector() -> any Connector { settings.connector(self) }

    /// The settings as the kind `S` expects them, or an error naming the connector's kind.
    package func settings<S: ConnectorSettings>(as: S.Type) throws -> S {
        guard let s = settings as? S else {
            throw DSARError(.config, "connector \(name) in \(file) is of type \(type), not \(S.kind.type)", path: file)
        }
        return s
    }

    /// Everything the globs match now (``sources()``), each with its kind and, for what cannot be
    /// read as a source (a FIFO, device, socket, directory, a symlink without `follow_symlinks`, a
    /// file over `max_file_bytes`), why not. Nothing a glob matches is silently dropped.
    package func inspectSources() -> [SourceFile.Entry] {
        sources().map { SourceFile.inspect($0, options: sourceOptions) }
    }

    /// The sources an eraser may rewrite: all of ``sources()``, or an error naming the first one that
    /// is not a regular file, thrown before anything is changed (an erasure never skips a source).
    package func erasableSources() throws -> [String] {
        let entries = inspectSources()
        if let bad = entries.first(where: { $0.problem != nil }) {
            throw DSARError(
                .invalidInput, "\(bad.path) is not read: \(bad.problem!); nothing of connector \(name) was erased",
                path: bad.path)
        }
        return entries.map(\.path)
    }

    /// The files the globs match now, sorted, deduplicated; of every kind (see ``inspectSources()``).
    package func sources() -> [String] {
        var out: [String] = []
        for pattern in paths {
            out += ConnectorConfig.glob(pattern)
        }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }

    /// Expands one glob pattern (no match: empty).
    package static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for k in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[k] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }
}
