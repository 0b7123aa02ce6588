import Delta
import Foundation
import PoolCore

/// What `receive` is asked to do.
public struct ReceiveRequest {
    public var pool: any PoolAccess
    public var source: String = "-"
    public var targetID: UInt64?
    public var resume = false
    /// Commit a resumable checkpoint every this many bytes (nil: only at the end).
    public var checkpointBytes: UInt64?
    public var quiet = true
    /// For network sources (S3 endpoint, CA file, retries).
    public var transport = TransportOptions()
    /// The key of an encrypted stream; nil refuses one.
    public var keyring: StreamKeyring?
    /// External origin for a stream whose unmapped blocks read one (`receive --origin-file`).
    public var originFile: String?

    public init(pool: any PoolAccess) { self.pool = pool }
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
    /// The volume received into, for a target that names volumes (LVM: `VG/LV`).
    public var volume: String?
}

/// Receives a stream into `req.pool`; on failure the pool is left as it was
/// (or at its last checkpoint, whose resume token the error names).
public func runReceive(_ req: ReceiveRequest, source givenSource: ByteSource? = nil) throws -> ReceiveReport {
    let pool = try openReceiving(req.pool)
    defer { pool.close() }
    let source = try givenSource ?? Transport.source(for: req.source, options: req.transport)
    var o = ReceiveOptions(targetID: req.targetID ?? pool.defaultTarget)
    o.checkpointBytes = req.checkpointBytes
    o.resume = req.resume
    o.keyring = req.keyring
    if let origin = req.originFile {
        guard let tp = pool as? ThinPool else {
            throw JobError(.usage, "\(req.pool.name): --origin-file works on a pool folder (a kernel thin device names its origin in its table)")
        }
        o.createOverOrigin = { try tp.createThin($0, virtualSize: $1, originFile: origin) }
    }
    o.quiet = req.quiet
    do {
        let s = try receiveStream(into: pool, from: source, o)
        let t = s.summary.trailer
        return ReceiveReport(outcome: s.summary.outcome.rawValue, device: s.summary.device, incremental: s.summary.header.isIncremental,
                             contentDigest: s.summary.contentDigest.description, dataBlocks: t?.dataBlocks ?? 0,
                             zeroBlocks: t?.zeroBlocks ?? 0, discardBlocks: t?.discardBlocks ?? 0,
                             streamBytes: s.summary.streamBytes, seconds: s.seconds,
                             volume: pool.describe(s.summary.device) == "thin device \(s.summary.device)" ? nil : pool.describe(s.summary.device))
    } catch {
        throw receiveFailure(error, pool, target: o.targetID)
    }
}

/// The error a receive into `pool` ends with: a refusal naming a local device said with the pool's
/// name for it (`named`), and where an interrupted receive can resume, how. A new run (no `--resume`)
/// refused because the device holds an interrupted receive says that, not that the device exists.
func receiveFailure(_ error: Error, _ pool: any ReceiveTarget, target: UInt64?) -> Error {
    guard let (dev, token) = try? resumePoint(pool, target) else { return named(error, pool) }
    if case .deviceExists(dev)? = error as? ReplayError {
        let discard = (pool as? LVMReceivingPool)?.discardHint(dev).map { "; or discard it: \($0)" } ?? ""
        return JobError("an interrupted receive into \(pool.describe(dev)) is pending: continue it with receive --resume "
            + "(the same stream, or send --resume-from \(token))\(discard); not starting another over it", cause: error)
    }
    let e = named(error, pool)
    return JobError("\(e); receive of \(pool.describe(dev)) can resume: receive --resume, or send --resume-from \(token)", cause: e)
}

/// A refusal that names a local device, said with the target's name for it (an LVM volume).
func named(_ error: Error, _ pool: any ReceiveTarget) -> Error {
    guard let e = error as? ReplayError else { return error }
    switch e {
    case let .deviceExists(d) where pool.describe(d) != plainDeviceName(d):
        return JobError("\(pool.describe(d)) already exists and was not received from this stream: refused", cause: e)
    case let .baseModified(local, base) where pool.describe(local) != plainDeviceName(local):
        return JobError("\(pool.describe(local)) (base \(base)) was modified since it was received: refused", cause: e)
    default: return error
    }
}

/// How `receiveStream` runs.
struct ReceiveOptions {
    /// Local id of the received device (default: the sender's).
    var targetID: UInt64?
    /// Commit a resumable checkpoint every this many bytes of data (nil: only at the end).
    var checkpointBytes: UInt64?
    /// The caller's name for the stream, kept with checkpoints (serve: the transport's stream id).
    var label: String?
    /// Continue the interrupted receive of the target when there is one.
    var resume = false
    /// The key of an encrypted stream; nil refuses one.
    var keyring: StreamKeyring?
    /// Makes the device (id, virtual size) for a stream whose unmapped blocks read an external origin.
    var createOverOrigin: ((UInt64, UInt64) throws -> Void)?
    /// The source starts at this byte of the interrupted stream (a connection that broke).
    var continuingAt: UInt64?
    var progressLabel = "receive"
    var quiet = true
}

/// The one receive core of `receive`, `serve` and `restore`: replays `source` into `pool`
/// (Delta's `Replayer`: base checks, commit only after the trailer verified, checkpoints).
func receiveStream(into pool: any ReceiveTarget, from source: ByteSource, _ o: ReceiveOptions) throws -> (summary: ReceiveSummary, seconds: Double) {
    let meter = ProgressMeter(label: o.progressLabel, quiet: o.quiet)
    defer { meter.finish() }
    let r = Replayer(pool: pool)
    r.targetID = o.targetID
    r.checkpointBytes = o.checkpointBytes
    r.label = o.label
    r.createOverOrigin = o.createOverOrigin
    r.keyring = o.keyring
    r.onProgress = { applied, read, expected in meter.update(done: applied, total: expected, streamBytes: read) }
    let s: ReceiveSummary
    if let offset = o.continuingAt {
        guard let dev = o.targetID, let partial = try pool.receipts()[dev]?.partial,
              partial.label == o.label, partial.streamOffset == offset else {
            throw ReceiveRefused("no interrupted receive of this stream at byte \(offset) for device \(o.targetID ?? 0)")
        }
        s = try r.receiveContinuing(from: source)
    } else {
        s = try r.receive(from: source, resume: o.resume && resumePoint(pool, o.targetID) != nil)
    }
    return (s, meter.elapsed)
}

/// The pool a receive replays into (receipts, resume points and, for a kernel pool, the
/// receive lock live with it: see `PoolAccess.receiveTarget`).
func openReceiving(_ access: any PoolAccess, readOnly: Bool = false) throws -> any ReceiveTarget {
    try access.receiveTarget(readOnly: readOnly)
}

/// The interrupted (checkpointed) receive in the pool, if any: device and resume token.
func resumePoint(_ pool: any ReceivingPool, _ dev: UInt64?) throws -> (UInt64, String)? {
    let receipts = try pool.receipts()
    let hit = dev.map { d in receipts[d].map { (d, $0) } } ?? receipts.first { $0.value.partial != nil }.map { ($0.key, $0.value) }
    guard let (d, r) = hit, let p = r.partial, try pool.deviceExists(d) else { return nil }
    return (d, p.progress.token)
}

/// `receive --resume-token`: prints the resume point of an interrupted receive.
public func resumeToken(_ access: any PoolAccess, device: UInt64?) throws -> String {
    let pool = try openReceiving(access, readOnly: true)
    defer { pool.close() }
    guard let (_, token) = try resumePoint(pool, device) else {
        throw JobError("no interrupted receive in \(access.name)")
    }
    return token
}
