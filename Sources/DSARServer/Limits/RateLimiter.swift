import DSARCore
import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// A per-client token bucket: `perMinute` requests per minute per client address, in bursts of at
/// most `perMinute`. Behind a reverse proxy listed in `serve.trusted_proxies` the client is the
/// address the proxy forwarded (``ClientAddressMiddleware``); behind any other proxy every request
/// counts for the proxy's address.
package final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: Double
    }

    let perMinute: Int
    let buckets = NIOLockedValueBox([String: Bucket]())
    /// At most this many clients are remembered; beyond, full buckets are forgotten first.
    static let maxClients = 50_000

    /// A limiter allowing `perMinute` requests per minute per client (0: no limit).
    package init(perMinute: Int) { self.perMinute = perMinute }

    /// nil when the request may go ahead, else the seconds to wait before the next one would be allowed.
    package func acquire(client: String, now: Double = ProcessInfo.processInfo.systemUptime) -> Int? {
        guard perMinute > 0 else { return nil }
        let capacity = Double(perMinute)
        let rate = capacity / 60
        return buckets.withLockedValue { all in
            var b = all[client] ?? Bucket(tokens: capacity, updated: now)
            b.tokens = min(capacity, b.tokens + (now - b.updated) * rate)
            b.updated = now
            if b.tokens >= 1 {
                b.tokens -= 1
                all[client] = b
                if all.count > RateLimiter.maxClients {
                    RateLimiter.prune(&all, capacity: capacity, rate: rate, now: now)
                }
                return nil
            }
            all[client] = b
            return max(1, Int(((1 - b.tokens) / rate).rounded(.up)))
        }
    }

    static func prune(_ all: inout [String: Bucket], capacity: Double, rate: Double, now: Double) {
        all = all.filter { $0.value.tokens + (now - $0.value.updated) * rate < capacity }
        if all.count > maxClients { all.removeAll(keepingCapacity: true) }
    }
}

/// Answers `429` with `Retry-After` once a client exceeds `serve.rate_limit` (`/healthz` is exempt,
/// so a load balancer's probe never locks itself out).
struct RateLimitMiddleware<Context: ServerContextProtocol>: RouterMiddleware {
    let limiter: RateLimiter

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        if request.uri.path != "/healthz", let wait = limiter.acquire(client: context.clientAddress) {
            throw Problem(
                .tooManyRequests, "rate-limited", title: "Too many requests",
                detail:
                    "this client sent more than \(limiter.perMinute) requests per minute (serve.rate_limit); retry after \(wait) s",
                instance: request.uri.path, headers: [.retryAfter: String(wait)])
        }
        return try await next(request, context)
    }
}

/// Names the client of a request that came through a trusted proxy (`serve.trusted_proxies`): the
/// rightmost `X-Forwarded-For` address that is not itself a trusted proxy. From any other peer the
/// header is ignored, so a client cannot choose its own rate-limit bucket.
struct ClientAddressMiddleware<Context: ServerContextProtocol>: RouterMiddleware {
    let trusted: [IPNetwork]

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    )
        async throws -> Response
    {
        let peer = context.peerAddress
        guard trusted.trusts(peer) else { return try await next(request, context) }
        let forwarded = request.headers.filter { $0.name.canonicalName == "x-forwarded-for" }.map(\.value)
        var context = context
        let client = trusted.client(peer: peer, forwardedFor: forwarded)
        if client != peer { context.forwardedClient = client }
        return try await next(request, context)
    }
}
