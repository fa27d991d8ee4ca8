import Hummingbird
import NIOCore

/// What every route needs from its request context: the client's address (rate limit, logs).
package protocol ServerContextProtocol: RequestContext {
    /// The client's IP address (the peer's, or the one a trusted proxy forwarded), or `unknown`.
    var clientAddress: String { get }
    /// The peer's IP address, or `unknown`.
    var peerAddress: String { get }
    /// The client address a trusted proxy named in `X-Forwarded-For` (set by ``ClientAddressMiddleware``).
    var forwardedClient: String? { get set }
}

/// The request context of `dsar serve`: Hummingbird's core context plus the remote address.
package struct ServerContext: ServerContextProtocol, RemoteAddressRequestContext {
    /// Hummingbird's per-request state (logger, parameters).
    package var coreContext: CoreRequestContextStorage
    /// The connected peer.
    package let remoteAddress: SocketAddress?

    /// The context of a request on a connection.
    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    /// The client address a trusted proxy named (`serve.trusted_proxies`), nil otherwise.
    package var forwardedClient: String?

    /// The peer's IP address, or `unknown`.
    package var peerAddress: String { remoteAddress?.ipAddress ?? "unknown" }

    /// The client's IP address: the one a trusted proxy forwarded, else the peer's.
    package var clientAddress: String { forwardedClient ?? peerAddress }
}
