import Hummingbird
import NIOCore

/// What every route needs from its request context: the client's address (rate limit, logs).
package protocol ServerContextProtocol: RequestContext {
    /// The remote IP address, or `unknown`.
    var clientAddress: String { get }
}

/// The request context of `dsar serve`: Hummingbird's core context plus the remote address.
package struct ServerContext: ServerContextProtocol, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    /// The connected peer.
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress
    }

    package var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}
