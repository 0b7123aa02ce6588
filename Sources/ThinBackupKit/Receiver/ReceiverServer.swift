import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Limits and secrets of a `serve` receiver.
public struct ReceiverConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port (read it back from `ReceiverServer.port`).
    public var port: Int
    public var token: String
    /// The largest stream accepted, in bytes.
    public var maxStreamBytes: UInt64 = 16 << 40
    /// Request line plus headers, in bytes; larger requests get 431.
    public var maxHeaderBytes = 16 << 10
    /// Bytes buffered between the connection and the receive before reading pauses.
    public var bufferBytes = 4 << 20
    public var logger = Logger(label: "thin-backup.serve")
    /// When set, the listener speaks only TLS (senders use tbs://); plain connections fail their handshake.
    public var tls: ReceiverTLS?
    /// A connection that sends nothing for this long is closed: between requests, mid-headers,
    /// or mid-stream (the receive then ends interrupted, resumable). Time spent with reading
    /// paused because the receive is behind does not count. Default 5 minutes: a slow WAN
    /// moves some bytes far more often than that; a dead one does not.
    public var idleTimeout: TimeAmount = .seconds(300)
    /// An answer the client does not take within this long closes the connection.
    public var writeTimeout: TimeAmount = .seconds(300)
}

/// The HTTP receiver behind `thin-backup serve`, on SwiftNIO: authenticates with a bearer token,
/// accepts one stream per device at a time and hands it to a `StreamReceiving` on its own
/// thread, with backpressure (reading pauses while the receive is behind).
///
/// API (JSON answers; every request needs `Authorization: Bearer TOKEN`):
/// - `GET /v1/devices/D/receive`: `{"device","state","offset","streamID","message"}`, state one of
///   idle, receiving, interrupted (offset = resume point), complete, refused, failed.
/// - `PUT /v1/devices/D/receive` with `X-TB-Stream-Id` and `X-TB-Offset` (0 or the resume
///   point): the stream's bytes from that offset. 200 when received and committed; 401 bad
///   token; 409 device busy or wrong resume offset; 413 too large; 422 stream refused.
/// No part of a request names a file: the device number is the only thing it chooses.
public final class ReceiverServer: @unchecked Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    let registry: ReceiveRegistry
    public let port: Int
    public let configuration: ReceiverConfiguration

    private init(group: MultiThreadedEventLoopGroup, channel: any Channel, registry: ReceiveRegistry,
                 configuration: ReceiverConfiguration) {
        self.group = group
        self.channel = channel
        self.registry = registry
        self.configuration = configuration
        port = channel.localAddress?.port ?? configuration.port
    }

    /// Binds and starts serving; returns once the socket listens.
    public static func start(_ configuration: ReceiverConfiguration, receiver: any StreamReceiving) throws -> ReceiverServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let registry = ReceiveRegistry(receiver: receiver)
        let shared = ReceiverHandler.Shared(configuration: configuration, registry: registry)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        try ch.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    try ch.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: configuration.idleTimeout))
                    try ch.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try ch.pipeline.syncOperations.addHandler(ReceiverHandler(shared: shared))
                }
            }
        do {
            let channel = try bootstrap.bind(host: configuration.host, port: configuration.port).wait()
            let server = ReceiverServer(group: group, channel: channel, registry: registry, configuration: configuration)
            configuration.logger.info("thin-backup \(ThinBackupVersion.current) listening on \(configuration.host):\(server.port)\(configuration.tls == nil ? "" : " (TLS)")")
            return server
        } catch {
            try? group.syncShutdownGracefully()
            throw TransportError(.usage, "serve: cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
    }

    /// Stops listening, drops every connection (running receives see their input break and
    /// keep their resume point) and waits for the receive threads to end.
    public func stop() {
        registry.failAll(TransportError(.connection, "the server is stopping"))
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
        registry.waitForWorkers()
    }

    /// Blocks until the listening socket closes.
    public func wait() throws {
        try channel.closeFuture.wait()
    }
}
