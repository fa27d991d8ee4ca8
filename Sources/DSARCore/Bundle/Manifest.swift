import Foundation

/// The signed description of an outbox entry. It sits outside the encryption, so it holds no
/// personal data: the subject only as a pseudonym, files only as names, sizes and hashes.
package struct Manifest: Sendable {
    /// The manifest format identifier.
    package static let format = "dsar-manifest/1"
    /// The SSHSIG namespace of manifest signatures (`ssh-keygen -Y verify -n dsar-manifest`).
    package static let namespace = "dsar-manifest"

    /// A file: name, exact size, SHA-256 (hex).
    package struct File: Sendable, Equatable {
        package var name: String
        package var size: Int64
        package var sha256: String
        package init(name: String, size: Int64, sha256: String) {
            self.name = name
            self.size = size
            self.sha256 = sha256
        }
    }

    package var jobID: String
    package var requestID: String?
    package var action: RequestAction
    package var regulation: Regulation
    package var dryRun: Bool
    package var subject: String
    package var createdAt: Date
    package var bundle: File?
    package var files: [File]
    package var connectors: [JSONValue]
    package var recipients: [String]
    package var signerPrincipal: String
    package var signerKey: String
    /// The audit journal head (sequence and hash) when the entry was sealed.
    package var journalHead: JSONValue
    /// Extra top-level members (the erasure results of a delete job).
    package var extra: [JSONMember]

    package init(
        jobID: String, requestID: String?, action: RequestAction, regulation: Regulation, dryRun: Bool, subject: String,
        createdAt: Date, bundle: File?, files: [File], connectors: [JSONValue], recipients: [String],
        signerPrincipal: String,
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
    package var json: JSONValue {
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
                "principal": .string(signerPrincipal), "public_key": .string(signerKey),
                "namespace": .string(Manifest.namespace),
            ]),
            "journal_head": journalHead,
        ])
        m += extra
        return .object(m)
    }

    /// The exact bytes that are signed and published.
    package var bytes: [UInt8] { JSONWriter(indent: 2).encode(json) + [0x0A] }
}

/// Signs manifests (and receipts, and journal checkpoints) with the spool's Ed25519 key.
package struct ManifestSigner: Sendable {
    package let key: SSHEd25519Key
    package let principal: String

    package init(key: SSHEd25519Key, principal: String) {
        self.key = key
        self.principal = principal
    }

    /// Loads the key configured in the spool (default `keys/signing_key`).
    package static func load(_ layout: SpoolLayout, config: SpoolConfig) throws -> ManifestSigner {
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
    package func sign(_ bytes: [UInt8], namespace: String = Manifest.namespace) throws -> String {
        try SSHSig.sign(bytes, key: key, namespace: namespace)
    }
}
