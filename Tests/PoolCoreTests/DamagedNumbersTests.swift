import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// Numbers read from damaged metadata (sizes, counts, pointers) that used to trap the process
/// (overflow, index out of range) must give an error naming what is wrong. The first case is
/// FuzzMetadata's CI finding; the others are the same kind of number on the read and write paths.
@Suite("Damaged numbers")
struct DamagedNumbersTests {
    /// A committed pool on a 96-block metadata device whose space map counts only the first 64
    /// blocks: device 1 with three mappings, device 2 empty.
    static func pool() throws -> MemoryMetadataDevice {
        let dev = MemoryMetadataDevice(blockCount: 96)
        let pm = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: 1000, metadataBlocks: 64)
        try pm.createThin(1)
        for v in UInt64(0)..<3 {
            let d = try #require(try pm.allocateDataBlock())
            try pm.insertMapping(1, v, BlockTime(dataBlock: d, time: 0))
        }
        try pm.createThin(2)
        try pm.commit()
        return dev
    }

    /// Rewrites block 0's superblock with `edit` applied, resealed (checksum and location valid).
    static func editSuperblock(_ dev: MemoryMetadataDevice, _ edit: (inout [UInt8]) -> Void) throws {
        var b = try dev.readBlock(0)
        edit(&b)
        Checksum.seal(&b, kind: .superblock, location: 0)
        try dev.writeBlock(0, b)
    }

    /// Rewrites node `block` with `edit` applied, resealed.
    static func editNode(_ dev: MemoryMetadataDevice, _ block: UInt64, _ edit: (inout [UInt8]) -> Void) throws {
        var b = try dev.readBlock(block)
        edit(&b)
        Checksum.seal(&b, kind: .node, location: block)
        try dev.writeBlock(block, b)
    }

    /// FuzzMetadata's crash (CI, 60 s run): a data space map of 2^64 - 1 blocks made the bitmap
    /// count's rounding overflow in `MetadataChecker`, `SpaceMapReader` and on opening the pool.
    /// Such a superblock is now refused (no metadata device holds that many bitmaps), and the
    /// rounding itself cannot overflow.
    @Test func dataSpaceMapOfTwoToTheSixtyFourBlocks() throws {
        let dev = try Self.pool()
        try Self.editSuperblock(dev) { $0.setLE64(0x40, .max) }
        let refused = MetadataError.badSuperblock(block: 0, reason: "space maps of \(UInt64.max) data and 64 metadata blocks (at most 67917312000 and 4161600)")
        #expect(throws: refused) { try MetadataChecker(source: dev).check() }
        #expect(throws: refused) { try MetadataReader(source: dev) }
        #expect(throws: refused) { try PoolMetadata(device: dev) }
        let huge = SpaceMapReader(source: dev, root: SpaceMapRoot(blockCount: .max, bitmapRoot: 3), kind: .data)
        #expect(huge.bitmapCount == Int(UInt64.max / entriesPerBitmap + 1))
        #expect(throws: MetadataError.self) { try huge.indexEntries() }
        #expect(throws: MetadataError.self) { try SpaceMapReader(source: dev, root: SpaceMapRoot(blockCount: .max, bitmapRoot: 3), kind: .metadata).indexEntries() }
    }

    /// The largest data space map a superblock may name: as many bitmaps as a metadata device has blocks.
    @Test func dataSpaceMapAtTheLargest() throws {
        let dev = try Self.pool()
        try Self.editSuperblock(dev) { $0.setLE64(0x40, maxMetadataBlocks * entriesPerBitmap) }
        #expect(try MetadataReader(source: dev).superblock.dataSpaceMapRoot.blockCount == maxMetadataBlocks * entriesPerBitmap)
        try Self.editSuperblock(dev) { $0.setLE64(0x40, maxMetadataBlocks * entriesPerBitmap + 1) }
        #expect(throws: MetadataError.self) { try MetadataReader(source: dev) }
    }

    /// FuzzMetadata (write-path mode): the last, partial data bitmap's index entry says fewer
    /// free blocks than the bitmap holds; opening the pool subtracted before it had counted.
    /// The bitmap is the truth: 1000 blocks, 3 in use.
    @Test func partialBitmapWithTooFewFreeInItsIndexEntry() throws {
        let dev = try Self.pool()
        let index = try MetadataReader(source: dev).superblock.dataSpaceMapRoot.bitmapRoot
        try Self.editNode(dev, index) { b in
            let n = Node(unchecked: b, location: index)
            b.setLE32(n.valueOffset(0) + 8, 0)  // nr_free of bitmap 0
        }
        let pm = try PoolMetadata(device: dev)
        #expect(pm.dataBlockCount == 1000 && pm.freeDataBlocks == 997)
    }

    @Test func metadataSpaceMapLargerThanTheDevice() throws {
        let dev = try Self.pool()
        try Self.editSuperblock(dev) { $0.setLE64(0xC0, 97) }
        #expect(throws: MetadataError.badSpaceMap(block: 0, reason: "the metadata space map counts 97 blocks, the metadata device holds 96")) {
            try PoolMetadata(device: dev)
        }
    }

    /// A bottom-tree root inside the device but beyond the metadata space map (64 of 96
    /// blocks): deleting the device looked its count up out of range.
    @Test func pointerBeyondTheMetadataSpaceMap() throws {
        let dev = try Self.pool()
        let top = try MetadataReader(source: dev).superblock.dataMappingRoot
        let topNode = try Node(decoding: dev.readBlock(top), location: top, leafValueSize: 8)
        #expect(topNode.isLeaf && topNode.key(0) == 1)
        try Self.editNode(dev, top) { $0.setLE64(Node.headerSize + 8 * topNode.maxEntries, 80) }
        let pm = try PoolMetadata(device: dev)
        #expect(throws: MetadataError.badSpaceMap(block: 80, reason: "metadata block 80 lies beyond the metadata space map (64 blocks)")) {
            try pm.delete(1)
        }
    }

    /// FuzzMetadata (write-path mode): a device with details but no top-level entry; mapping a
    /// block into it unwrapped the missing subtree root.
    @Test func detailsWithoutAMappingTree() throws {
        let dev = try Self.pool()
        let top = try MetadataReader(source: dev).superblock.dataMappingRoot
        try Self.editNode(dev, top) { $0.setLE32(16, 1) }  // nr_entries 2 → 1: device 2's entry gone
        let pm = try PoolMetadata(device: dev)
        #expect(try pm.exists(2))
        let d = try #require(try pm.allocateDataBlock())
        let missing = MetadataError.badDeviceDetails(device: 2, reason: "it has details but no mapping tree")
        #expect(throws: missing) { try pm.insertMapping(2, 0, BlockTime(dataBlock: d, time: 0)) }
        try pm.abort()
        #expect(throws: missing) { try pm.insertMappings(2, first: 0, [BlockTime(dataBlock: d, time: 0)]) }
    }

    @Test func dataBlockSizeOutsideDmThinsRange() throws {
        for sectors: UInt32 in [0, 64, 130, 4_194_304] {
            let dev = try Self.pool()
            try Self.editSuperblock(dev) { $0.setLE32(0x150, sectors) }
            #expect(throws: MetadataError.badSuperblock(block: 0, reason: "data block size \(sectors) sectors (dm-thin uses 128 … 2097152 in multiples of 128)")) {
                try MetadataReader(source: dev)
            }
            #expect(throws: MetadataError.self) { try PoolMetadata(device: dev) }
        }
    }

    /// mapped_blocks of 2^64 - 1 in the details: one more mapping used to overflow.
    @Test func mappedBlocksAtTheTop() throws {
        let dev = try Self.pool()
        let details = try MetadataReader(source: dev).superblock.deviceDetailsRoot
        try Self.editNode(dev, details) { b in
            let n = Node(unchecked: b, location: details)
            b.setLE64(n.valueOffset(0), .max)  // device 1's mapped_blocks
        }
        let pm = try PoolMetadata(device: dev)
        #expect(try pm.details(of: 1).mappedBlocks == .max)
        let d = try #require(try pm.allocateDataBlock())
        #expect(throws: MetadataError.badDeviceDetails(device: 1, reason: "mapped_blocks \(UInt64.max) cannot change by 1")) {
            try pm.insertMapping(1, 10, BlockTime(dataBlock: d, time: 0))
        }
    }

    @Test func referenceCountsStayInRange() throws {
        var rc = RefCounts(blockCount: 4)
        rc.set(2, .max)
        #expect(throws: MetadataError.badSpaceMap(block: 2, reason: "reference count of block 2 would exceed \(UInt32.max)")) { try rc.inc(2) }
        #expect(rc[2] == .max)
        #expect(throws: MetadataError.badSpaceMap(block: 4, reason: "metadata block 4 lies beyond the metadata space map (4 blocks)")) { try rc.inc(4) }
        #expect(throws: MetadataError.self) { try rc.dec(9) }
    }
}
