/// What a receive needs of a pool. Delta declares it; PoolCore's pool conforms
/// (Replay/ThinPool+ReceivingPool.swift) and tests use an in-memory one.
///
/// Every change is part of the pool's open transaction until `commitReceive()`;
/// `abortReceive()` drops it, leaving the pool exactly as at the last commit.
public protocol ReceivingPool: AnyObject {
    /// Data block size in bytes.
    var blockSize: Int { get }
    func deviceExists(_ dev: UInt64) throws -> Bool
    /// A new, empty thin device of `virtualSize` bytes.
    func createThin(_ dev: UInt64, virtualSize: UInt64) throws
    /// A snapshot of `origin` (sharing its blocks) of `virtualSize` bytes.
    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws
    func virtualSize(of dev: UInt64) throws -> UInt64
    /// Writes whole blocks: `bytes` holds consecutive blocks from virtual block `block`.
    func write(_ dev: UInt64, block: UInt64, _ bytes: UnsafeRawBufferPointer) throws
    /// Reads whole blocks from virtual block `block`; unmapped blocks read as zeros (also on a device
    /// over an external origin: this is the content the stream's digest covers).
    func read(_ dev: UInt64, block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// Unmaps (discards) a range of virtual blocks; they read as zeros afterwards.
    func discard(_ dev: UInt64, blocks: Range<UInt64>) throws
    /// Makes a range read as zeros (a thin pool unmaps it, like `discard`).
    func zero(_ dev: UInt64, blocks: Range<UInt64>) throws
    /// A digest of the device's mappings as this pool holds them (changes whenever a write or discard reaches it).
    func mappingDigest(of dev: UInt64) throws -> Digest128
    /// The content digest of the device as it is now, computed from its bytes (default: reads every block).
    func contentDigest(of dev: UInt64) throws -> Digest128
    /// What was recorded about each received device (sidecar), as of the open transaction.
    func receipts() throws -> [UInt64: Receipt]
    /// Records (or with nil, forgets) what is known about `dev`; part of the open transaction.
    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws
    /// Makes the open transaction durable (data first, then metadata, then the sidecar).
    func commitReceive() throws
    /// Drops the open transaction.
    func abortReceive() throws
}

extension ReceivingPool {
    public func zero(_ dev: UInt64, blocks: Range<UInt64>) throws { try discard(dev, blocks: blocks) }

    /// The content digest of `dev` as it is now, computed from its blocks (the final check of a
    /// resumed receive: it trusts nothing an earlier run recorded).
    public func contentDigest(of dev: UInt64) throws -> Digest128 {
        let bs = blockSize
        let total = (try virtualSize(of: dev) + UInt64(bs) - 1) / UInt64(bs)
        let per = UInt64(max(1, (8 << 20) / bs))
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(per) * bs, alignment: 4096)
        defer { buf.deallocate() }
        var d = ContentDigest()
        var v: UInt64 = 0
        while v < total {
            let n = min(per, total - v)
            let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<Int(n) * bs])
            try read(dev, block: v, into: b)
            d.add(blocks: UnsafeRawBufferPointer(b), from: v, blockSize: bs)
            v += n
        }
        return d.value
    }
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
