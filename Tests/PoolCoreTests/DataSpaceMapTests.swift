import Foundation
@testable import PoolCore
import Testing
import TestSupport

/// The data space map read from disk on demand (`DataSpaceMap`): counts across bitmaps and
/// commits, overflow counts, allocation, and the windowed data comparison of `pool check`.
@Suite struct DataSpaceMapTests {
    static let bitmaps: UInt64 = 4
    static let dataBlocks = bitmaps * entriesPerBitmap + 77

    /// A pool whose device 1 maps one block in every `stride` of the data device (the others
    /// allocated and released again), device 2 shares three of them through distinct leaves
    /// (counts 2, so 3 with device 3), committed.
    static func scatteredPool(stride: UInt64 = 97) throws -> (MemoryMetadataDevice, [UInt64]) {
        let dev = MemoryMetadataDevice(blockCount: 4096)
        let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: dataBlocks)
        try md.createThin(1)
        var mapped: [UInt64] = []
        var spare: [UInt64] = []
        var v: UInt64 = 0
        while let b = try md.allocateDataBlock() {
            if b % stride == 0 {
                try md.insertMapping(1, v, BlockTime(dataBlock: b, time: 0))
                mapped.append(b)
                v += 1
            } else {
                spare.append(b)
            }
        }
        for b in spare { try md.tm.decData(b) }
        for dev in [UInt64(2), 3] {
            try md.createThin(dev)
            for (i, b) in mapped.suffix(3).enumerated() {
                try md.tm.incData(b)
                try md.insertMapping(dev, UInt64(i) * 1000, BlockTime(dataBlock: b, time: 0))
            }
        }
        try md.commit()
        return (dev, mapped)
    }

    @Test func countsComeFromTheBitmapsOnDemand() throws {
        let (dev, mapped) = try Self.scatteredPool()
        let md = try PoolMetadata(device: dev)
        // Opening read the index and the last, partial bitmap: not one page per bitmap.
        #expect(md.tm.dataMap.pageReads == 1)
        #expect(md.freeDataBlocks == Self.dataBlocks - UInt64(mapped.count))
        #expect(try md.dataRefCount(mapped[0]) == 1)
        #expect(try md.dataRefCount(mapped[0] + 1) == 0)
        #expect(md.tm.dataMap.pageReads == 2)
        // Counts of 3 live in the overflow tree and come back from it.
        for b in mapped.suffix(3) { #expect(try md.dataRefCount(b) == 3) }
        // Every count agrees with an independent recount of the trees.
        let r = try MetadataReader(source: dev)
        let recount = try Recount.count(r)
        #expect(try Recount.onDisk(r.live.dataSpaceMap) == recount.data)
        for (b, c) in recount.data { #expect(try md.dataRefCount(b) == c, "block \(b)") }
    }

    @Test func changesSurviveCommitsAndReopening() throws {
        let (dev, mapped) = try Self.scatteredPool()
        var md = try PoolMetadata(device: dev)
        let shared = Array(mapped.suffix(3))
        // 3 → 2 (out of the overflow tree), 1 → 0 in the first bitmap, a new block in the last.
        try md.removeMapping(3, 0)
        try md.removeMapping(1, 0)
        try md.insertMapping(1, 999_999, BlockTime(dataBlock: try #require(try md.allocateDataBlock()), time: 0))
        // A block freed in this transaction is not handed out again before the commit.
        #expect(try md.dataRefCount(mapped[0]) == 0)
        var handedOut: [UInt64] = []
        while let b = try md.allocateDataBlock() { handedOut.append(b) }
        #expect(!handedOut.contains(mapped[0]))
        for b in handedOut { try md.tm.decData(b) }
        try md.commit()
        md = try PoolMetadata(device: dev)
        #expect(try md.dataRefCount(shared[0]) == 2)
        #expect(try md.dataRefCount(shared[1]) == 3)
        #expect(try md.dataRefCount(mapped[0]) == 0)
        let r = try MetadataReader(source: dev)
        #expect(try Recount.onDisk(r.live.dataSpaceMap) == (try Recount.count(r)).data)
        #expect(try MetadataChecker(source: dev).check().dataBlocksInUse == mapped.count)
        // After the commit the freed block is allocatable again: the search wraps round to it.
        var again: [UInt64] = []
        while let b = try md.allocateDataBlock() { again.append(b) }
        #expect(again.contains(mapped[0]))
    }

    @Test func thinToolsAcceptTheWrittenSpaceMap() throws {
        try Tool.requireThinTools()
        let dir = TempDir("dsm")
        defer { withExtendedLifetime(dir) {} }
        let (dev, _) = try Self.scatteredPool()
        let path = "\(dir.path)/metadata"
        var bytes = [UInt8](repeating: 0, count: Int(dev.blockCount) * 4096)
        for (b, blk) in dev.blocks { bytes.replaceSubrange(Int(b) * 4096..<Int(b + 1) * 4096, with: blk) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try Tool.run("thin_check", [path])
        #expect(r.ok, "\(r.stderr)")
    }

    /// Sets bitmap entry `e` to `v` (the lower-numbered bit of a pair is worth 2).
    static func setBitmapValue(_ b: inout [UInt8], _ e: Int, _ v: UInt64) {
        let off = 16 + 8 * (e / 32)
        var word = b.le64(off)
        let p = UInt64(2 * (e % 32))
        word &= ~(3 << p)
        word |= ((v >> 1) & 1) << p | (v & 1) << (p + 1)
        b.setLE64(off, word)
    }

    @Test func windowedCheckFindsWhatTheSinglePassFinds() throws {
        let (dev, mapped) = try Self.scatteredPool()
        let whole = MetadataChecker(source: dev)
        let clean = try whole.check()
        #expect(whole.dataWindows == 1)
        let small = MetadataChecker(source: dev)
        small.dataRefBudget = 200  // about one bitmap's references per window
        #expect(try small.check() == clean)
        #expect(small.dataWindows >= 3)
        // A wrong count in the third bitmap: both report the same block and numbers.
        let victim = try #require(mapped.first { $0 / entriesPerBitmap == 2 && $0 % entriesPerBitmap > 0 })
        let r = try MetadataReader(source: dev)
        let loc = try r.live.dataSpaceMap.indexEntries()[2].bitmapBlock
        var b = dev.blocks[loc]!
        Self.setBitmapValue(&b, Int(victim % entriesPerBitmap), 2)
        Checksum.seal(&b, kind: .bitmap, location: loc)
        dev.blocks[loc] = b
        func problem(_ budget: Int) -> String? {
            let c = MetadataChecker(source: dev)
            c.dataRefBudget = budget
            do { _ = try c.check(); return nil } catch { return "\(error)" }
        }
        let expected = "data block \(victim): reference count 2 in the data space map (bitmap block \(loc)), but 1 mappings in distinct leaves reference it"
        #expect(problem(1 << 24) == expected)
        #expect(problem(200) == expected)
        #expect(problem(1) == expected)
    }
}
