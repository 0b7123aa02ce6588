import Delta
import Foundation
import PoolCore

/// `serve --pool DIR`: replays streams arriving over tb:// into the pool folder, with the same
/// checks and atomicity as `thin-backup receive`. Progress is checkpointed every
/// `checkpointBytes`, so a broken connection continues at the checkpoint's byte offset.
public final class PoolReceiver: StreamReceiving, @unchecked Sendable {
    public let folder: String
    public let checkpointBytes: UInt64
    /// One receive at a time into the pool (its transactions are not shared).
    private let lock = NSLock()

    public init(folder: String, checkpointBytes: UInt64 = 64 << 20) throws {
        guard FileManager.default.fileExists(atPath: "\(folder)/metadata") else {
            throw ReceiveRefused("\(folder) is not a pool folder (no metadata file)")
        }
        self.folder = folder
        self.checkpointBytes = checkpointBytes
    }

    public func pendingReceive(device: UInt64) throws -> PendingReceive? {
        lock.lock()
        defer { lock.unlock() }
        let pool = try ThinPool(folder: folder, readOnly: true)
        defer { pool.close() }
        guard let p = try pool.receipts()[device]?.partial, let label = p.label, try pool.deviceExists(device) else { return nil }
        return PendingReceive(streamID: label, resumeOffset: p.streamOffset)
    }

    public func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ThinBackupKit.ReceiverOutcome {
        lock.lock()
        defer { lock.unlock() }
        let pool = try ThinPool(folder: folder)
        defer { pool.close() }
        let r = Replayer(pool: pool)
        r.targetID = device
        r.checkpointBytes = checkpointBytes
        r.label = streamID
        let s: Delta.ReceiveSummary
        do {
            if offset > 0 {
                guard let p = try pool.receipts()[device]?.partial, p.label == streamID, p.streamOffset == offset else {
                    throw ReceiveRefused("no interrupted receive of stream \(streamID) at byte \(offset) for device \(device)")
                }
                s = try r.receiveContinuing(from: source)
            } else {
                s = try r.receive(from: source)
            }
        } catch let e as StreamError {
            throw ReceiveRefused("\(e)")
        } catch let e as ReplayError {
            throw ReceiveRefused("\(e)")
        }
        let what = s.outcome == .alreadyReceived ? "already received, nothing changed" : "received"
        return ThinBackupKit.ReceiverOutcome(bytes: s.streamBytes,
                                            message: "thin device \(s.device): \(what); digest \(s.contentDigest)")
    }
}
