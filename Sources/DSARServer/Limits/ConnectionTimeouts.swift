import NIOCore
import NIOHTTPTypes

/// The header timeout: a connection is closed unless a complete request head arrives within
/// `header` seconds of opening it (slow-loris clients), and within `idle` seconds of the end of the
/// previous response (keep-alive). Hummingbird's own idle timeout (`serve.idle_timeout`) also closes
/// connections that stop sending in the middle of a request.
final class HeaderTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let header: TimeAmount
    let idle: TimeAmount
    var pending: Scheduled<Void>?
    /// Requests whose head arrived and whose response has not ended (pipelining: may be > 1).
    var outstanding = 0

    init(header: TimeAmount, idle: TimeAmount) {
        self.header = header
        self.idle = idle
    }

    func handlerAdded(context: ChannelHandlerContext) { arm(context, header) }

    func handlerRemoved(context: ChannelHandlerContext) {
        pending?.cancel()
        pending = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            outstanding += 1
            pending?.cancel()
            pending = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            outstanding = max(0, outstanding - 1)
            if outstanding == 0 { arm(context, idle) }
        }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.cancel()
        pending = nil
        context.fireChannelInactive()
    }

    private func arm(_ context: ChannelHandlerContext, _ after: TimeAmount) {
        pending?.cancel()
        let channel = context.channel
        pending = context.eventLoop.scheduleTask(in: after) { channel.close(promise: nil) }
    }
}
