import DSARCore
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// `dsar serve`: the HTTP API over one spool, run until SIGTERM/SIGINT.
///
/// It writes requests into `inbox/` and reads job records and the journal; it never takes the
/// spool lock and never runs jobs (`dsar run`/`watch` do, as for SFTP drops).
package struct ServeRuntime: Sendable {
    /// The spool it serves.
    package let spool: SpoolAccess
    /// Where it listens (`--listen`, else `serve.listen`).
    package let listen: ListenAddress
    /// `serve:` from config.yaml.
    package let settings: ServeConfig
    /// Who may do what (`serve.auth`).
    package let authorizer: any Authorizer

    /// How long in-flight requests may take to finish after SIGTERM/SIGINT before they are cancelled.
    package static let shutdownGraceSeconds = 30

    /// Checks everything that can be checked before binding: the spool, `serve:` in config.yaml,
    /// the listen address (`--listen` overrides `serve.listen`), loopback unless `allowRemote`.
    package static func prepare(
        layout: SpoolLayout, listen override: String?, allowRemote: Bool
    ) throws
        -> ServeRuntime
    {
        let spool = try SpoolAccess(layout: layout)
        let settings = spool.config.serve
        let text = override ?? settings.listen
        let listen: ListenAddress
        switch ListenAddress.parse(text) {
        case .success(let a): listen = a
        case .failure(let e): throw e
        }
        if !listen.isLoopback && !allowRemote {
            throw DSARError(
                .usage,
                "refusing to listen on \(listen): it is not a loopback address, and dsar serve speaks plain HTTP. Put nginx or Caddy in front for TLS (see the README) and listen on 127.0.0.1, or pass --allow-remote if the network is trusted"
            )
        }
        return ServeRuntime(
            spool: spool, listen: listen, settings: settings,
            authorizer: try makeAuthorizer(settings, layout: layout, config: spool.config))
    }

    /// The authorizer `serve.auth` names, wrapped in ``SignedBodyAuthorizer`` when submits must be
    /// signed (`serve.require_signature`, default the spool's `require_signed_requests`). No endpoint
    /// works anonymously unless `auth: none` is set.
    static func makeAuthorizer(_ s: ServeConfig, layout: SpoolLayout, config: SpoolConfig) throws -> any Authorizer {
        let base = try makeBaseAuthorizer(s, layout: layout)
        guard s.requireSignature ?? config.requireSignedRequests else { return base }
        return SignedBodyAuthorizer(inner: base, check: try SignatureCheck.loadSigners(config, layout: layout))
    }

    static func makeBaseAuthorizer(_ s: ServeConfig, layout: SpoolLayout) throws -> any Authorizer {
        switch s.auth {
        case nil:
            throw DSARError(
                .config,
                "\(layout.config)\(s.line > 0 ? ":\(s.line)" : ""): serve.auth is not set. No endpoint works anonymously unless `auth: none` is set: add `serve: { auth: jwt }` with its keys, or `serve: { auth: none }` behind a proxy that authenticates",
                path: layout.config)
        case .none?:
            return NoAuth()
        case .jwt?:
            guard let jwt = s.jwt else {
                throw DSARError(
                    .config,
                    "\(layout.config)\(s.line > 0 ? ":\(s.line)" : ""): serve.auth: jwt needs serve.jwt (issuer, audience, jwks_file or keys)",
                    path: layout.config)
            }
            return try JWTAuthorizer(settings: jwt, layout: layout, logger: Logger(label: "dsar.serve.jwt"))
        }
    }

    /// Binds, calls `onListening` with the bound `http://HOST:PORT` (the real port for `:0`), serves
    /// until SIGTERM/SIGINT, then lets in-flight requests finish (at most ``shutdownGraceSeconds``).
    package func run(logger: Logger, onListening: @escaping @Sendable (String) -> Void) async throws {
        if settings.auth == ServeConfig.Auth.none {
            logger.critical(
                "AUTHENTICATION IS OFF (serve.auth: none): every endpoint works anonymously; anyone who can reach \(listen) can submit requests and read job status"
            )
        }
        if authorizer is SignedBodyAuthorizer {
            logger.notice(
                "submits must be signed: POST /dsar needs an SSHSIG of the body (namespace dsar-request) in X-DSAR-Signature by a key in request_signers"
            )
        }
        let router = Router(context: ServerContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: ProblemMiddleware())
        router.add(middleware: ClientAddressMiddleware(trusted: settings.trustedProxies))
        router.add(middleware: RateLimitMiddleware(limiter: RateLimiter(perMinute: settings.rateLimit)))
        Routes(spool: spool, auth: authorizer).register(on: router)

        let header = TimeAmount.milliseconds(Int64(settings.headerTimeout * 1000))
        let idle = TimeAmount.milliseconds(Int64(settings.idleTimeout * 1000))
        let host = listen.host
        let app = Application(
            router: router,
            server: .http1(
                configuration: .init(
                    additionalChannelHandlers: [HeaderTimeoutHandler(header: header, idle: idle)], idleTimeout: idle)),
            configuration: .init(address: .hostname(host, port: listen.port), serverName: nil),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                let shown = host.contains(":") ? "[\(host)]" : host
                onListening("http://\(shown):\(port)")
            },
            logger: logger)
        var config = ServiceGroupConfiguration(
            services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .seconds(ServeRuntime.shutdownGraceSeconds)
        try await ServiceGroup(configuration: config).run()
        logger.info("dsar serve stopped")
    }
}
