import Foundation

/// Settings of one spool, from `spool/config.yaml` (every key optional).
public struct SpoolConfig: Sendable {
    /// Largest request file accepted, in bytes.
    public var maxRequestBytes = 1 << 20
    /// How long a drop's size and mtime must stay unchanged before it is taken.
    public var settleSeconds = 2.0
    /// How long an unparseable (possibly still uploading) drop is retried before it is rejected.
    public var rejectAfterSeconds = 600.0
    /// Regulation assumed when a request names none.
    public var defaultRegulation = Regulation.gdpr
    /// Group that may write `inbox/` and read `outbox/` (the SFTP users' group).
    public var inboxGroup: String?
    /// Directory of connector configs (relative paths are relative to the spool).
    public var connectorsDir: String?
    /// How many connectors scan at once.
    public var concurrency = 2
    /// How often `dsar watch` rescans the inbox even without inotify events.
    public var rescanSeconds = 30.0

    public init() {}

    /// Every key `config.yaml` accepts.
    public static let keys = [
        "max_request_bytes", "settle_seconds", "reject_after_seconds", "default_regulation", "inbox_group",
        "connectors", "concurrency", "rescan_seconds",
    ]

    /// Reads `config.yaml` from the spool; a missing file gives the defaults.
    public static func load(_ layout: SpoolLayout) throws -> SpoolConfig {
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
                y.problem("default_regulation", "expected one of: \(Regulation.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        c.inboxGroup = y.string("inbox_group")
        if let v = y.string("connectors") {
            c.connectorsDir = v.hasPrefix("/") ? v : layout.root + "/" + v
        }
        if let v = y.int("concurrency", range: 1...64) { c.concurrency = v }
        if let v = y.seconds("rescan_seconds", range: 0.1...86400) { c.rescanSeconds = v }
        y.rejectUnknownKeys(allowed: keys)
        try y.throwIfProblems()
        return c
    }

    /// The commented file `dsar init` writes.
    public static let template = """
        # dsar spool configuration. Every key is optional; the values shown are the defaults.
        # max_request_bytes: 1048576      # larger drops are rejected at once
        # settle_seconds: 2               # a drop must keep its size and mtime this long before it is taken
        # reject_after_seconds: 600       # an unparseable drop is retried this long, then rejected
        # default_regulation: gdpr        # gdpr (1 month) | ccpa (45 days)
        # inbox_group: dsar-sftp          # group that may write inbox/ and read outbox/
        # connectors: ../connectors       # connector configs (relative to this spool)
        # concurrency: 2                  # connectors scanned at once
        # rescan_seconds: 30              # dsar watch rescans the inbox this often besides inotify

        """
}
