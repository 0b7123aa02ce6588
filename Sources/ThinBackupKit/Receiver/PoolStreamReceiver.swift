import Delta
import Foundation
import PoolCore

/// `serve --pool`: replays each stream into the pool exactly as `thin-backup receive` does
/// (`runReceive`: same base checks, commit only after the trailer verified, checkpoints).
///
/// Receives run one at a time (the pool is one transaction stream); the server already refuses a
/// second receive into the same device with 409, and receives into other devices wait here.
/// Resume: an interrupted receive keeps its last checkpoint; the sender asks the receiver's
/// status for its resume token and sends with `--resume-from` (send does that by itself for
/// tb://), or sends the whole stream again: both continue from the checkpoint.
public final class PoolStreamReceiver: StreamReceiving, @unchecked Sendable {
    public let pool: String
    let checkpointBytes: UInt64?
    private let lock = NSLock()
    private let cacheLock = NSLock()
    private var cache: [UInt64: PendingReceive?] = [:]

    public init(pool: String, checkpointBytes: UInt64? = 64 << 20) throws {
        guard FileManager.default.fileExists(atPath: "\(pool)/metadata") else {
            throw CommandFailure("serve: \(pool) is not a pool folder (no metadata file)")
        }
        // Fails now, not at the first stream, if the pool cannot be opened.
        try ThinPool(folder: pool, readOnly: true).close()
        self.pool = pool
        self.checkpointBytes = checkpointBytes
    }

    public func pendingReceive(device: UInt64) throws -> PendingReceive? {
        // Called on the server's event loop: never wait for a running receive.
        guard lock.try() else {
            cacheLock.lock()
            defer { cacheLock.unlock() }
            return cache[device] ?? nil
        }
        defer { lock.unlock() }
        return try lookUp(device)
    }

    private func lookUp(_ device: UInt64) throws -> PendingReceive? {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        let pending = try resumePoint(p, device).map { PendingReceive(streamID: "", resumeOffset: 0, resumeToken: $0.1) }
        cacheLock.lock()
        cache[device] = pending
        cacheLock.unlock()
        return pending
    }

    public func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome {
        guard offset == 0 else {
            throw ReceiveRefused("a pool receive continues from a whole or --resume-from stream, not from byte \(offset)")
        }
        lock.lock()
        defer { lock.unlock() }
        let tracked = TrackedSource(source)
        var req = ReceiveRequest(pool: pool)
        req.targetID = device
        req.checkpointBytes = checkpointBytes
        req.resume = try lookUp(device) != nil
        do {
            let r = try runReceive(req, source: tracked)
            _ = try? lookUp(device)
            let what = r.outcome == "alreadyReceived" ? "already received, nothing changed" : r.outcome
            return ReceiverOutcome(bytes: r.streamBytes,
                                  message: "thin device \(r.device): \(what) (\(r.incremental ? "incremental" : "full")); "
                                      + "digest \(r.contentDigest)")
        } catch {
            _ = try? lookUp(device)
            if let e = tracked.failure { throw e }  // the connection broke: interrupted, not refused
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
