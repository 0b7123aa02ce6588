import Delta
import Foundation
import PoolCore

/// What `receive` is asked to do.
public struct ReceiveRequest {
    public var pool: String
    public var source: String = "-"
    public var targetID: UInt64?
    public var resume = false
    /// Commit a resumable checkpoint every this many bytes (nil: only at the end).
    public var checkpointBytes: UInt64?
    public var quiet = true
    /// The key of an encrypted stream; nil refuses one.
    public var keyring: StreamKeyring?
    /// External origin for a stream whose unmapped blocks read one (`receive --origin-file`).
    public var originFile: String?

    public init(pool: String) { self.pool = pool }
}

/// What `receive` did (`--json`).
public struct ReceiveReport: Codable {
    public var outcome: String
    public var device: UInt64
    public var incremental: Bool
    public var contentDigest: String
    public var dataBlocks: UInt64
    public var zeroBlocks: UInt64
    public var discardBlocks: UInt64
    public var streamBytes: UInt64
    public var seconds: Double
}

/// Receives a stream into the pool folder `req.pool`; on failure the pool is left as it was
/// (or at its last checkpoint, whose resume token the error names).
public func runReceive(_ req: ReceiveRequest, source givenSource: ByteSource? = nil) throws -> ReceiveReport {
    let pool = try ThinPool(folder: req.pool)
    defer { pool.close() }
    let source = try givenSource ?? Transport.source(for: req.source)
    let meter = ProgressMeter(label: "receive", quiet: req.quiet)
    let r = Replayer(pool: pool)
    r.targetID = req.targetID
    r.checkpointBytes = req.checkpointBytes
    r.keyring = req.keyring
    if let origin = req.originFile {
        r.createOverOrigin = { try pool.createThin($0, virtualSize: $1, originFile: origin) }
    }
    r.onProgress = { applied, read, expected in meter.update(done: applied, total: expected, streamBytes: read) }
    let resume = try req.resume && resumePoint(pool, req.targetID) != nil
    do {
        let s = try r.receive(from: source, resume: resume)
        meter.finish()
        let t = s.trailer
        return ReceiveReport(outcome: s.outcome.rawValue, device: s.device, incremental: s.header.isIncremental,
                             contentDigest: s.contentDigest.description, dataBlocks: t?.dataBlocks ?? 0,
                             zeroBlocks: t?.zeroBlocks ?? 0, discardBlocks: t?.discardBlocks ?? 0,
                             streamBytes: s.streamBytes, seconds: meter.elapsed)
    } catch {
        meter.finish()
        if let (dev, token) = try? resumePoint(pool, req.targetID) {
            throw CommandFailure("\(error); receive of thin device \(dev) can resume: receive --resume, or send --resume-from \(token)")
        }
        throw error
    }
}

/// The interrupted (checkpointed) receive in the pool, if any: device and resume token.
func resumePoint(_ pool: ThinPool, _ dev: UInt64?) throws -> (UInt64, String)? {
    let receipts = try pool.receipts()
    let hit = dev.map { d in receipts[d].map { (d, $0) } } ?? receipts.first { $0.value.partial != nil }.map { ($0.key, $0.value) }
    guard let (d, r) = hit, let p = r.partial, try pool.deviceExists(d) else { return nil }
    return (d, p.progress.token)
}

/// `receive --resume-token`: prints the resume point of an interrupted receive.
public func resumeToken(pool path: String, device: UInt64?) throws -> String {
    let pool = try ThinPool(folder: path, readOnly: true)
    defer { pool.close() }
    guard let (_, token) = try resumePoint(pool, device) else {
        throw CommandFailure("no interrupted receive in \(path)")
    }
    return token
}
