/// dm-thin superblock magic (27022010).
let superblockMagic: UInt64 = 27_022_010

/// The pool superblock (block 0) or the held metadata-snapshot copy.
///
/// Layout: FORMAT.md §1.2. 364 bytes used; the rest of the block is zero.
public struct Superblock: Equatable, Sendable {
    /// on disk: `flags`, bit 0 = NEEDS_CHECK.
    public var flags: UInt32 = 0
    /// on disk: `blocknr`, the location of this copy.
    public var location: UInt64 = 0
    public var uuid: [UInt8] = [UInt8](repeating: 0, count: 16)
    public var version: UInt32 = 2
    /// on disk: `time`, the snapshot epoch.
    public var time: UInt32 = 0
    /// on disk: `trans_id`.
    public var transactionID: UInt64 = 0
    /// on disk: `held_root`; 0 when no metadata snapshot is held.
    public var heldRoot: UInt64 = 0
    var dataSpaceMapRoot = SpaceMapRoot()
    var metadataSpaceMapRoot = SpaceMapRoot()
    /// on disk: `data_mapping_root`, root of the two-level mapping tree.
    var dataMappingRoot: UInt64 = 0
    /// on disk: `device_details_root`.
    var deviceDetailsRoot: UInt64 = 0
    /// on disk: `data_block_size`, in 512-byte sectors.
    public var dataBlockSize: UInt32 = 128
    /// on disk: `metadata_block_size`, in sectors (always 8).
    var metadataBlockSize: UInt32 = 8
    /// on disk: `metadata_nr_blocks`, set at format time only.
    public var metadataBlockCount: UInt64 = 0
    var compatFlags: UInt32 = 0
    var compatROFlags: UInt32 = 0
    var incompatFlags: UInt32 = 0

    static let needsCheckFlag: UInt32 = 1
    /// Data block sizes dm-thin accepts, in sectors (64 KiB … 1 GiB; also multiples of 128).
    static let validDataBlockSizes: ClosedRange<UInt32> = 128...2_097_152

    public init() {}

    /// Decodes a superblock read from `location` and checks its magic (checksum and location
    /// were checked where it was read, `BlockValidator`).
    public init(decoding block: [UInt8], location: UInt64) throws(MetadataError) {
        // (`metadataBlockSize` here would be the field below, 8 sectors.)
        guard block.count == PoolCore.metadataBlockSize else { throw .shortBlock(block: location, size: block.count) }
        let magic = block.le64(0x20)
        guard magic == superblockMagic else { throw .badMagic(block: location, found: magic) }
        flags = block.le32(0x04)
        self.location = block.le64(0x08)
        uuid = Array(block[0x10..<0x20])
        version = block.le32(0x28)
        time = block.le32(0x2C)
        transactionID = block.le64(0x30)
        heldRoot = block.le64(0x38)
        dataSpaceMapRoot = SpaceMapRoot(decoding: block, at: 0x40)
        metadataSpaceMapRoot = SpaceMapRoot(decoding: block, at: 0xC0)
        // A space map's bitmaps are metadata blocks (FORMAT.md §4.6, §6.10): no map can count more.
        guard metadataSpaceMapRoot.blockCount <= maxMetadataBlocks,
              dataSpaceMapRoot.blockCount <= maxMetadataBlocks * entriesPerBitmap else {
            throw .badSuperblock(block: location, reason: "space maps of \(dataSpaceMapRoot.blockCount) data and \(metadataSpaceMapRoot.blockCount) metadata blocks "
                + "(at most \(maxMetadataBlocks * entriesPerBitmap) and \(maxMetadataBlocks))")
        }
        dataMappingRoot = block.le64(0x140)
        deviceDetailsRoot = block.le64(0x148)
        dataBlockSize = block.le32(0x150)
        // FORMAT.md §6.12; also keeps every byte offset computed from it (data block × size) in range.
        guard Superblock.validDataBlockSizes.contains(dataBlockSize), dataBlockSize % 128 == 0 else {
            throw .badSuperblock(block: location, reason: "data block size \(dataBlockSize) sectors (dm-thin uses 128 … 2097152 in multiples of 128)")
        }
        metadataBlockSize = block.le32(0x154)
        metadataBlockCount = block.le64(0x158)
        compatFlags = block.le32(0x160)
        compatROFlags = block.le32(0x164)
        incompatFlags = block.le32(0x168)
    }

    /// A sealed 4096-byte block holding this superblock at `location`.
    public func encode(location: UInt64) -> [UInt8] {
        var b = [UInt8].zeroBlock()
        b.setLE32(0x04, flags)
        for (i, byte) in uuid.prefix(16).enumerated() { b[0x10 + i] = byte }
        b.setLE64(0x20, superblockMagic)
        b.setLE32(0x28, version)
        b.setLE32(0x2C, time)
        b.setLE64(0x30, transactionID)
        b.setLE64(0x38, heldRoot)
        dataSpaceMapRoot.encode(into: &b, at: 0x40)
        metadataSpaceMapRoot.encode(into: &b, at: 0xC0)
        b.setLE64(0x140, dataMappingRoot)
        b.setLE64(0x148, deviceDetailsRoot)
        b.setLE32(0x150, dataBlockSize)
        b.setLE32(0x154, metadataBlockSize)
        b.setLE64(0x158, metadataBlockCount)
        b.setLE32(0x160, compatFlags)
        b.setLE32(0x164, compatROFlags)
        b.setLE32(0x168, incompatFlags)
        Checksum.seal(&b, kind: .superblock, location: location)
        return b
    }

    public var needsCheck: Bool { flags & Superblock.needsCheckFlag != 0 }
}

/// on disk: `disk_sm_root`, the first 32 bytes of a 128-byte superblock slot.
struct SpaceMapRoot: Equatable, Sendable {
    /// Blocks managed by the space map.
    public var blockCount: UInt64 = 0
    /// Blocks with a non-zero count (may over-count on restore images).
    var allocatedCount: UInt64 = 0
    /// Metadata sm: the index block. Data sm: root of the index B-tree.
    var bitmapRoot: UInt64 = 0
    /// Root of the overflow (count ≥ 3) tree.
    var refCountRoot: UInt64 = 0

    public init(blockCount: UInt64 = 0, allocatedCount: UInt64 = 0, bitmapRoot: UInt64 = 0, refCountRoot: UInt64 = 0) {
        self.blockCount = blockCount
        self.allocatedCount = allocatedCount
        self.bitmapRoot = bitmapRoot
        self.refCountRoot = refCountRoot
    }

    init(decoding b: [UInt8], at off: Int) {
        blockCount = b.le64(off)
        allocatedCount = b.le64(off + 8)
        bitmapRoot = b.le64(off + 16)
        refCountRoot = b.le64(off + 24)
    }

    func encode(into b: inout [UInt8], at off: Int) {
        b.setLE64(off, blockCount)
        b.setLE64(off + 8, allocatedCount)
        b.setLE64(off + 16, bitmapRoot)
        b.setLE64(off + 24, refCountRoot)
    }

    var isZero: Bool { self == SpaceMapRoot() }
}
