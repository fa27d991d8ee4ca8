import Foundation

/// Settings of one spool, from `spool/config.yaml` (every key optional).
package struct SpoolConfig: Sendable {
    /// Largest request file accepted, in bytes.
    package var maxRequestBytes = 1 << 20
    /// How long a drop's size and mtime must stay unchanged before it is taken.
    package var settleSeconds = 2.0
    /// How long an unparseable (possibly still uploading) drop is retried before it is rejected.
    package var rejectAfterSeconds = 600.0
    /// Regulation assumed when a request names none.
    package var defaultRegulation = Regulation.gdpr
    /// Group that may write `inbox/` and read `outbox/` (the SFTP users' group).
    package var inboxGroup: String?
    /// Directory of connector configs (relative paths are relative to the spool).
    package var connectorsDir: String?
    /// How many connectors scan at once.
    package var concurrency = 2
    /// Most jobs searched in one pass over the sources; a larger batch is split (bounds memory).
    package var maxBatchJobs = 1000
    /// How often `dsar watch` rescans the inbox even without inotify events.
    package var rescanSeconds = 30.0
    /// Who can open export bundles: `age1…` recipients or files (age-keygen identity or recipients files).
    package var recipients: [String] = []
    /// The Ed25519 key (OpenSSH format) that signs manifests, receipts and journal checkpoints.
    package var signingKey: String?
    /// The principal named in `allowed_signers` for the signing key.
    package var signerPrincipal = "dsar"
    /// Group owning published outbox entries (the privacy team's SFTP group).
    package var outboxGroup: String?
    /// Published entries older than this many days are removed by `dsar run`.
    package var outboxRetentionDays = 30
    /// Accept `X.json` only with `X.json.sig`, an SSHSIG (namespace `dsar-request`) by a key in `requestSigners`.
    package var requireSignedRequests = false
    /// The allowed_signers file for request signatures.
    package var requestSigners: String?
    /// Commands run when a job ends or becomes overdue (`notify:`).
    package var notifiers: [NotifierConfig] = []
    /// A job found RUNNING after this many interrupted runs is set aside as FAILED (a poison job).
    package var maxCrashes = 3
    /// Days before an open job's deadline when the `due_soon` notification fires (0: never).
    package var dueSoonDays = 5
    /// Whether `dsar deliver` closes the case as answered once the subject has the bundle.
    package var closeOnDeliver = false
    /// Custom identifier types (besides email, user_id, phone, ip) that requests and connectors may use.
    package var identifierTypes: [String] = []

    /// Every identifier type requests and connectors may name: the built-in ones and `identifier_types`.
    package var knownIdentifierTypes: Set<String> { ConnectorCatalog.builtinTypes.union(identifierTypes) }
    /// The command that receives every signed journal checkpoint (`witness:`, `witness_timeout_seconds`).
    package var witness: WitnessConfig?
    /// The subject report: controller, DPO, supervisory authority, rights text, languages, templates
    /// (`controller:`, `dpo:`, `supervisory_authority:`, `rights:`, `languages:`, `report_templates:`).
    package var report = ReportSettings()
    /// Languages requests may ask for (`"language": "de"`); the first is the spool default.
    package var languages: [String] { report.languages }
    /// `dsar serve` (the HTTP API): `serve:`.
    package var serve = ServeConfig()

    package init() {}

    /// Every key `config.yaml` accepts.
    package static let keys = [
        "max_request_bytes", "settle_seconds", "reject_after_seconds", "default_regulation", "inbox_group",
        "connectors", "concurrency", "rescan_seconds", "recipients", "signing_key", "signer_principal", "outbox_group",
        "outbox_retention_days", "require_signed_requests", "request_signers", "notify", "max_batch_jobs",
        "identifier_types", "max_crashes", "due_soon_days", "close_on_deliver",
        "witness", "witness_timeout_seconds", "serve",
        // The subject report (ReportSettings).
        "controller", "dpo", "supervisory_authority", "rights", "languages", "report_templates",
    ]

    /// Reads `config.yaml` from the spool; a missing file gives the defaults.
    package static func load(_ layout: SpoolLayout) throws -> SpoolConfig {
        var c = SpoolConfig()
        guard FileSystem.exists(layout.config) else { return c }
        let y = try YAMLMap.load(file: layout.config)
        if let v = y.int("max_request_bytes", range: 64...(64 << 20)) { c.maxRequestBytes = v }
        if let v = y.seconds("settle_seconds", range: 0...3600) { c.settleSeconds = v }
        if let v = y.seconds("reject_after_seconds", range: 0...(30 * 86400)) { c.rejectAfterSeconds = v }
        if let v = y.string("default_regulation") {
            if let r = Regulation(rawValue: v) {
                c.defaultRegulation = r
            } else {
                y.problem(
                    "default_regulation",
                    "expected one of: \(Regulation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        c.inboxGroup = y.string("inbox_group")
        if let v = y.string("connectors") {
            c.connectorsDir = v.hasPrefix("/") ? v : layout.root + "/" + v
        }
        if let v = y.int("concurrency", range: 1...64) { c.concurrency = v }
        if let v = y.int("max_batch_jobs", range: 1...1_000_000) { c.maxBatchJobs = v }
        if let v = y.seconds("rescan_seconds", range: 0.1...86400) { c.rescanSeconds = v }
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : layout.root + "/" + p }
        if let r = y.strings("recipients") {
            c.recipients = r.map { $0.hasPrefix("age1") ? $0 : resolve($0) }
            for (k, v) in c.recipients.enumerated() where !v.hasPrefix("age1") && !FileSystem.exists(v) {
                y.problem("recipients", "recipient file \(r[k]) does not exist (looked for \(v))")
            }
        }
        if let v = y.string("signing_key") { c.signingKey = resolve(v) }
        if let v = y.string("signer_principal") { c.signerPrincipal = v }
        c.outboxGroup = y.string("outbox_group")
        if let v = y.int("outbox_retention_days", range: 1...3650) { c.outboxRetentionDays = v }
        if let v = y.bool("require_signed_requests") { c.requireSignedRequests = v }
        if let v = y.string("request_signers") { c.requestSigners = resolve(v) }
        c.notifiers = NotifierConfig.parse(y)
        if let v = y.int("max_crashes", range: 1...100) { c.maxCrashes = v }
        if let v = y.int("due_soon_days", range: 0...60) { c.dueSoonDays = v }
        if let v = y.bool("close_on_deliver") { c.closeOnDeliver = v }
        if let types = y.strings("identifier_types") {
            for t in types where !IdentifierNormalizer.isValidTypeName(t) {
                y.problem(
                    "identifier_types",
                    "\"\(t)\" is not an identifier type name; use lower-case letters, digits and '_' (e.g. loyalty_card)"
                )
            }
            c.identifierTypes = types
        }
        c.witness = WitnessConfig.parse(y)
        c.report = ReportSettings.parse(y, resolve: resolve)
        c.serve = ServeConfig.parse(y)
        y.rejectUnknownKeys(allowed: keys)
        try y.throwIfProblems()
        return c
    }

    /// The commented file `dsar init` writes.
    package static let template = """
        # dsar spool configuration. Every key is optional; the values shown are the defaults.
        require_signed_requests: true     # X.json is taken only with X.json.sig (ssh-keygen -Y sign -n dsar-request)
        # request_signers: keys/request_signers   # allowed_signers file of who may sign requests
        # max_request_bytes: 1048576      # larger drops are rejected at once
        # settle_seconds: 2               # a drop must keep its size and mtime this long before it is taken
        # reject_after_seconds: 600       # an unparseable drop is retried this long, then rejected
        # default_regulation: gdpr        # gdpr (1 month) | ccpa (45 days)
        # inbox_group: dsar-sftp          # group that may write inbox/ and read outbox/
        # connectors: ../connectors       # connector configs (relative to this spool)
        # concurrency: 2                  # connectors scanned at once
        # max_batch_jobs: 1000            # jobs searched per pass over the sources (bounds memory)
        # rescan_seconds: 30              # dsar watch rescans the inbox this often besides inotify
        # recipients: [ keys/age.pub ]    # who can open export bundles: age1… keys or files (relative to the spool)
        # signing_key: keys/signing_key   # Ed25519 (OpenSSH) key signing manifests, receipts, checkpoints
        # signer_principal: dsar          # the principal in allowed_signers
        # outbox_group: dsar-sftp         # group owning published outbox entries (files 0640)
        # outbox_retention_days: 30       # dsar run removes older outbox entries
        # identifier_types: [ loyalty_card ]   # custom identifier types besides email, user_id, phone, ip
        # max_crashes: 3                  # a job RUNNING when this many runs died is set aside as FAILED
        # due_soon_days: 5                # the due_soon notification fires this many days before an open job's deadline (0: never)
        # close_on_deliver: false         # dsar deliver closes the case as answered (else: dsar close JOB --reason answered)
        # notify:                         # run when a job ends or becomes overdue; JSON summary on stdin
        #   - name: privacy-mail
        #     on: [completed, failed, partial, overdue]   # also: due_soon, rejected
        #     timeout_seconds: 30
        #     command: /etc/dsar/notify-mail.sh   # a string runs with /bin/sh -c; a list is argv
        # witness: logger -t dsar-witness     # gets every signed journal checkpoint on stdin, to keep outside the spool
        # witness_timeout_seconds: 30

        # The report the data subject reads (index.html and README.txt in every export bundle), GDPR
        # Art. 15(1)(a)-(h). REPLACE these example facts with your organisation's: the report states them.
        # Free text may be one string or a map per language ({ en: …, de: … }).
        controller:
          name: Example Shop GmbH
          address: Musterstraße 1, 10115 Berlin, Germany
          contact: privacy@shop.example
        dpo:
          name: Dr. Erika Beispiel
          contact: dpo@shop.example
        supervisory_authority:
          name:
            en: Berlin Commissioner for Data Protection and Freedom of Information
            de: Berliner Beauftragte für Datenschutz und Informationsfreiheit
          url: https://www.datenschutz-berlin.de/
        languages: [ en, de ]             # a request may ask for one ("language": "de"); the first is the default
        # rights: { en: "…", de: "…" }    # replaces the built-in text on the subject's rights
        # report_templates: templates     # DIR/<lang>/index.html.mustache, page.html.mustache, README.txt.mustache

        # dsar serve (the HTTP API). No endpoint works anonymously unless `auth: none` is set.
        # serve:
        #   listen: 127.0.0.1:8080        # loopback only unless dsar serve --allow-remote; put TLS in front
        #   auth: jwt                     # none | jwt
        #   rate_limit: 600               # requests per minute per client address (429 beyond)
        #   header_timeout: 10            # seconds to send a request's head
        #   idle_timeout: 60              # seconds a keep-alive connection may stay idle
        #   download_ttl: 3600            # seconds a download link stays valid

        """
}

extension SpoolConfig {
    /// The group id of `outbox_group` (nil when not set), for the files published into the outbox.
    package func outboxGroupID(_ layout: SpoolLayout) throws -> gid_t? {
        guard let g = outboxGroup else { return nil }
        guard let gr = getgrnam(g) else {
            throw DSARError(.config, "outbox_group \"\(g)\" in \(layout.config) does not exist", path: layout.config)
        }
        return gr.pointee.gr_gid
    }
}
