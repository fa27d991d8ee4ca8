import DSARCore
import Hummingbird

/// What a caller may do (the JWT `scope` claim's values).
package enum Scope: String, Sendable, CaseIterable {
    /// `POST /dsar`.
    case submit = "dsar:submit"
    /// `GET /dsar/{jobId}`, `GET /dsar/{jobId}/events`, `GET /metrics`.
    case read = "dsar:read"
    /// `GET /dsar/{jobId}/download` (and the file route it redirects to).
    case download = "dsar:download"
}

/// Who made a request, as far as the authorizer could tell.
package struct Principal: Sendable, Equatable {
    /// The authenticated name (JWT `sub`, SSHSIG principal); nil when anonymous (`auth: none`).
    package var name: String?
    /// The scopes granted.
    package var scopes: Set<Scope>
    /// The armored SSHSIG over the submitted body that ``Authorizer/authorizeBody(_:request:principal:)``
    /// verified (`X-DSAR-Signature`): written beside the request as its `.sig`.
    package var bodySignature: String?

    /// A principal with these scopes.
    package init(name: String?, scopes: Set<Scope>, bodySignature: String? = nil) {
        self.name = name
        self.scopes = scopes
        self.bodySignature = bodySignature
    }

    /// Nobody in particular, allowed everything (`auth: none`).
    package static let anonymous = Principal(name: nil, scopes: Set(Scope.allCases))
}

/// Decides whether a request may use a route. Every route but `/healthz` calls it first, with the
/// route's scope. Throw ``Problem/unauthorized(_:)`` (401: no or bad credentials) or
/// ``Problem/forbidden(_:)`` (403: valid credentials without the scope).
///
/// A JWT authorizer (issue 17, part "auth") implements this in its own file and is chosen in
/// ``ServeRuntime/makeAuthorizer(_:layout:config:)`` from `serve.auth` (``JWTAuthorizer`` for
/// `auth: jwt`, wrapped in ``SignedBodyAuthorizer`` when submits must be signed).
package protocol Authorizer: Sendable {
    /// Checks the request's credentials (headers only: the body has not been read yet).
    func authorize(_ request: Request, scope: Scope) async throws -> Principal

    /// Checks the complete body of a submit (e.g. an SSHSIG in `X-DSAR-Signature` over it, by a key
    /// in `request_signers`) and returns the principal to record as submitter. Called after the body
    /// was read within `max_request_bytes` and before anything is written.
    func authorizeBody(_ body: [UInt8], request: Request, principal: Principal) async throws -> Principal
}

extension Authorizer {
    /// No body check: the principal from ``authorize(_:scope:)``.
    package func authorizeBody(_ body: [UInt8], request: Request, principal: Principal) async throws -> Principal {
        principal
    }
}

/// `auth: none`: every request is let through as ``Principal/anonymous``. The server logs loudly at
/// start that it runs without authentication.
package struct NoAuth: Authorizer {
    /// The `auth: none` authorizer.
    package init() {}
    /// Lets every request through as ``Principal/anonymous``.
    package func authorize(_ request: Request, scope: Scope) async throws -> Principal { .anonymous }
}

extension Problem {
    /// 401: no valid credentials.
    package static func unauthorized(_ detail: String) -> Problem {
        Problem(
            .unauthorized, "unauthorized", title: "Authentication required", detail: detail,
            headers: [.wwwAuthenticate: "Bearer"])
    }

    /// 403: valid credentials that do not allow this.
    package static func forbidden(_ detail: String) -> Problem {
        Problem(.forbidden, "forbidden", title: "Not allowed", detail: detail)
    }
}
