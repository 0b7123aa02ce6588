public import PoolCore

/// The caller's choices for `sendDevice`; the metadata view decides the rest.
public struct DeviceSendOptions {
    /// The target's virtual size in bytes (the receiver creates the device this large).
    public var virtualSize: UInt64
    public var streamID: Digest128
    /// The sending pool's identity (receivers match bases by it).
    public var sourcePool: Digest128
    public var level: Int32 = 3
    /// Records compressed at the same time (one compressor each).
    public var workers = 1
    /// For an incremental: the base's content digest; read from the base's blocks when nil.
    public var baseDigest: Digest128?
    /// The target reads its unmapped blocks from an external origin (the stream says so).
    public var readsOrigin = false
    /// Encrypt the stream (format version 2) with this key.
    public var key: StreamKey?
    /// A receiver's resume point: send only the records from there on.
    public var resumeAt: StreamProgress?
    /// After each record: (raw bytes covered, raw bytes expected, stream bytes written).
    public var onProgress: ((UInt64, UInt64, UInt64) -> Void)?
    /// While the base's digest is computed: bytes of the base read so far.
    public var onBaseDigestProgress: ((UInt64) -> Void)?

    public init(virtualSize: UInt64, streamID: Digest128, sourcePool: Digest128) {
        self.virtualSize = virtualSize
        self.streamID = streamID
        self.sourcePool = sourcePool
    }
}

/// A send refused because of what the metadata holds.
public enum DeviceSendError: Error, CustomStringConvertible, Equatable {
    /// The device maps a block at or beyond `size` bytes (its recorded size is too small).
    case mapsBeyondSize(device: UInt64, block: UInt64, size: UInt64)

    public var description: String {
        switch self {
        case let .mapsBeyondSize(dev, block, size): return "thin device \(dev) maps block \(block), beyond its size of \(size) bytes"
        }
    }
}

/// Sends thin device `target` of the pool `view` shows — everything it maps, or with `base` only
/// what changed since that device — as a delta stream into `sink`, reading block contents through
/// `reader`. The one send: header, runs (the sharing-aware diff, or a full send's mapping runs,
/// trimmed to the target's size), zero detection, compression, digests and trailer.
public func sendDevice(view: MetadataView, target: UInt64, base: UInt64?, reader: any DataBlockReader,
                       sink: any ByteSink, options o: DeviceSendOptions) throws -> SendSummary {
    let bs = reader.blockSize
    let details = try view.details(of: target)
    var baseIdentity: SnapshotIdentity?
    var baseDigest = Digest128.zero
    if let base {
        baseIdentity = SnapshotIdentity(base, try view.details(of: base))
        baseDigest = try o.baseDigest ?? deviceDigest(view, base, reader: reader, onBytes: o.onBaseDigestProgress)
    }
    let header = StreamHeader(
        blockSize: UInt32(bs), virtualSize: o.virtualSize, level: o.level,
        streamID: o.resumeAt?.streamID ?? o.streamID, sourcePool: o.sourcePool,
        target: SnapshotIdentity(target, details), base: baseIdentity, baseFingerprint: baseDigest,
        expectedBlocks: base == nil ? details.mappedBlocks : 0, readsOrigin: o.readsOrigin)
    // Frames are independent: one single-threaded compressor per worker, three records in flight each
    // (with two, a worker often had nothing to do while the oldest record was still compressing:
    // stored and small records finish at once; paired, three gave 0.87× the wall time, the same CPU).
    // At most 32 MiB of raw record buffers (as much again for frames), at least one slot.
    let slots = max(1, min(max(1, o.workers) * 3, (32 << 20) / Int(header.maxRecordRaw)))
    let compressors = try (0..<slots).map { _ in try ZstdCompressor(level: o.level, workers: 0) }
    let sender = StreamSender(header: header, reader: reader, compressors: compressors,
                              sink: sink, baseDigest: baseDigest, resumeAt: o.resumeAt, key: o.key)
    let expected = header.expectedBlocks.saturatingMultiplied(by: UInt64(bs))
    if let p = o.onProgress { sender.onProgress = { done, written in p(done, expected, written) } }
    let blockCount = header.blockCount
    return try sender.send { body in
        let trimmed: (DeltaRun) throws -> Void = { run in
            var run = run
            if run.kind == .leftOnly && run.end > blockCount {
                // Gone because the target is smaller than its base: the receiver truncates to the new size.
                guard run.begin < blockCount else { return }
                run.length = blockCount - run.begin
            }
            guard run.end <= blockCount else {
                throw DeviceSendError.mapsBeyondSize(device: target, block: run.end - 1, size: o.virtualSize)
            }
            try body(run)
        }
        if let base {
            try MappingDiff(view: view, left: base, right: target).changes(trimmed)
        } else {
            try mappingRuns(view, target, trimmed)
        }
    }
}

/// Every mapping of `dev`, coalesced into runs contiguous in virtual and data blocks (a full send's "diff").
public func mappingRuns(_ view: MetadataView, _ dev: UInt64, _ body: (DeltaRun) throws -> Void) throws {
    var cur: DeltaRun?
    try view.forEachMapping(of: dev) { v, m in
        if var c = cur, c.end == v, c.rightData! + c.length == m.dataBlock {
            c.length += 1
            cur = c
        } else {
            if let c = cur { try body(c) }
            cur = DeltaRun(kind: .rightOnly, begin: v, length: 1, leftData: nil, rightData: m.dataBlock)
        }
    }
    if let c = cur { try body(c) }
}

/// The content digest of `dev` (reads every mapped block once, but none the reader knows to be a
/// hole); `onBytes` gets the bytes covered so far.
public func deviceDigest(_ view: MetadataView, _ dev: UInt64, reader: any DataBlockReader,
                         onBytes: ((UInt64) -> Void)? = nil) throws -> Digest128 {
    let bs = reader.blockSize
    let per = max(1, (8 << 20) / bs)
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: per * bs, alignment: 4096)
    defer { buf.deallocate() }
    var d = ContentDigest()
    var done: UInt64 = 0
    try mappingRuns(view, dev) { run in
        var i: UInt64 = 0
        while i < run.length {
            let n = Int(min(UInt64(per), run.length - i))
            // A hole reads as zeros, which add nothing: only the blocks that may hold data are read.
            try reader.forEachExtent(dataBlock: run.rightData! + i, count: n) { o, k, zeros in
                guard !zeros else { return }
                let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<k * bs])
                try reader.read(dataBlock: run.rightData! + i + UInt64(o), into: b)
                d.add(blocks: UnsafeRawBufferPointer(b), from: run.begin + i + UInt64(o), blockSize: bs)
            }
            i += UInt64(n)
            done += UInt64(n * bs)
            onBytes?(done)
        }
    }
    return d.value
}

extension SnapshotIdentity {
    /// The identity of thin device `dev` with these details.
    public init(_ dev: UInt64, _ d: DeviceDetails) {
        self.init(device: dev, creationTime: d.creationTime, snapshottedTime: d.snapshottedTime, transactionID: d.transactionID)
    }
}
