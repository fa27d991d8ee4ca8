import Hummingbird
import NIOCore

/// What every route needs from its request context: the client's address (rate limit, logs).
package protocol ServerContextProtocol: RequestContext {
    /// The remote IP address, or `unknown`.
    var clientAddress: String { get }
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

    /// The remote IP address, or `unknown`.
    package var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
