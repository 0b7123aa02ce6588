import Foundation
@testable import PoolCore
import Testing
import TestSupport

/// The space maps of a pool whose data device spans many bitmaps (issue #15, memory at scale):
/// a small change reads and rewrites only the bitmaps it touches, the others stay as committed
/// byte for byte, and the metadata counts load bitmap by bitmap with the same result as the
/// whole-map reader.
@Suite struct ManyBitmapsTests {
    static let bitmaps = 64
    static let dataBlocks = UInt64(bitmaps) * entriesPerBitmap  // exact: opening reads no bitmap

    /// Device 1 maps every block of bitmaps 0 and 1 (counts 1) and blocks 5 and 6 of bitmap 40;
    /// block 7 of bitmap 40 is shared by devices 1, 2, 3 and 4 (count 4, in the overflow tree).
    static func pool() throws -> MemoryMetadataDevice {
        let dev = MemoryMetadataDevice(blockCount: 4096)
        let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: dataBlocks)
        try md.createThin(1)
        var run: [BlockTime] = []
        for _ in 0..<(2 * entriesPerBitmap) { run.append(BlockTime(dataBlock: try #require(try md.allocateDataBlock()), time: 0)) }
        #expect(run.last?.dataBlock == 2 * entriesPerBitmap - 1)
        try md.insertMappings(1, first: 0, run)
        let base40 = 40 * entriesPerBitmap
        for (v, b) in [(1_000_000, base40 + 5), (1_000_001, base40 + 6), (1_000_002, base40 + 7)] as [(UInt64, UInt64)] {
            try md.tm.incData(b)
            try md.insertMapping(1, v, BlockTime(dataBlock: b, time: 0))
        }
        for d in [UInt64(2), 3, 4] {
            try md.createThin(d)
            try md.tm.incData(base40 + 7)
            try md.insertMapping(d, 0, BlockTime(dataBlock: base40 + 7, time: 0))
        }
        try md.commit()
        return dev
    }

    static func bitmapBytes(_ dev: MemoryMetadataDevice, _ e: IndexEntry) -> ArraySlice<UInt8> {
        dev.blocks[e.bitmapBlock]![16...]
    }

    @Test func aOneBlockChangeReadsAndRewritesOnlyItsBitmaps() throws {
        let dev = try Self.pool()
        let before = try MetadataReader(source: dev).live.dataSpaceMap.indexEntries()
        #expect(before.count == Self.bitmaps)
        let beforeBytes = before.map { Self.bitmapBytes(dev, $0) }

        let md = try PoolMetadata(device: dev)
        #expect(md.tm.dataMap.pageReads == 0)
        // Bitmaps 0 and 1 are full: the allocation skips them by their free counts, unread.
        let b = try #require(try md.allocateDataBlock())
        #expect(b == 2 * entriesPerBitmap)
        try md.insertMapping(1, 2_000_000, BlockTime(dataBlock: b, time: 0))
        // A free in bitmap 40 (5 → count 0) and the overflow count 4 → 3 there.
        try md.removeMapping(1, 1_000_000)
        try md.removeMapping(4, 0)
        try md.commit()
        // A writer that loads whole maps reads all 64 bitmaps here.
        #expect(md.tm.dataMap.pageReads == 2)

        let after = try MetadataReader(source: dev).live.dataSpaceMap.indexEntries()
        #expect(after.count == Self.bitmaps)
        for i in 0..<Self.bitmaps where i != 2 && i != 40 {
            #expect(after[i] == before[i], "bitmap \(i) index entry")
            #expect(Self.bitmapBytes(dev, after[i]) == beforeBytes[i], "bitmap \(i) bytes")
        }
        // The two changed bitmaps went to new blocks (copy on write), with these bytes.
        for i in [2, 40] { #expect(after[i].bitmapBlock != before[i].bitmapBlock) }
        var want2 = [UInt8](repeating: 0, count: 4080)
        want2[0] = 0b10  // entry 0 counted 1: the higher-numbered bit of the pair (FORMAT.md §4.3)
        #expect(Array(Self.bitmapBytes(dev, after[2])) == want2)
        #expect(after[2].freeCount == UInt32(entriesPerBitmap) - 1 && after[2].noneFreeBefore == 1)
        var want40 = [UInt8](repeating: 0, count: 4080)
        want40[1] = 0b10 << 4 | 0b11 << 6   // entry 6 counted 1, entry 7 counted 3 (overflow)
        #expect(Array(Self.bitmapBytes(dev, after[40])) == want40)
        #expect(after[40].freeCount == UInt32(entriesPerBitmap) - 2)
        // Bitmaps 0 and 1: every entry counted 1 (0b10 per pair).
        #expect(Self.bitmapBytes(dev, after[0]).allSatisfy { $0 == 0xAA })

        let r = try MetadataReader(source: dev)
        let recount = try Recount.count(r)
        #expect(try Recount.onDisk(r.live.dataSpaceMap) == recount.data)
        #expect(recount.data[40 * entriesPerBitmap + 7] == 3)
        #expect(recount.data[40 * entriesPerBitmap + 5] == nil)
        #expect(try Recount.onDisk(r.live.metadataSpaceMap) == recount.metadata)
    }

    @Test func thinCheckAcceptsTheChangedPool() throws {
        try Tool.requireThinTools()
        let dir = TempDir("manybm")
        defer { withExtendedLifetime(dir) {} }
        let dev = try Self.pool()
        let md = try PoolMetadata(device: dev)
        try md.insertMapping(1, 2_000_000, BlockTime(dataBlock: try #require(try md.allocateDataBlock()), time: 0))
        try md.removeMapping(1, 1_000_000)
        try md.removeMapping(4, 0)
        try md.removeMapping(1, 3)  // a free in bitmap 0 too
        try md.commit()
        let path = "\(dir.path)/metadata"
        var bytes = [UInt8](repeating: 0, count: Int(dev.blockCount) * 4096)
        for (b, blk) in dev.blocks { bytes.replaceSubrange(Int(b) * 4096..<Int(b + 1) * 4096, with: blk) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try Tool.run("thin_check", [path])
        #expect(r.ok, "\(r.stderr)")
    }

    /// Both space maps of this pool and of a kernel image: the bitmap-by-bitmap load gives
    /// exactly the whole-map reader's non-zero counts (overflow counts included).
    @Test func countsLoadBitmapByBitmapAsTheWholeMapReaderReadsThem() throws {
        let dir = TempDir("manybm-k")
        defer { withExtendedLifetime(dir) {} }
        let dev = try Self.pool()
        var readers: [(String, MetadataReader, any MetadataDevice)] = [("pool", try MetadataReader(source: dev), dev)]
        let kernel = try FileMetadataDevice(path: try KernelFixtures.decompress("tmeta_with_shared_internals_and_leaves", into: dir))
        readers.append(("kernel", try MetadataReader(source: kernel), kernel))
        var sawOverflow = false
        for (name, r, device) in readers {
            for sm in [r.live.dataSpaceMap, r.live.metadataSpaceMap] {
                var want: [(UInt64, UInt32)] = []
                for (b, c) in try sm.allCounts().enumerated() where c > 0 { want.append((UInt64(b), c)) }
                var got: [(UInt64, UInt32)] = []
                try sm.forEachNonZeroCount(overflow: try sm.overflowCounts()) { got.append(($0, $1)) }
                #expect(got.map(\.0) == want.map(\.0), "\(name) \(sm.kind)")
                #expect(got.map(\.1) == want.map(\.1), "\(name) \(sm.kind)")
                if want.contains(where: { $0.1 >= 3 }) { sawOverflow = true }
                let loaded = try LoadedSpaceMap(device, sm.root, sm.kind)
                #expect(loaded.counts.allocatedCount == UInt64(want.count), "\(name) \(sm.kind)")
                for (b, c) in want where loaded.counts[b] != c { Issue.record("\(name) \(sm.kind) block \(b): \(loaded.counts[b]), want \(c)") }
            }
        }
        #expect(sawOverflow)
    }
}
