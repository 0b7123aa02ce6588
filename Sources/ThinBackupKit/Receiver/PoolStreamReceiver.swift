import Delta
import Foundation
import PoolCore

/// `serve --pool DIR`: replays each stream into the pool folder, as `receive` does (atomic; an
/// incremental only onto its unchanged base). One receive at a time (the pool is one process's).
/// Interrupted receives are not resumable here: the sender sends the stream again.
public final class PoolStreamReceiver: StreamReceiving, @unchecked Sendable {
    public let pool: String
    private let lock = NSLock()

    public init(pool: String) throws {
        guard FileManager.default.fileExists(atPath: "\(pool)/metadata") else {
            throw ReceiveRefused("\(pool) holds no pool (no metadata file)")
        }
        self.pool = pool
    }

    public func pendingReceive(device: UInt64) throws -> PendingReceive? { nil }

    public func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiveSummary {
        guard offset == 0 else { throw ReceiveRefused("this receiver does not resume; send the whole stream again") }
        lock.lock()
        defer { lock.unlock() }
        let p: ThinPool
        do { p = try ThinPool(folder: pool) } catch { throw ReceiveRefused("cannot open the pool \(pool): \(error)") }
        defer { p.close() }
        let r = Replayer(pool: p)
        r.targetID = device
        let watched = WatchedSource(source)
        do {
            let s = try r.receive(from: watched)
            return ReceiveSummary(bytes: s.streamBytes, message: "thin device \(s.device): \(s.outcome.rawValue); digest \(s.contentDigest)")
        } catch {
            if watched.failed { throw error }
            throw ReceiveRefused("\(error)")
        }
    }
}

/// Remembers whether the underlying source failed (a broken connection, not a bad stream).
private final class WatchedSource: ByteSource {
    let inner: any ByteSource
    var failed = false
    init(_ inner: any ByteSource) { self.inner = inner }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        do { return try inner.read(into: buffer) } catch {
            failed = true
            throw error
        }
    }
}
