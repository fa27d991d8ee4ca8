import Foundation

/// Finds the connector config directory: `--connectors`, `$DSAR_CONNECTORS`, `connectors:` in the
/// spool's config.yaml, else `connectors/` beside the spool.
package enum ConnectorLocator {
    /// The directory, made absolute.
    package static func directory(explicit: String?, layout: SpoolLayout) throws -> String {
        if let explicit, !explicit.isEmpty { return FileSystem.absolute(explicit) }
        if let env = ProcessInfo.processInfo.environment["DSAR_CONNECTORS"], !env.isEmpty {
            return FileSystem.absolute(env)
        }
        if let fromConfig = try SpoolConfig.load(layout).connectorsDir { return FileSystem.absolute(fromConfig) }
        return FileSystem.absolute(layout.root + "/../connectors")
    }

    /// Loads the connectors (none when the default directory does not exist).
    package static func load(explicit: String?, layout: SpoolLayout) throws -> [ConnectorConfig] {
        let dir = try directory(explicit: explicit, layout: layout)
        let configured = try SpoolConfig.load(layout).connectorsDir
        let isDefault =
            (explicit ?? "").isEmpty && (ProcessInfo.processInfo.environment["DSAR_CONNECTORS"] ?? "").isEmpty
            && configured == nil
        if isDefault && !FileSystem.exists(dir) { return [] }
        return try ConnectorCatalog.load(dir: dir)
    }
}

/// Human-readable byte counts.
package enum ByteFormat {
    /// "1.5 MiB".
    package static func human(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 {
            v /= 1024
            u += 1
        }
        return u == 0 ? "\(n) B" : String(format: "%.1f %@", v, units[u])
    }
}
