import NIOCore

/// Splits the byte stream from vpcd into ``VPCDMessage``s, using ``VPCDFrameDecoder``.
///
/// vpcd writes each frame's length and payload with two `send` calls and leaves Nagle's algorithm on, so the
/// payload waits for our ACK of the length; with Linux's delayed ACK that costs about 40 ms per APDU. Asking
/// for an immediate ACK (`TCP_QUICKACK`, which the kernel clears again after a while) on every read removes
/// that artefact, so that the simulator's own latency knob is the only delay.
final class VPCDInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = VPCDMessage

    private var decoder = VPCDFrameDecoder()

    func channelActive(context: ChannelHandlerContext) {
        Self.requestQuickAcknowledgements(context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        Self.requestQuickAcknowledgements(context)
        let buffer = Self.unwrapInboundIn(data)
        self.decoder.append(buffer.readableBytesView)
        while let message = self.decoder.nextMessage() {
            context.fireChannelRead(Self.wrapInboundOut(message))
        }
    }

    private static func requestQuickAcknowledgements(_ context: ChannelHandlerContext) {
        #if os(Linux)
            let quickAck = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 12))  // TCP_QUICKACK
            try? context.channel.syncOptions?.setOption(quickAck, value: 1)
        #endif
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
