/// Value of the device-details tree (24 bytes), FORMAT.md §1.3.
public struct DeviceDetails: Equatable, Sendable {
    /// on disk: `mapped_blocks`.
    public var mappedBlocks: UInt64
    /// on disk: `transaction_id`, the pool's trans_id when the device was created.
    public var transactionID: UInt64
    /// on disk: `creation_time`.
    public var creationTime: UInt32
    /// on disk: `snapshotted_time`.
    public var snapshottedTime: UInt32

    static let diskSize = 24

    public init(mappedBlocks: UInt64, transactionID: UInt64, creationTime: UInt32, snapshottedTime: UInt32) {
        self.mappedBlocks = mappedBlocks
        self.transactionID = transactionID
        self.creationTime = creationTime
        self.snapshottedTime = snapshottedTime
    }

    init(decoding b: [UInt8], at off: Int) {
        mappedBlocks = b.le64(off)
        transactionID = b.le64(off + 8)
        creationTime = b.le32(off + 16)
        snapshottedTime = b.le32(off + 20)
    }

    func encode(into b: inout [UInt8], at off: Int) {
        b.setLE64(off, mappedBlocks)
        b.setLE64(off + 8, transactionID)
        b.setLE32(off + 16, creationTime)
        b.setLE32(off + 20, snapshottedTime)
    }
}

/// A bottom-level mapping value: `(data_block << 24) | time`, FORMAT.md §3.4.
public struct BlockTime: Equatable, Hashable, Sendable {
    public var dataBlock: UInt64
    public var time: UInt32

    public init(dataBlock: UInt64, time: UInt32) {
        self.dataBlock = dataBlock
        self.time = time
    }

    /// Unpacks a raw value exactly as the kernel does (time = low 24 bits).
    public init(raw: UInt64) {
        dataBlock = raw >> 24
        time = UInt32(truncatingIfNeeded: raw & 0xFF_FFFF)
    }

    /// Packs; `time` must be < 2^24 (checked by writers, pitfall 7).
    public var raw: UInt64 { (dataBlock << 24) | UInt64(time & 0xFF_FFFF) }
}

/// on disk: `disk_index_entry` (16 bytes), FORMAT.md §4.2.
struct IndexEntry: Equatable, Sendable {
    var bitmapBlock: UInt64
    var freeCount: UInt32
    var noneFreeBefore: UInt32

    static let diskSize = 16

    public init(bitmapBlock: UInt64, freeCount: UInt32, noneFreeBefore: UInt32) {
        self.bitmapBlock = bitmapBlock
        self.freeCount = freeCount
        self.noneFreeBefore = noneFreeBefore
    }

    init(decoding b: [UInt8], at off: Int) {
        bitmapBlock = b.le64(off)
        freeCount = b.le32(off + 8)
        noneFreeBefore = b.le32(off + 12)
    }

    func encode(into b: inout [UInt8], at off: Int) {
        b.setLE64(off, bitmapBlock)
        b.setLE32(off + 8, freeCount)
        b.setLE32(off + 12, noneFreeBefore)
    }
}
