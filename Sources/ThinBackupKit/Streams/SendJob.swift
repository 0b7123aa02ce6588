import Delta
import Foundation
import PoolCore

/// What `send` is asked to do.
public struct SendRequest {
    public var pool: any PoolAccess
    public var target: UInt64
    public var base: UInt64?
    public var destination: String
    public var level: Int32 = 3
    public var workers: Int32 = Int32(ProcessInfo.processInfo.activeProcessorCount)
    /// Reserve a metadata snapshot (the default), the held one (-m), or none (--live-metadata).
    public var metadataMode = MetadataSnapMode.reserve
    public var baseDigest: Digest128?
    public var resumeToken: String?
    public var virtualSize: UInt64?
    public var quiet = true
    /// The command named as the metadata snapshot's owner while it is held.
    public var command = "send"
    /// For network destinations (token file, S3 endpoint, retries).
    public var transport = TransportOptions()
    /// Encrypt the stream (format version 2); a passphrase keyring derives with the stream id as salt.
    public var keyring: StreamKeyring?
    /// Encrypt with this key (a repository's, already derived); wins over `keyring`.
    public var key: StreamKey?
}

/// What `send` did (`--json`).
public struct SendReport: Codable {
    public var device: UInt64
    public var base: UInt64?
    public var streamID: String
    public var targetDigest: String?
    public var dataBlocks: UInt64
    public var zeroBlocks: UInt64
    public var discardBlocks: UInt64
    public var rawBytes: UInt64
    public var streamBytes: UInt64
    public var seconds: Double
}

/// Runs a send: opens the pool's metadata in the request's mode (reserving a metadata snapshot
/// and releasing it, the held one, or live), checks the devices are not in use, and hands the
/// view, the data reader and the sink to Delta's `sendDevice`.
public func runSend(_ req: SendRequest, sink givenSink: ByteSink? = nil) throws -> SendReport {
    let session = try req.pool.openMetadata(req.metadataMode, command: req.command)
    defer { session.close() }
    let view = session.view
    let devs = [req.target] + (req.base.map { [$0] } ?? [])
    if req.metadataMode != .live { try session.checkUnchanged(devs, "differs from the metadata snapshot") }

    let blocks = try req.pool.dataReader(blockSize: Int(view.superblock.dataBlockSize) * 512)
    var o = DeviceSendOptions(virtualSize: try req.virtualSize ?? req.pool.virtualSize(of: req.target),
                              streamID: randomDigest(), sourcePool: try req.pool.identity(create: false))
    o.level = req.level
    o.workers = Int(req.workers)
    o.resumeAt = try req.resumeToken.map { t -> StreamProgress in
        guard let p = StreamProgress(token: t) else { throw JobError(.usage, "--resume-from: not a resume token: \(t)") }
        return p
    }
    o.readsOrigin = try req.pool.externalOrigin(of: req.target) != nil
    o.key = try req.key ?? req.keyring?.keyForWriting(salt: (o.resumeAt?.streamID ?? o.streamID).bytes)
    o.baseDigest = req.baseDigest
    if let b = req.base, o.baseDigest == nil {
        let hint = ProgressMeter(label: "reading base \(b) for its digest", quiet: req.quiet)
        o.baseDigest = try deviceDigest(view, b, reader: blocks) { hint.update(done: $0, total: 0, streamBytes: 0) }
        hint.finish()
    }
    let meter = ProgressMeter(label: "send", quiet: req.quiet)
    o.onProgress = { done, expected, written in meter.update(done: done, total: expected, streamBytes: written) }
    // The final check runs before the sink completes, so a stream of a device in use is never published.
    let sink = FinishHook(try givenSink ?? Transport.sink(for: req.destination, options: {
        var t = req.transport
        if t.targetDevice == nil { t.targetDevice = req.target }
        return t
    }())) { try session.checkUnchanged(devs, "was written during the send") }
    let summary: SendSummary
    do {
        summary = try sendDevice(view: view, target: req.target, base: req.base, reader: blocks, sink: sink, options: o)
    } catch let e as DeviceSendError {
        throw JobError("\(e) (pass --size)", cause: e)
    }
    meter.finish()
    let t = summary.trailer
    return SendReport(device: req.target, base: req.base, streamID: summary.header.streamID.description,
                      targetDigest: summary.targetDigest?.description, dataBlocks: t.dataBlocks, zeroBlocks: t.zeroBlocks,
                      discardBlocks: t.discardBlocks, rawBytes: t.rawBytes, streamBytes: summary.streamBytes,
                      seconds: meter.elapsed)
}

/// A sink that runs a check before passing `finish()` on, both in one uninterruptible step.
final class FinishHook: ByteSink {
    let inner: ByteSink
    let check: () throws -> Void
    init(_ inner: ByteSink, _ check: @escaping () throws -> Void) {
        self.inner = inner
        self.check = check
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try inner.write(bytes) }
    /// Publishing the stream (a rename into place, an upload's completion) is one step a signal
    /// does not cut, and one that never starts once a signal's cleanups have begun.
    func finish() throws {
        try Interrupts.shared.uninterruptible("publishing the stream") {
            try check()
            try inner.finish()
        }
    }
}
