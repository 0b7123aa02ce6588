import Delta
import Foundation
import PoolCore

/// `serve --pool`: replays each stream into the pool through the receive core `thin-backup
/// receive` uses (`receiveStream`: same base checks, commit only after the trailer verified, checkpoints).
///
/// Receives into different devices of a userspace pool run at once: each writes its data in
/// parallel with the others and takes the pool's lock only for its metadata transaction
/// (`PoolReceiveSession`), so a stalled sender holds nothing another receive needs. Into a
/// kernel pool they run one at a time. A second receive into the same device is refused by the
/// server (409).
/// Resume: an interrupted receive keeps its last checkpoint; the sender asks the receiver's
/// status for its resume token and sends with `--resume-from` (send does that by itself for
/// tb://), or sends the whole stream again: both continue from the checkpoint.
public final class PoolStreamReceiver: StreamReceiving, @unchecked Sendable {
    public let pool: any PoolAccess
    let checkpointBytes: UInt64?
    /// The key of encrypted streams (nil: only clear streams are accepted).
    let keyring: StreamKeyring?
    private let shared: SharedReceivingPool
    private let cacheLock = NSLock()
    private var cache: [UInt64: PendingReceive?] = [:]

    public init(pool: any PoolAccess, checkpointBytes: UInt64? = 64 << 20, keyring: StreamKeyring? = nil) throws {
        // Fails now, not at the first stream, if the pool cannot be opened.
        try openReceiving(pool, readOnly: true).close()
        self.pool = pool
        self.checkpointBytes = checkpointBytes
        self.keyring = keyring
        shared = SharedReceivingPool(access: pool)
    }

    public func pendingReceive(device: UInt64) throws -> PendingReceive? {
        // Called on the server's event loop: never wait for a receive's transaction.
        guard let found = try shared.tryLocked({ try lookUp(device, in: $0) }) else {
            cacheLock.lock()
            defer { cacheLock.unlock() }
            return cache[device] ?? nil
        }
        return found
    }

    private func lookUp(_ device: UInt64, in p: any ReceivingPool) throws -> PendingReceive? {
        var pending: PendingReceive?
        if let partial = try p.receipts()[device]?.partial, try p.deviceExists(device) {
            pending = PendingReceive(streamID: partial.label ?? "", resumeOffset: partial.label == nil ? 0 : partial.streamOffset,
                                     resumeToken: partial.progress.token)
        }
        cacheLock.lock()
        cache[device] = pending
        cacheLock.unlock()
        return pending
    }

    private func refresh(_ device: UInt64) {
        _ = try? shared.withTarget { try lookUp(device, in: $0) }
    }

    public func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome {
        let tracked = TrackedSource(source)
        do {
            var o = ReceiveOptions(targetID: device)
            o.checkpointBytes = checkpointBytes
            o.keyring = keyring
            o.label = streamID  // a checkpoint records the stream id and byte offset it reached
            // offset > 0: the same stream, continued at the checkpoint's byte offset (a connection that broke);
            // else a new stream, the whole stream again, or one sent with --resume-from.
            o.resume = true
            o.continuingAt = offset > 0 ? offset : nil
            let s: ReceiveSummary
            if pool is UserspacePool {
                try shared.begin()
                defer { shared.end() }
                let session = PoolReceiveSession(shared: shared)
                defer { session.close() }
                s = try receiveStream(into: session, from: tracked, o).summary
            } else {
                // Another kind of pool (a kernel pool): one receive at a time, as one transaction stream.
                s = try shared.exclusively {
                    let target = try openReceiving(pool)
                    defer { target.close() }
                    return try receiveStream(into: target, from: tracked, o).summary
                }
            }
            refresh(device)
            let what = s.outcome == .alreadyReceived ? "already received, nothing changed" : s.outcome.rawValue
            return ReceiverOutcome(bytes: s.streamBytes,
                                   message: "thin device \(s.device): \(what) (\(s.header.isIncremental ? "incremental" : "full")); "
                                       + "digest \(s.contentDigest)")
        } catch {
            refresh(device)
            if let e = tracked.failure { throw e }  // the connection broke: interrupted, not refused
            if error is ReceiveRefused { throw error }
            throw ReceiveRefused("\(error)")
        }
    }
}
/// Remembers whether the underlying source failed (as opposed to the stream being refused).
final class TrackedSource: ByteSource {
    let inner: any ByteSource
    private(set) var failure: (any Error)?
    init(_ inner: any ByteSource) { self.inner = inner }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do { return try inner.read(into: buffer) } catch {
            failure = error
            throw error
        }
    }
}
