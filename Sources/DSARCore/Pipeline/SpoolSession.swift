import Foundation
import Logging

/// Opens a spool for processing: creates it on first use, reads its config, takes the lock and
/// assembles the pipeline (connectors, finishers, audit journal).
public struct SpoolSession {
    public let layout: SpoolLayout
    public let config: SpoolConfig
    public let lock: SpoolLock
    public let processor: Processor

    /// Opens `layout`, creating it if needed, holding the spool lock until this value is dropped.
    public static func open(
        _ layout: SpoolLayout, connectorsDir: String? = nil, wait: Bool, purpose: String, logger: Logger
    ) throws -> SpoolSession {
        if !layout.exists { try SpoolSession.initialize(layout) }
        let config = try SpoolConfig.load(layout)
        let configs = try ConnectorLocator.load(explicit: connectorsDir, layout: layout)
        if configs.isEmpty {
            let dir = try ConnectorLocator.directory(explicit: connectorsDir, layout: layout)
            logger.warning("no connectors configured; jobs will search nothing", metadata: ["connectors": "\(dir)"])
        }
        let lock = try SpoolLock.acquire(layout, wait: wait, purpose: purpose)
        let processor = try Processor(layout: layout, config: config, connectors: ConnectorFactory.make(configs), logger: logger)
        return SpoolSession(layout: layout, config: config, lock: lock, processor: processor)
    }

    /// Creates the spool directories, a commented `config.yaml` and the pseudonym key (idempotent).
    public static func initialize(_ layout: SpoolLayout, group: String? = nil) throws {
        var group = group
        if group == nil, FileSystem.exists(layout.config) { group = try SpoolConfig.load(layout).inboxGroup }
        try layout.create(group: group)
        if !FileSystem.exists(layout.config) {
            try FileSystem.writeAtomically(layout.config, Array(SpoolConfig.template.utf8), mode: 0o640)
        }
        _ = try Pseudonymizer.load(layout)
    }
}
