import Foundation

/// Key files dsar creates: an age identity and recipient for the privacy team, and the spool's
/// Ed25519 signing key with its OpenSSH public key and `allowed_signers` line.
package enum KeyMaterial {
    /// Namespaces the signing key is allowed for in the generated `allowed_signers`.
    package static let namespaces = ["dsar-manifest", "dsar-journal"]

    /// Paths written by ``generate(into:principal:)``.
    package struct Paths: Sendable {
        package var ageIdentity: String
        package var ageRecipient: String
        package var signingKey: String
        package var signingPublicKey: String
        package var allowedSigners: String
    }

    /// Creates the signing key files in `dir` unless they exist (idempotent); returns the key.
    @discardableResult
    package static func ensureSigningKey(in dir: String, principal: String) throws -> SSHEd25519Key {
        let keyPath = dir + "/signing_key"
        if FileSystem.exists(keyPath) { return try SSHEd25519Key.load(path: keyPath) }
        try FileSystem.makeDirectory(dir, mode: 0o700)
        let key = SSHEd25519Key.generate(comment: "dsar-signing@\(ProcessInfo.processInfo.hostName)")
        try FileSystem.writeAtomically(keyPath, Array(key.privateKeyFile.utf8), mode: 0o600)
        try FileSystem.writeAtomically(keyPath + ".pub", Array((key.publicKeyLine + "\n").utf8), mode: 0o644)
        try FileSystem.writeAtomically(
            dir + "/allowed_signers",
            Array((key.allowedSignersLine(principals: [principal], namespaces: namespaces) + "\n").utf8),
            mode: 0o644)
        return key
    }

    /// The public key lines a verifier should trust for this spool: the configured signing key's
    /// (from its `.pub`, else derived from the key) and the spool's default `keys/signing_key.pub`.
    package static func trustedSigningKeys(_ layout: SpoolLayout) -> [String] {
        var out: [String] = []
        let config = try? SpoolConfig.load(layout)
        for path in [config?.signingKey, layout.keys + "/signing_key"].compactMap({ $0 }) {
            if let pub = try? FileSystem.readFile(path + ".pub") {
                out += String(decoding: pub, as: UTF8.self).split(separator: "\n").map {
                    $0.split(separator: " ").prefix(2).joined(separator: " ")
                }
            } else if let key = try? SSHEd25519Key.load(path: path) {
                out.append(key.publicKeyLine.split(separator: " ").prefix(2).joined(separator: " "))
            }
        }
        return out.filter { !$0.isEmpty }
    }

    /// `dsar keygen`: an age identity + recipient and the signing key set, in `dir` (never overwriting).
    package static func generate(into dir: String, principal: String) throws -> Paths {
        try FileSystem.makeDirectory(dir, mode: 0o700)
        let p = Paths(
            ageIdentity: dir + "/age.key", ageRecipient: dir + "/age.pub", signingKey: dir + "/signing_key",
            signingPublicKey: dir + "/signing_key.pub", allowedSigners: dir + "/allowed_signers")
        if !FileSystem.exists(p.ageIdentity) {
            let id = AgeIdentity.generate()
            try FileSystem.writeAtomically(p.ageIdentity, Array(id.fileContents().utf8), mode: 0o600)
            try FileSystem.writeAtomically(p.ageRecipient, Array((id.recipient.string + "\n").utf8), mode: 0o644)
        }
        try ensureSigningKey(in: dir, principal: principal)
        return p
    }
}
