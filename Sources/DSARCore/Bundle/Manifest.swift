import Foundation

/// The signed description of an outbox entry. It sits outside the encryption, so it holds no
/// personal data: the subject only as a pseudonym, files only as names, sizes and hashes.
public struct Manifest: Sendable {
    /// The manifest format identifier.
    public static let format = "dsar-manifest/1"
    /// The SSHSIG namespace of manifest signatures (`ssh-keygen -Y verify -n dsar-manifest`).
    public static let namespace = "dsar-manifest"

    /// A file: name, exact size, SHA-256 (hex).
    public struct File: Sendable, Equatable {
        public var name: String
        public var size: Int64
        public var sha256: String
        public init(name: String, size: Int64, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    public var jobID: String
    public var requestID: String?
    public var action: RequestAction
    public var regulation: Regulation
    public var dryRun: Bool
    public var subject: String
    public var createdAt: Date
    public var bundle: File?
    public var files: [File]
    public var connectors: [JSONValue]
    public var recipients: [String]
    public var signerPrincipal: String
    public var signerKey: String
    /// The audit journal head (sequence and hash) when the entry was sealed.
    public var journalHead: JSONValue
    /// Extra top-level members (the erasure results of a delete job).
    public var extra: [JSONMember]

    public init(
        jobID: String, requestID: String?, action: RequestAction, regulation: Regulation, dryRun: Bool, subject: String,
        createdAt: Date, bundle: File?, files: [File], connectors: [JSONValue], recipients: [String], signerPrincipal: String,
        signerKey: String, journalHead: JSONValue, extra: [JSONMember] = []
    ) {
        self.jobID = jobID
        self.requestID = requestID
        self.action = action
        self.regulation = regulation
        self.dryRun = dryRun
        self.subject = subject
        self.createdAt = createdAt
        self.bundle = bundle
        self.files = files
        self.connectors = connectors
        self.recipients = recipients
        self.signerPrincipal = signerPrincipal
        self.signerKey = signerKey
        self.journalHead = journalHead
        self.extra = extra
    }

    static func fileJSON(_ f: File) -> JSONValue {
        .obj(["name": .string(f.name), "size": .int(f.size), "sha256": .string(f.sha256)])
    }

    /// The manifest as a JSON document (member order fixed).
    public var json: JSONValue {
        var m = JSONValue.members([
            "format": .string(Manifest.format),
            "job_id": .string(jobID),
            "request_id": .str(requestID),
            "action": .string(action.rawValue),
            "regulation": .string(regulation.rawValue),
            "dry_run": .bool(dryRun),
            "subject_pseudonym": .string(subject),
            "created_at": .string(Timestamp.format(createdAt)),
            "tool": .string("dsar \(DSARVersion.string)"),
            "bundle": bundle.map(Manifest.fileJSON) ?? .null,
            "files": .array(files.map(Manifest.fileJSON)),
            "connectors": .array(connectors),
            "recipients": .array(recipients.map { .string($0) }),
            "signer": .obj([
                    "principal": .string(signerPrincipal), "public_key": .string(signerKey), "namespace": .string(Manifest.namespace),
                ]),
            "journal_head": journalHead,
        ])
        m += extra
        return .object(m)
    }

    /// The exact bytes that are signed and published.
    public var bytes: [UInt8] { JSONWriter(indent: 2).encode(json) + [0x0A] }
}

/// Signs manifests (and receipts, and journal checkpoints) with the spool's Ed25519 key.
public struct ManifestSigner: Sendable {
    public let key: SSHEd25519Key
    public let principal: String

    public init(key: SSHEd25519Key, principal: String) {
        self.key = key
        self.principal = principal
    }

    /// Loads the key configured in the spool (default `keys/signing_key`).
    public static func load(_ layout: SpoolLayout, config: SpoolConfig) throws -> ManifestSigner {
        let path = config.signingKey ?? layout.keys + "/signing_key"
        guard FileSystem.exists(path) else {
            throw DSARError(
                .config,
                "no signing key at \(path): create one with `dsar keygen --out \(layout.keys)` (or set signing_key in \(layout.config))",
                path: path)
        }
        return ManifestSigner(key: try SSHEd25519Key.load(path: path), principal: config.signerPrincipal)
    }

    /// The armored SSHSIG over `bytes` in `namespace`.
    public func sign(_ bytes: [UInt8], namespace: String = Manifest.namespace) throws -> String {
        try SSHSig.sign(bytes, key: key, namespace: namespace)
    }
}
