import Delta
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ReceiverRequest

/// One connection of the receiver: routes requests, checks the token, and bridges a PUT body
/// into a `BoundedPipe` read by the receive thread. Runs on the channel's event loop only.
final class ReceiverHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    final class Shared: Sendable {
        let configuration: ReceiverConfiguration
        let registry: ReceiveRegistry
        let metrics = ReceiverMetrics()
        init(configuration: ReceiverConfiguration, registry: ReceiveRegistry) {
            self.configuration = configuration
            self.registry = registry
        }
    }

    private enum State {
        /// Waiting for a request head.
        case idle
        /// Answered already (or will not use the body): drop body bytes; close at the end if asked.
        case discarding(closeAtEnd: Bool, dropped: UInt64)
        /// A PUT body flowing into a receive.
        case streaming(Streaming)
        /// The body ended; waiting for the receive to finish before answering.
        case awaitingResult(Streaming)
    }

    // Mutated on the event loop only; the receive thread touches just `pipe` (thread-safe).
    private final class Streaming: @unchecked Sendable {
        let device: UInt64
        let pipe: BoundedPipe
        var bytes: UInt64 = 0
        var inputBroken = false
        init(device: UInt64, pipe: BoundedPipe) {
            self.device = device
            self.pipe = pipe
        }
    }

    private let shared: Shared
    private var state = State.idle
    private var pendingRead = false
    private var context: ChannelHandlerContext?
    private var logger: Logger

    init(shared: Shared) {
        self.shared = shared
        logger = shared.configuration.logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let remote = context.channel.remoteAddress { logger[metadataKey: "peer"] = "\(remote)" }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): onHead(context, head)
        case .body(let buffer): onBody(context, buffer)
        case .end: onEnd(context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .streaming(let s), .awaitingResult(let s):
            s.inputBroken = true
            s.pipe.fail(TransportError(.connection, "the sender's connection closed before the end of the stream"))
        default: break
        }
        context.fireChannelInactive()
    }

    /// Read idle (see `ReceiverConfiguration.idleTimeout`): a stalled sender, or an idle connection.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let e = event as? IdleStateHandler.IdleStateEvent, e == .read else {
            return context.fireUserInboundEventTriggered(event)
        }
        // Reading paused because the receive is behind: the sender is not at fault.
        if pendingRead { return }
        let limit = shared.configuration.idleTimeout
        switch state {
        case .streaming(let s):
            logger.warning("device \(s.device): nothing from the sender for \(limit.nanoseconds / 1_000_000_000) s: closing; the receive stays resumable")
            s.inputBroken = true
            s.pipe.fail(TransportError(.connection, "the sender sent nothing for \(limit.nanoseconds / 1_000_000_000) s (idle timeout)"))
            context.close(promise: nil)
        case .awaitingResult:
            return  // the body is complete; the receive is working
        case .idle, .discarding:
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.warning("connection error: \(ReceiverTLS.handshakeFailure(error) ?? "\(error)")")
        shared.metrics.error("connection")
        context.close(promise: nil)
    }

    private func onHead(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        let config = shared.configuration
        switch ReceiverRequest.parse(head, token: config.token, maxHeaderBytes: config.maxHeaderBytes) {
        case .failure(let r):
            if r.status == .unauthorized { logger.warning("refused \(head.method) \(head.uri): missing or wrong bearer token") }
            let extra = r.headers.compactMap { h -> (String, String)? in
                guard let colon = h.firstIndex(of: ":") else { return nil }
                return (String(h[..<colon]), String(h[h.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
            }
            reject(context, r.status, r.message, extra: extra)
        case .success(.metrics):
            // Counters only (no device names, no paths): served without the token, as exporters are.
            state = .discarding(closeAtEnd: false, dropped: 0)
            respondText(context, .ok, shared.metrics.render(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .success(.status(let device)):
            let status = shared.registry.status(device)
            state = .discarding(closeAtEnd: false, dropped: 0)
            respond(context, .ok, json: status, close: false)
        case .success(.receive(let device, let streamID, let offset)):
            beginReceive(context, device, streamID: streamID, offset: offset)
        }
    }

    private func beginReceive(_ context: ChannelHandlerContext, _ device: UInt64, streamID: String, offset: UInt64) {
        let registry = shared.registry
        let pipe = BoundedPipe(capacity: shared.configuration.bufferBytes)
        guard registry.begin(device, .init(streamID: streamID, startOffset: offset, pipe: pipe)) else {
            return reject(context, .conflict, "device \(device) is already receiving a stream")
        }
        if offset > 0 {
            let pending = try? registry.receiver.pendingReceive(device: device)
            guard let pending, pending.streamID == streamID, pending.resumeOffset == offset else {
                registry.release(device)
                let point = pending.map { "its resume point is byte \($0.resumeOffset)" } ?? "it has no interrupted receive"
                return reject(context, .conflict, "cannot resume device \(device) at byte \(offset): \(point)")
            }
        }
        logger[metadataKey: "device"] = "\(device)"
        logger[metadataKey: "stream"] = "\(streamID)"
        logger.info("receiving device \(device) stream \(streamID) from byte \(offset)")
        shared.metrics.receiveStarted()
        let streaming = Streaming(device: device, pipe: pipe)
        state = .streaming(streaming)
        let loop = context.eventLoop
        let bound = NIOLoopBound(self, eventLoop: loop)
        pipe.onDrain = { loop.execute { bound.value.resumeReading() } }
        let receiver = registry.receiver
        let worker = Worker<Void>(name: "receive-\(device)") {
            let result = Result { try receiver.receive(device: device, streamID: streamID, offset: offset, from: pipe) }
            loop.execute { bound.value.receiveEnded(streaming, result) }
        }
        registry.track(worker)
    }

    private func onBody(_ context: ChannelHandlerContext, _ buffer: ByteBuffer) {
        switch state {
        case .streaming(let s):
            s.bytes += UInt64(buffer.readableBytes)
            shared.metrics.received(buffer.readableBytes)
            if s.bytes > shared.configuration.maxStreamBytes {
                s.pipe.fail(ReceiveRefused("the stream is larger than this server accepts (\(shared.configuration.maxStreamBytes) bytes)"))
                return
            }
            buffer.withUnsafeReadableBytes { s.pipe.append($0) }
        case .discarding(let close, let dropped):
            let d = dropped + UInt64(buffer.readableBytes)
            state = .discarding(closeAtEnd: close, dropped: d)
            if d > 64 << 20 { context.close(promise: nil) }
        case .idle, .awaitingResult:
            break
        }
    }

    private func onEnd(_ context: ChannelHandlerContext) {
        switch state {
        case .streaming(let s):
            s.pipe.close()
            state = .awaitingResult(s)
        case .discarding(let close, _):
            state = .idle
            if close { context.close(promise: nil) }
        case .idle, .awaitingResult:
            break
        }
    }

    /// On the event loop, after the receive thread returned.
    private func receiveEnded(_ s: Streaming, _ result: Result<ReceiverOutcome, any Error>) {
        let registry = shared.registry
        let bodyEnded: Bool
        if case .awaitingResult = state { bodyEnded = true } else { bodyEnded = false }
        switch result {
        case .success(let summary):
            logger.info("device \(s.device): \(summary.message)")
            registry.end(s.device, state: "complete", message: summary.message)
            shared.metrics.receiveEnded("complete")
            finishExchange(bodyEnded: bodyEnded, .ok,
                           ["state": "complete", "bytes": "\(summary.bytes)", "message": summary.message], failed: false)
        case .failure(let error):
            if s.inputBroken {
                logger.warning("device \(s.device): interrupted: \(error)")
                registry.end(s.device, state: "interrupted", message: "\(error)")
                shared.metrics.receiveEnded("interrupted")
                return  // the connection is gone: nobody to answer
            }
            let refused = error is ReceiveRefused
            let message = "\(error)"
            logger.error("device \(s.device): \(refused ? "refused" : "failed"): \(message)")
            registry.end(s.device, state: refused ? "refused" : "failed", message: message)
            shared.metrics.receiveEnded(refused ? "refused" : "failed")
            s.pipe.fail(ReceiveRefused(message))
            let tooLarge = message.contains("larger than this server accepts")
            finishExchange(bodyEnded: bodyEnded, tooLarge ? .payloadTooLarge : refused ? .unprocessableEntity : .internalServerError,
                           ["state": refused ? "refused" : "failed", "message": message], failed: true)
        }
    }

    private func finishExchange(bodyEnded: Bool, _ status: HTTPResponseStatus, _ body: [String: String], failed: Bool) {
        guard let context else { return }
        if bodyEnded {
            state = .idle
            respond(context, status, json: body, close: failed)
        } else {
            // Answer now; drop the rest of the body (curl stops sending when it sees the answer).
            state = .discarding(closeAtEnd: true, dropped: 0)
            respond(context, status, json: body, close: false, connectionClose: true)
        }
        resumeReading()
    }

    // MARK: outbound

    func read(context: ChannelHandlerContext) {
        if case .streaming(let s) = state, s.pipe.isFull {
            pendingRead = true
            return
        }
        context.read()
    }

    private func resumeReading() {
        guard pendingRead, let context else { return }
        if case .streaming(let s) = state, s.pipe.isFull { return }
        pendingRead = false
        context.read()
    }

    private func reject(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ message: String,
                        extra: [(String, String)] = []) {
        switch status {
        case .unauthorized: shared.metrics.error("unauthorized")
        case .notFound: shared.metrics.error("not_found")
        case .conflict: shared.metrics.error("conflict")
        default: shared.metrics.error("bad_request")
        }
        state = .discarding(closeAtEnd: true, dropped: 0)
        respond(context, status, json: ["message": message], close: false, connectionClose: true, extra: extra)
    }

    private func respondText(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ body: [UInt8], contentType: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: "\(body.count)")
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func respond<T: Encodable>(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, json: T,
                                       close: Bool, connectionClose: Bool = false, extra: [(String, String)] = []) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(json)) ?? Data("{}".utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(data.count + 1)")
        if close || connectionClose { headers.add(name: "Connection", value: "close") }
        for (n, v) in extra { headers.add(name: n, value: v) }
        var buffer = context.channel.allocator.buffer(capacity: data.count + 1)
        buffer.writeBytes(data)
        buffer.writeInteger(UInt8(ascii: "\n"))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        let channel = context.channel
        // A client that does not take the answer within the write timeout loses the connection.
        let deadline = context.eventLoop.scheduleTask(in: shared.configuration.writeTimeout) { channel.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            deadline.cancel()
            if close { channel.close(promise: nil) }
        }
    }
}
