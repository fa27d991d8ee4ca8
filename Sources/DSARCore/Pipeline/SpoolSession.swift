import Foundation
import Logging

/// Opens a spool for processing: creates it on first use, reads its config, takes the lock and
/// assembles the pipeline (connectors, finishers, audit journal).
package struct SpoolSession {
    package let layout: SpoolLayout
    package let config: SpoolConfig
    package let lock: SpoolLock
    package let processor: Processor
    /// The audit journal (torn tail already recovered).
    package let journal: Journal

    /// Opens an existing spool (only `dsar init` creates one), holding the spool lock until this
    /// value is dropped.
    /// `configuration` is how the processor runs (the command line's overrides of the spool config).
    package static func open(
        _ layout: SpoolLayout, connectorsDir: String? = nil, wait: Bool, purpose: String,
        configuration: Processor.Configuration = Processor.Configuration(),
        logger: Logger
    ) throws -> SpoolSession {
        try SpoolSession.requireExisting(layout)
        let config = try SpoolConfig.load(layout)
        if config.signingKey == nil {
            try KeyMaterial.ensureSigningKey(in: layout.keys, principal: config.signerPrincipal)
        }
        try SpoolSession.checkPermissions(layout)
        // A signing key readable by others is a permission error (exit 77), reported before the
        // configuration check; any other problem with it is one of the configuration problems.
        do { _ = try ManifestSigner.load(layout, config: config) } catch let e as DSARError where e.code == .permissions
        { throw e } catch {}
        // Every problem of the connectors and settings, before anything is claimed (exit 78).
        let dir = try ConnectorLocator.directory(explicit: connectorsDir, layout: layout)
        let preflight = Preflight.check(layout: layout, config: config, connectorsDir: dir, full: false)
        if !preflight.problems.isEmpty { throw ConfigProblems(preflight.problems) }
        let configs = preflight.configs
        // The spool's report facts the subject reports would lack, or state from dsar init's example
        // (each connector's missing facts: `dsar connectors check`).
        for w in ReportSettings.warnings([], config: config, configFile: layout.config) {
            logger.warning("subject report: \(w.key): \(w.message)", metadata: ["file": "\(w.file)"])
        }
        let signer = try ManifestSigner.load(layout, config: config)
        let lock = try SpoolLock.acquire(layout, wait: wait, purpose: purpose)
        let journal = try Journal(layout: layout, signer: signer)
        if let w = config.witness { journal.witness = Witness(config: w, scratchDir: layout.tmp, logger: logger) }
        let torn = try journal.recoverTornTail()
        if torn.tornBytes > 0 {
            logger.warning(
                "journal: a torn last line from a crash was moved aside",
                metadata: ["file": "\(torn.tornFile ?? "")", "bytes": "\(torn.tornBytes)"])
        }
        let connectors = ConnectorRegistry.make(configs)
        var recipients: [AgeRecipient] = []
        for r in config.recipients { recipients += try AgeKeys.recipients(from: r) }
        let gid = try config.outboxGroupID(layout)
        let bundler = ExportBundler(
            recipients: recipients, signer: signer, group: gid, journalHead: { journal.headJSON }, report: config.report
        )
        // What each connector's erasure does, as the connector reports it (per table for SQL dumps).
        var strategies: [String: [EraseStrategyEntry]] = [:]
        for case let c as any ErasingConnector in connectors { strategies[c.name] = c.eraseStrategies }
        let eraser = ErasureReportFinisher(
            signer: signer, group: gid, strategies: strategies, journalHead: { journal.headJSON })
        let processor = try Processor(
            layout: layout, config: config, configuration: configuration, connectors: connectors,
            finisher: { action in
                switch action {
                case .export: bundler
                case .delete: eraser
                }
            },
            notifications: Notifications(layout: layout, notifiers: config.notifiers, audit: journal, logger: logger),
            audit: journal,
            logger: logger)
        return SpoolSession(layout: layout, config: config, lock: lock, processor: processor, journal: journal)
    }

    /// Throws `.notFound` (exit 66) when `layout` is not an initialised spool: a mistyped `--spool`
    /// must not silently create an empty spool (and report an empty inbox).
    package static func requireExisting(_ layout: SpoolLayout) throws {
        guard layout.exists else {
            throw DSARError(
                .notFound,
                "no spool at \(layout.root) (dsar init creates one: dsar init --spool \(layout.root)); check --spool or DSAR_SPOOL",
                path: layout.root)
        }
    }

    /// Refuses to run on a spool whose key directory or journal is group/world-writable, or whose
    /// private keys are readable by others, naming the path and the fix.
    package static func checkPermissions(_ layout: SpoolLayout) throws {
        for dir in [layout.keys, layout.journal] {
            guard let st = try FileSystem.lstatus(dir) else { continue }
            if st.kind != .directory {
                throw DSARError(.permissions, "\(dir) must be a directory, not a \(st.kind.rawValue)", path: dir)
            }
            if st.mode & 0o022 != 0 {
                throw DSARError(
                    .permissions,
                    "\(dir) is writable by group or others (mode \(String(st.mode & 0o777, radix: 8))); anyone could forge keys or journal entries. Run: chmod go-w \(dir)",
                    path: dir)
            }
        }
        for name in (try? FileSystem.list(layout.keys)) ?? []
        where !name.hasSuffix(".pub") && !name.hasSuffix("signers") && !name.hasPrefix(".") {
            let path = layout.keys + "/" + name
            guard let st = try FileSystem.lstatus(path), st.kind == .regular || st.kind == .symlink else { continue }
            try SecretFile.check(path, what: "the private key")
        }
    }

    /// Creates the spool directories, a commented `config.yaml` and the pseudonym key (idempotent).
    package static func initialize(_ layout: SpoolLayout, group: String? = nil) throws {
        var group = group
        if group == nil, FileSystem.exists(layout.config) { group = try SpoolConfig.load(layout).inboxGroup }
        try layout.create(group: group)
        if !FileSystem.exists(layout.config) {
            try FileSystem.writeAtomically(layout.config, Array(SpoolConfig.template.utf8), mode: 0o640)
        }
        _ = try Pseudonymizer.load(layout)
        let config = try SpoolConfig.load(layout)
        if config.signingKey == nil {
            try KeyMaterial.ensureSigningKey(in: layout.keys, principal: config.signerPrincipal)
        }
    }
}
