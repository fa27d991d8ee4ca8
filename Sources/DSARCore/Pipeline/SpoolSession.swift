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
        if config.signingKey == nil { try KeyMaterial.ensureSigningKey(in: layout.keys, principal: config.signerPrincipal) }
        let configs = try ConnectorLocator.load(explicit: connectorsDir, layout: layout)
        if configs.isEmpty {
            let dir = try ConnectorLocator.directory(explicit: connectorsDir, layout: layout)
            logger.warning("no connectors configured; jobs will search nothing", metadata: ["connectors": "\(dir)"])
        }
        let lock = try SpoolLock.acquire(layout, wait: wait, purpose: purpose)
        let processor = try Processor(layout: layout, config: config, connectors: ConnectorFactory.make(configs), logger: logger)
        let signer = try ManifestSigner.load(layout, config: config)
        var recipients: [AgeRecipient] = []
        for r in config.recipients { recipients += try AgeKeys.recipients(from: r) }
        var gid: gid_t?
        if let g = config.outboxGroup {
            guard let gr = getgrnam(g) else {
                throw DSARError(.config, "outbox_group \"\(g)\" in \(layout.config) does not exist", path: layout.config)
            }
            gid = gr.pointee.gr_gid
        }
        let bundler = ExportBundler(recipients: recipients, signer: signer, group: gid, journalHead: { .null })
        var strategies: [String: String] = [:]
        for c in configs {
            strategies[c.name] =
                c.type == .sqldump
                ? c.tableOrder.map { "\($0): \(c.tables[$0]!.erase.rawValue)" }.joined(separator: ", ") : c.rules.erase.rawValue
        }
        let eraser = ErasureReportFinisher(signer: signer, group: gid, strategies: strategies, journalHead: { .null })
        processor.finisher = { action in
            switch action {
            case .export: bundler
            case .delete: eraser
            }
        }
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
        let config = try SpoolConfig.load(layout)
        if config.signingKey == nil { try KeyMaterial.ensureSigningKey(in: layout.keys, principal: config.signerPrincipal) }
    }
}
