/// What a receive needs of a pool. Delta declares it; PoolCore's pool conforms
/// (Replay/ThinPool+ReceivingPool.swift), ThinBackupKit's kernel pool does (Kernel/), and tests
/// use an in-memory one.
///
/// I/O is by byte offset (multiples of 4 KiB, inside the device): the stream's block size need
/// not be the pool's. A write covering part of a receiver block leaves the rest of that block as
/// it was (zeros in a newly provisioned one); `discard` unmaps the receiver blocks a range covers
/// whole and writes zeros on the unaligned edges (`DiscardPlan`, `zeroEdges`).
///
/// Every change is part of the pool's open transaction until `commitReceive()`;
/// `abortReceive()` drops it, leaving the pool exactly as at the last commit.
public protocol ReceivingPool: AnyObject {
    /// The receiver's data block size in bytes.
    var blockSize: Int { get }
    /// Refuses a stream whose blocks of `streamBlockSize` bytes this pool cannot take (default: any).
    func accept(streamBlockSize: Int) throws
    func deviceExists(_ dev: UInt64) throws -> Bool
    /// A new, empty thin device of `virtualSize` bytes.
    func createThin(_ dev: UInt64, virtualSize: UInt64) throws
    /// A snapshot of `origin` (sharing its blocks) of `virtualSize` bytes.
    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws
    func virtualSize(of dev: UInt64) throws -> UInt64
    /// Writes `bytes` at byte `offset` of `dev`.
    func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws
    /// Reads from byte `offset`; unmapped blocks read as zeros (also on a device over an external
    /// origin: this is the content the stream's digest covers).
    func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Makes the byte range read as zeros, unmapping what it covers of whole receiver blocks.
    func discard(_ dev: UInt64, bytes: Range<UInt64>) throws
    /// Makes the byte range read as zeros (a thin pool unmaps it, like `discard`).
    func zero(_ dev: UInt64, bytes: Range<UInt64>) throws
    /// A digest of the device's mappings as this pool holds them (changes whenever a write or discard reaches it).
    func mappingDigest(of dev: UInt64) throws -> Digest128
    /// The content digest of the device as it is now, over blocks of `blockSize` bytes (the
    /// stream's), computed from its bytes (default: reads every block).
    func contentDigest(of dev: UInt64, blockSize: Int) throws -> Digest128
    /// What was recorded about each received device (sidecar), as of the open transaction.
    func receipts() throws -> [UInt64: Receipt]
    /// Records (or with nil, forgets) what is known about `dev`; part of the open transaction.
    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws
    /// Makes the open transaction durable (data first, then metadata, then the sidecar).
    func commitReceive() throws
    /// Drops the open transaction.
    func abortReceive() throws
    /// Whether a device is a volume that keeps its versions (an LVM volume `VG/LV`, which always
    /// names the newest): an incremental stream whose base the device holds then makes its next
    /// version (a snapshot of it, taking the name once complete) instead of being refused as an
    /// existing device. Default false.
    var keepsVersions: Bool { get }
}

extension ReceivingPool {
    public func accept(streamBlockSize: Int) throws {}

    public var keepsVersions: Bool { false }

    public func zero(_ dev: UInt64, bytes: Range<UInt64>) throws { try discard(dev, bytes: bytes) }

    /// For a conformer's `discard`: writes zeros on the parts of `bytes` that cover a receiver
    /// block only partly (where they do not read as zeros already: an unmapped block stays
    /// unmapped) and calls `unmap` with the range of receiver blocks covered whole.
    public func zeroEdges(_ dev: UInt64, _ bytes: Range<UInt64>, unmap: (Range<UInt64>) throws -> Void) throws {
        let bs = UInt64(blockSize)
        let plan = DiscardPlan(offset: bytes.lowerBound, length: UInt64(bytes.count), granularity: bs)
        for edge in [plan.head, plan.tail] where !edge.isEmpty {
            let z = UnsafeMutableRawBufferPointer.allocate(byteCount: edge.count, alignment: 4096)
            defer { z.deallocate() }
            try read(dev, offset: edge.lowerBound, into: z)
            if isAllZero(UnsafeRawBufferPointer(z)) { continue }
            z.initializeMemory(as: UInt8.self, repeating: 0)
            try write(dev, offset: edge.lowerBound, UnsafeRawBufferPointer(z))
        }
        if !plan.whole.isEmpty { try unmap(plan.whole.lowerBound / bs ..< plan.whole.upperBound / bs) }
    }

