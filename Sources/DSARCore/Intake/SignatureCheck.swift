import Foundation

/// Signed requests (`require_signed_requests`): who may sign, and the check of `<drop>.sig`.
struct SignatureCheck: Sendable {
    /// The SSHSIG namespace of request signatures.
    static let namespace = "dsar-request"

    /// Who may sign requests.
    let signers: AllowedSigners

    /// The check the spool's config asks for: nil when signed requests are not required. Throws
    /// when they are and there is no request signers file.
    static func load(_ config: SpoolConfig, layout: SpoolLayout) throws -> SignatureCheck? {
        guard config.requireSignedRequests else { return nil }
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
        let ns = SignatureCheck.namespace
        let blob: [UInt8]
        do {
            let sig = String(decoding: try FileSystem.readFile(sigPath, limit: 64 * 1024), as: UTF8.self)
            blob = try SSHSig.verify(armored: sig, message: bytes, namespace: ns)
        } catch {
            return .failure(DSARError(.verification, "invalid signature \(name).sig: \(error)"))
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
                    .verification, "signature \(name).sig by \(SSHSig.fingerprint(of: blob)) is not accepted: \(why)"))
        }
        return .failure(
            DSARError(
                .verification,
                "signature \(name).sig is by an unknown key \(SSHSig.fingerprint(of: blob)) (not in \(signers.path))"))
    }
}
