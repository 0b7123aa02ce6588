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
    /// For network destinations (token file, S3 endpoint, retries).
    public var transport = TransportOptions()

    public init(pool: any PoolAccess, target: UInt64, destination: String) {
        self.pool = pool
        self.target = target
        self.destination = destination
    }
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

/// Runs a send: metadata snapshot (reserved and released, or the held one), diff, read, compress, write.
public func runSend(_ req: SendRequest, sink givenSink: ByteSink? = nil) throws -> SendReport {
    let session = try req.pool.openMetadata(req.metadataMode)
    defer { session.close() }
    let view = session.view
    let devs = [req.target] + (req.base.map { [$0] } ?? [])
    if req.metadataMode != .live { try session.checkUnchanged(devs, "differs from the metadata snapshot") }

    let sb = view.superblock
    let bs = Int(sb.dataBlockSize) * 512
    let blocks = try req.pool.dataReader(blockSize: bs)
    let target = try view.details(of: req.target)
    let size = try req.virtualSize ?? req.pool.virtualSize(of: req.target)
    let meter = ProgressMeter(label: "send", quiet: req.quiet)

    var baseIdentity: SnapshotIdentity?
    var baseDigest = Digest128.zero
    if let b = req.base {
        baseIdentity = SnapshotIdentity(b, try view.details(of: b))
        if let d = req.baseDigest {
            baseDigest = d
        } else {
            let hint = ProgressMeter(label: "reading base \(b) for its digest", quiet: req.quiet)
            baseDigest = try deviceDigest(view, b, reader: blocks) { hint.update(done: $0, total: 0, streamBytes: 0) }
            hint.finish()
        }
    }
    let resume = try req.resumeToken.map { t -> StreamProgress in
        guard let p = StreamProgress(token: t) else { throw CommandFailure("--resume-from: not a resume token: \(t)") }
        return p
    }
    let header = StreamHeader(
        blockSize: UInt32(bs), virtualSize: size, level: req.level,
        streamID: resume?.streamID ?? randomDigest(), sourcePool: try req.pool.identity(create: false),
        target: SnapshotIdentity(req.target, target), base: baseIdentity, baseFingerprint: baseDigest,
        expectedBlocks: req.base == nil ? target.mappedBlocks : 0)
    // The final check runs before the sink completes, so a stream of a device in use is never published.
    let sink = FinishHook(try givenSink ?? Transport.sink(for: req.destination, options: {
        var o = req.transport
        if o.targetDevice == nil { o.targetDevice = req.target }
        return o
    }())) { try session.checkUnchanged(devs, "was written during the send") }
    // Frames are independent: one single-threaded compressor per core, two records in flight each.
    // At most 32 MiB of raw record buffers (as much again for frames), at least one slot.
    let slots = max(1, min(max(1, Int(req.workers)) * 2, (32 << 20) / Int(header.maxRecordRaw)))
    let compressors = try (0..<slots).map { _ in try ZstdCompressor(level: req.level, workers: 0) }
    let sender = StreamSender(header: header, reader: blocks, compressors: compressors,
                              sink: sink, baseDigest: baseDigest, resumeAt: resume)
    let expected = header.expectedBlocks * UInt64(bs)
    sender.onProgress = { done, written in meter.update(done: done, total: expected, streamBytes: written) }
    let blockCount = header.blockCount
    let summary: SendSummary
    do {
        summary = try sender.send { body in
            let check: (DeltaRun) throws -> Void = { run in
                var run = run
                if run.kind == .leftOnly && run.end > blockCount {
                    // Gone because the target is smaller than its base: the receiver truncates to the new size.
                    guard run.begin < blockCount else { return }
                    run.length = blockCount - run.begin
                }
                guard run.end <= blockCount else {
                    throw CommandFailure("thin device \(req.target) maps block \(run.end - 1), beyond its size of \(size) bytes (pass --size)")
                }
                try body(run)
            }
            if let b = req.base {
                try MappingDiff(view: view, left: b, right: req.target).changes(check)
            } else {
                try mappingRuns(view, req.target, check)
            }
        }
    } catch let e as MappingDiffError {
        throw CommandFailure("\(e)")
    }
    meter.finish()
    let t = summary.trailer
    return SendReport(device: req.target, base: req.base, streamID: summary.header.streamID.description,
                      targetDigest: summary.targetDigest?.description, dataBlocks: t.dataBlocks, zeroBlocks: t.zeroBlocks,
                      discardBlocks: t.discardBlocks, rawBytes: t.rawBytes, streamBytes: summary.streamBytes,
                      seconds: meter.elapsed)
}

/// A sink that runs a check before passing `finish()` on.
final class FinishHook: ByteSink {
    let inner: ByteSink
    let check: () throws -> Void
    init(_ inner: ByteSink, _ check: @escaping () throws -> Void) {
        self.inner = inner
        self.check = check
    }
    func write(_ bytes: UnsafeRawBufferPointer) throws { try inner.write(bytes) }
    func finish() throws {
        try check()
        try inner.finish()
    }
}
