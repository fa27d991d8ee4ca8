import DSARCore
import Foundation
import Hummingbird

/// Signed submits (`serve.require_signature`, default the spool's `require_signed_requests`): a
/// `POST /dsar` body must carry an SSHSIG over its exact bytes in `X-DSAR-Signature`, made with
/// `ssh-keygen -Y sign -n dsar-request` by a key `request_signers` allows: the same trust as a signed
/// SFTP drop.
///
/// The header holds the armored signature with its line breaks removed (`ssh-keygen -Y sign -f KEY
/// -n dsar-request < body.json | tr -d '\n'`), or only its base64 part. The server checks it before
/// anything is written (401 otherwise), then writes it beside the request as `<name>.sig`; intake
/// verifies it again like a drop's and records its principal as the signer (job record `signer`,
/// journal `request.received`). Other routes are authorized by the wrapped authorizer alone.
package struct SignedBodyAuthorizer: Authorizer {
    /// The header carrying the signature.
    package static let header = "X-DSAR-Signature"

    /// Authorizes the request itself (JWT or none).
    let inner: any Authorizer
    /// `request_signers`.
    let check: SignatureCheck

    /// Wraps `inner`, requiring body signatures by `check`'s signers.
    package init(inner: any Authorizer, check: SignatureCheck) {
        self.inner = inner
        self.check = check
    }

    /// The wrapped authorizer's decision.
    package func authorize(_ request: Request, scope: Scope) async throws -> Principal {
        try await inner.authorize(request, scope: scope)
    }

    /// Verifies `X-DSAR-Signature` over `body`; the principal becomes the signer's.
    package func authorizeBody(_ body: [UInt8], request: Request, principal: Principal) async throws -> Principal {
        var p = try await inner.authorizeBody(body, request: request, principal: principal)
        func refuse(_ why: String) -> Problem {
            Problem(
                .unauthorized, "invalid-signature", title: "A valid request signature is required", detail: why,
                instance: request.uri.path,
                errors: [.init(field: "X-DSAR-Signature", message: why)],
                headers: [.wwwAuthenticate: "SSHSIG realm=\"dsar\", namespace=\"\(SignatureCheck.namespace)\""])
        }
        let name = SignedBodyAuthorizer.header.lowercased()
        guard let value = request.headers.first(where: { $0.name.canonicalName == name })?.value else {
            throw refuse(
                "this server accepts only signed requests: send the body's SSHSIG in X-DSAR-Signature (ssh-keygen -Y sign -f KEY -n \(SignatureCheck.namespace) < body.json | tr -d '\\n')"
            )
        }
        guard let armored = SignedBodyAuthorizer.armor(value) else {
            throw refuse("X-DSAR-Signature is not an armored SSH signature (-----BEGIN SSH SIGNATURE-----…)")
        }
        switch check.verify("X-DSAR-Signature", armored: armored, bytes: body, now: DSARClock.now()) {
        case .success(let signer):
            p.name = signer
            p.bodySignature = armored
            return p
        case .failure(let e):
            // The signers file's path stays in the server's own log, not in the answer.
            throw refuse(e.message.replacingOccurrences(of: check.signers.path, with: "request_signers"))
        }
    }

    /// The header value as an armored SSHSIG file (70-character lines, as `ssh-keygen` writes it);
    /// nil when it is not base64 inside optional armor lines.
    static func armor(_ value: String) -> String? {
        let begin = "-----BEGIN SSH SIGNATURE-----"
        let end = "-----END SSH SIGNATURE-----"
        var s = value.trimmingCharacters(in: .whitespaces)
        if s.hasPrefix(begin) {
            guard s.hasSuffix(end) else { return nil }
            s = String(s.dropFirst(begin.count).dropLast(end.count))
        }
        s = s.filter { !$0.isWhitespace }
        guard !s.isEmpty, s.utf8.count <= 48 << 10,
            s.utf8.allSatisfy({ c in
                (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || (0x30...0x39).contains(c) || c == 0x2B
                    || c == 0x2F || c == 0x3D
            })
        else { return nil }
        var lines: [Substring] = []
        var rest = Substring(s)
        while !rest.isEmpty {
            lines.append(rest.prefix(70))
            rest = rest.dropFirst(70)
        }
        return begin + "\n" + lines.joined(separator: "\n") + "\n" + end + "\n"
    }
}
