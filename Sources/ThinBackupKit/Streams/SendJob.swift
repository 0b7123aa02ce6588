import Delta
import Foundation
import PoolCore

/// What `send` is asked to do.
public struct SendRequest {
    public var pool: String?
    public var metadata: String?
    public var data: String?
    public var target: UInt64
    public var base: UInt64?
    public var destination: String
    public var level: Int32 = 3
    public var workers: Int32 = Int32(ProcessInfo.processInfo.activeProcessorCount)
    /// Read through the metadata snapshot already held (-m).
    public var useHeldSnapshot = false
    /// Read the live metadata without a metadata snapshot (a pool nobody uses).
    public var liveMetadata = false
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

    public init(target: UInt64, destination: String) {
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
    let src = try PoolSource(pool: req.pool, metadata: req.metadata, data: req.data)
    var reservation: SnapshotReservation?
    var reader = try MetadataReader(path: src.metadataPath)
    if req.useHeldSnapshot {
        guard reader.superblock.heldRoot != 0 else { throw CommandFailure("-m: no metadata snapshot is held in \(src.metadataPath)") }
    } else if !req.liveMetadata {
        let pool = try ThinPool(metadataPath: src.metadataPath, dataPath: src.dataPath, sidecarPath: src.sidecarPath)
        do {
            if pool.annotation("pool.id") == nil, reader.superblock.uuid.allSatisfy({ $0 == 0 }) {
                try pool.setAnnotation("pool.id", randomDigest().description)
            }
            // Released on every way out: return, error, SIGINT/SIGTERM (Interrupts).
            reservation = try SnapshotReservation(pool: pool, metadataPath: src.metadataPath, command: req.command) {
                ThinBackupMain.writeStderr("thin-backup: \($0)\n")
            }
        } catch {
            pool.close()
            throw error
        }
        reader = try MetadataReader(path: src.metadataPath)
    }
    defer {
        if let reservation {
            reservation.release()
            reservation.pool.close()
        }
    }
    let view = req.liveMetadata ? reader.live : try reader.metadataSnapshot()
    let devs = [req.target] + (req.base.map { [$0] } ?? [])
    let roots = try devs.map { try view.mappingRoot(of: $0) }
    // A device that changes while we read it may be overwritten in place (a metadata snapshot freezes mappings, not data).
    func checkUnchanged(_ when: String) throws {
        let live = try MetadataReader(path: src.metadataPath).live
        for (dev, root) in zip(devs, roots) where try live.mappingRoot(of: dev) != root {
            throw CommandFailure("thin device \(dev) \(when): it is in use; send snapshots that nobody writes")
        }
    }
    if !req.liveMetadata { try checkUnchanged("differs from the metadata snapshot") }

    let sb = view.superblock
    let bs = Int(sb.dataBlockSize) * 512
    let data = try RandomAccessFile(path: src.dataPath, writable: false)
    let blocks = FileDataBlockReader(file: data, blockSize: bs)
    let target = try view.details(of: req.target)
    let size = try src.virtualSize(of: req.target, data: data, override: req.virtualSize)
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
        streamID: resume?.streamID ?? randomDigest(), sourcePool: try src.identity(sb),
        target: SnapshotIdentity(req.target, target), base: baseIdentity, baseFingerprint: baseDigest,
        expectedBlocks: req.base == nil ? target.mappedBlocks : 0,
        readsOrigin: try src.sidecar.devices[String(req.target)]?.originFile != nil)
    let key = try req.key ?? req.keyring?.keyForWriting(salt: header.streamID.bytes)
    // The final check runs before the sink completes, so a stream of a device in use is never published.
    let sink = FinishHook(try givenSink ?? Transport.sink(for: req.destination, options: {
        var o = req.transport
        if o.targetDevice == nil { o.targetDevice = req.target }
        return o
    }())) { try checkUnchanged("was written during the send") }
    // Frames are independent: one single-threaded compressor per core, two records in flight each.
    // At most 32 MiB of raw record buffers (as much again for frames), at least one slot.
    let slots = max(1, min(max(1, Int(req.workers)) * 2, (32 << 20) / Int(header.maxRecordRaw)))
    let compressors = try (0..<slots).map { _ in try ZstdCompressor(level: req.level, workers: 0) }
    let sender = StreamSender(header: header, reader: blocks, compressors: compressors,
                              sink: sink, baseDigest: baseDigest, resumeAt: resume, key: key)
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
