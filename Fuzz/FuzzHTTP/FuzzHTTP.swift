import NIOCore
import NIOEmbedded
import NIOHTTP1
import ReceiverRequest

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPEntry(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 { fuzzHTTP(data, size) }

/// Decides every request head it sees, as serve's handler does first.
final class Decide: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            _ = ReceiverRequest.parse(head, token: "fuzz-token", maxHeaderBytes: 16 << 10)
        }
    }
}

/// Input: raw bytes a client sends on one connection (requests, pipelined or broken).
func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let channel = EmbeddedChannel()
    do {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(Decide())
        var buffer = channel.allocator.buffer(capacity: size)
        buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: size))
        try channel.writeInbound(buffer)
    } catch {}
    _ = try? channel.finish()
    return 0
}
