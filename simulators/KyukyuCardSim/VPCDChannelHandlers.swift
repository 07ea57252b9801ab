import NIOCore

/// Splits the byte stream from vpcd into ``VPCDMessage``s, using ``VPCDFrameDecoder``.
final class VPCDInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = VPCDMessage

    private var decoder = VPCDFrameDecoder()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        self.decoder.append(buffer.readableBytesView)
        while let message = self.decoder.nextMessage() {
            context.fireChannelRead(Self.wrapInboundOut(message))
        }
    }
}

/// Frames outgoing payloads (ATRs and response APDUs) with their 2-byte big-endian length.
final class VPCDOutboundHandler: ChannelOutboundHandler {
    typealias OutboundIn = [UInt8]
    typealias OutboundOut = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let payload = Self.unwrapOutboundIn(data)
        let buffer = context.channel.allocator.buffer(bytes: VPCDFraming.frame(payload))
        context.write(Self.wrapOutboundOut(buffer), promise: promise)
    }
}