    /// Reads whole blocks of `blockSize` from block `first` into `buffer`; past the device's end zeros.
    public func readBlocks(_ dev: UInt64, size: UInt64, first: UInt64, blockSize: Int,
                           into buffer: UnsafeMutableRawBufferPointer) throws {
        let (start, o1) = first.multipliedReportingOverflow(by: UInt64(blockSize))
        guard !o1 else { throw ReplayError.beyondDevice(dev) }
        let n = start >= size ? 0 : Int(min(UInt64(buffer.count), size - start))
        if n > 0 { try read(dev, offset: start, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])) }
        if n < buffer.count { UnsafeMutableRawBufferPointer(rebasing: buffer[n...]).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// The content digest of `dev` as it is now, computed from its blocks (the final check of a
    /// resumed receive: it trusts nothing an earlier run recorded).
    public func contentDigest(of dev: UInt64, blockSize bs: Int) throws -> Digest128 {
        let size = try virtualSize(of: dev)
        let total = (size + UInt64(bs) - 1) / UInt64(bs)
        return try contentDigest(of: dev, blockSize: bs, blocks: [0..<total])
    }

    /// The content digest of the stream blocks (of `bs` bytes) in `runs` (ascending, each block
    /// counted once even where runs touch): a conformer that knows which receiver blocks are
    /// mapped digests only the stream blocks those cover (`streamRuns(mapped:...)`).
    public func contentDigest(of dev: UInt64, blockSize bs: Int, blocks runs: [Range<UInt64>]) throws -> Digest128 {
        let size = try virtualSize(of: dev)
        let per = UInt64(max(1, (8 << 20) / bs))
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(per) * bs, alignment: 4096)
        defer { buf.deallocate() }
        var d = ContentDigest()
        var done: UInt64 = 0
        for run in runs {
            var v = max(run.lowerBound, done)
            while v < run.upperBound {
                let n = min(per, run.upperBound - v)
                let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<Int(n) * bs])
                try readBlocks(dev, size: size, first: v, blockSize: bs, into: b)
                d.add(blocks: UnsafeRawBufferPointer(b), from: v, blockSize: bs)
                v += n
            }
            done = max(done, run.upperBound)
        }
        return d.value
    }
}

/// The runs of stream blocks (of `streamBlockSize` bytes) that the receiver blocks (of
/// `poolBlockSize`) in `mapped` (ascending) overlap, merged where they touch.
public func streamRuns(mapped: [UInt64], poolBlockSize: Int, streamBlockSize: Int) -> [Range<UInt64>] {
    let p = UInt64(poolBlockSize), s = UInt64(streamBlockSize)
    var out: [Range<UInt64>] = []
    for v in mapped {
        let (a, o1) = v.multipliedReportingOverflow(by: p)
        let (b, o2) = a.addingReportingOverflow(p)
        guard !o1, !o2 else { break }  // beyond any device: no stream block there
        let lo = a / s, hi = b / s + (b % s == 0 ? 0 : 1)
        if let last = out.last, last.upperBound >= lo {
            out[out.count - 1] = last.lowerBound..<max(last.upperBound, hi)
        } else {
            out.append(lo..<hi)
        }
    }
    return out
}

/// What the receiver recorded about a device it received (kept in the pool's sidecar).
public struct Receipt: Codable, Equatable, Sendable {
    /// The sending pool and the snapshot there that this device is a copy of.
    public var sourcePool: Digest128
    public var source: SnapshotIdentity
    /// The stream that made it.
    public var streamID: Digest128
    /// Content digest of the device when received (ContentDigest).
    public var contentDigest: Digest128
    /// `mappingDigest(of:)` right after the receive: a later change to the device shows as a difference.
    public var mappingDigest: Digest128
    /// Set while a receive is unfinished (checkpointed): where to resume.
    public var partial: PartialReceive?

    public init(sourcePool: Digest128, source: SnapshotIdentity, streamID: Digest128, contentDigest: Digest128,
                mappingDigest: Digest128, partial: PartialReceive? = nil) {
        self.sourcePool = sourcePool
        self.source = source
        self.streamID = streamID
        self.contentDigest = contentDigest
        self.mappingDigest = mappingDigest
        self.partial = partial
    }
}

/// The state of an unfinished receive at its last checkpoint.
public struct PartialReceive: Codable, Equatable, Sendable {
    public var header: StreamHeader
    public var progress: StreamProgress
    /// Content digest of the device at the checkpoint.
    public var digest: Digest128
    /// Byte offset in the stream where the next record (`progress.nextSequence`) starts.
    public var streamOffset: UInt64
    /// The caller's name for the stream (e.g. a transport's stream id), if it gave one.
    public var label: String?

    public init(header: StreamHeader, progress: StreamProgress, digest: Digest128, streamOffset: UInt64 = 0, label: String? = nil) {
        self.header = header
        self.progress = progress
        self.digest = digest
        self.streamOffset = streamOffset
        self.label = label
    }
}
