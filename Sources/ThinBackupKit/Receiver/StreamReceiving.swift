import Delta

/// What `serve` needs from a receive: replay a stream into a device, and say where an
/// interrupted one can continue. The `receive` command's replay implements it for a pool
/// (same atomicity and base checks as `thin-backup receive`); `SpoolReceiver` keeps streams
/// as files. The server only moves bytes and bookkeeping; all stream knowledge is here.
public protocol StreamReceiving: AnyObject, Sendable {
    /// The interrupted receive into `device` that can be continued, if any.
    func pendingReceive(device: UInt64) throws -> PendingReceive?

    /// Replays the stream `streamID` into `device`, reading `source` (whose first byte is the
    /// stream's byte `offset`: 0 for a new receive, `pendingReceive(device:)?.resumeOffset` to
    /// continue one). Returns after the stream ended and the result is committed.
    ///
    /// Throws `ReceiveRefused` when the stream itself is unacceptable (wrong base, corrupt,
    /// another block size): the receiver is left as it was. When `source` throws (the connection
    /// broke), keeps what is needed to continue and rethrows.
    func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome
}

/// An interrupted receive: the stream it belongs to and the byte offset to continue from.
public struct PendingReceive: Sendable, Codable, Equatable {
    public var streamID: String
    public var resumeOffset: UInt64
    /// For a pool: the token `send --resume-from` takes (the stream restarts at a checkpoint).
    public var resumeToken: String?
}

/// What a finished receive reports back to the sender.
public struct ReceiverOutcome: Sendable, Codable, Equatable {
    public var bytes: UInt64
    public var message: String
}

/// The stream was refused (the reason reaches the sender's error line).
public struct ReceiveRefused: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
