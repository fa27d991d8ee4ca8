import Foundation

/// Signed requests (`require_signed_requests`): who may sign, and the check of `<drop>.sig`.
package struct SignatureCheck: Sendable {
    /// The SSHSIG namespace of request signatures.
    package static let namespace = "dsar-request"

    /// Who may sign requests.
    package let signers: AllowedSigners

    /// A check against these signers.
    package init(signers: AllowedSigners) { self.signers = signers }

    /// The check the spool's config asks for: nil when signed requests are not required. Throws
    /// when they are and there is no request signers file.
    static func load(_ config: SpoolConfig, layout: SpoolLayout) throws -> SignatureCheck? {
        guard config.requireSignedRequests else { return nil }
        return try loadSigners(config, layout: layout)
    }

    /// The check against `request_signers` (default `keys/request_signers`), whether or not signed
    /// requests are required. Throws when the file is missing or not valid.
    package static func loadSigners(_ config: SpoolConfig, layout: SpoolLayout) throws -> SignatureCheck {
        let path = config.requestSigners ?? layout.keys + "/request_signers"
        guard FileSystem.exists(path) else {
            throw DSARError(
                .config,
                "require_signed_requests is on but there is no request signers file at \(path): create it in OpenSSH allowed_signers format (principal ssh-ed25519 AAAA…), or set request_signers in \(layout.config)",
                path: path)
        }
        return SignatureCheck(signers: try AllowedSigners(contentsOf: path))
    }

    /// Checks `sigPath` (the drop `name`'s `.sig`) over the request bytes: a valid SSHSIG in
    /// namespace `dsar-request` by a key that `request_signers` allows now. Returns the signer's principal.
    func verify(_ name: String, sigPath: String, bytes: [UInt8], now: Date) -> Result<String, DSARError> {
        let sig: String
        do {
            sig = String(decoding: try FileSystem.readFile(sigPath, limit: 64 * 1024), as: UTF8.self)
        } catch {
            return .failure(DSARError(.verification, "invalid signature \(name).sig: \(error)"))
        }
        return verify(name + ".sig", armored: sig, bytes: bytes, now: now)
    }

    /// Checks an armored SSHSIG (`what` names it in messages, e.g. `X.json.sig`) over `bytes`: valid,
    /// in namespace `dsar-request`, by a key that `request_signers` allows now. Returns the principal.
    package func verify(_ what: String, armored sig: String, bytes: [UInt8], now: Date) -> Result<String, DSARError> {
        let ns = SignatureCheck.namespace
        let blob: [UInt8]
        do {
            blob = try SSHSig.verify(armored: sig, message: bytes, namespace: ns)
        } catch {
            return .failure(DSARError(.verification, "invalid signature \(what): \(error)"))
        }
        let principals = signers.principals(for: blob, namespace: ns, at: now)
        if let p = principals.first { return .success(p) }
        let reasons = signers.entries.filter { $0.keyBlob == blob }.flatMap { e in
            e.principals.split(separator: ",").map(String.init).compactMap {
                signers.check(principal: $0, keyBlob: blob, namespace: ns, at: now)
            }
        }
        if let why = reasons.first {
            return .failure(
                DSARError(
                    .verification, "signature \(what) by \(SSHSig.fingerprint(of: blob)) is not accepted: \(why)"))
        }
        return .failure(
            DSARError(
                .verification,
                "signature \(what) is by an unknown key \(SSHSig.fingerprint(of: blob)) (not in \(signers.path))"))
    }
}
