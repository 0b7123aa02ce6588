import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// In-core reference counts (FORMAT.md §4): allocation rules, large counts, and bitmaps
/// rendered exactly as the kernel wrote them.
@Suite("RefCounts")
struct RefCountsTests {
    @Test func allocationIsLinearThenWrapsAndNeverReusesABlockFreedThisTransaction() throws {
        var rc = RefCounts(blockCount: 8)
        #expect((0..<5).map { _ in rc.allocate() } == [0, 1, 2, 3, 4])
        rc.committed()
        #expect(try rc.dec(1) == 0)          // free now, but the last commit still uses it
        #expect(rc.freeCount == 4 && rc.allocatableCount == 3)
        #expect([rc.allocate(), rc.allocate(), rc.allocate()] == [5, 6, 7])
        #expect(rc.allocate() == nil, "block 1 was freed in this transaction and must wait for a commit")
        rc.committed()
        #expect(rc.allocate() == 1)            // wraps to the gap once committed
        #expect(rc.allocate() == nil && rc.allocatedCount == 8)
    }

    @Test func countsAboveTwoFiftyFourAndUnderflow() throws {
        var rc = RefCounts(blockCount: 3)
        rc.set(2, 70_000)
        #expect(rc[2] == 70_000)
        try rc.inc(2, by: 5)
        #expect(rc[2] == 70_005)
        rc.set(2, 255)
        #expect(try rc.dec(2) == 254 && rc[2] == 254)
        #expect(rc.allocatedCount == 1)
        #expect(throws: MetadataError.badSpaceMap(block: 0, reason: "reference count of block 0 would drop below zero")) {
            try rc.dec(0)
        }
        #expect(rc[0] == 0 && rc.allocatedCount == 1)
    }

    @Test func bitmapBitOrderAndIndexEntry() {
        var rc = RefCounts(blockCount: 100)
        for b in 0..<4 { rc.set(UInt64(b), 1) }   // four blocks counted 1: byte 0xAA
        rc.set(4, 2)                               // lower bit of the pair is worth 2
        rc.set(5, 1)
        rc.set(6, 7)                               // 3 = "see the overflow tree"
        let (block, entry) = rc.renderBitmap(0, location: 42)
        #expect(block[16] == 0xAA)
        #expect(block[17] == 0x01 | 0x02 << 2 | 0x03 << 4)
        #expect(block[18...].allSatisfy { $0 == 0 })
        #expect(entry == IndexEntry(bitmapBlock: 42, freeCount: 16320 - 7, noneFreeBefore: 7))
        #expect(rc.overflowEntries(ofBitmap: 0) == [6: 7])
    }

    /// Both space maps of kernel images, loaded from disk and rendered again, give the
    /// kernel's bitmaps byte for byte and its index entries (free count and hint).
    @Test(arguments: ["tmeta", "tmeta_with_shared_internals_and_leaves", "tmeta_with_metadata_snap"])
    func renderedBitmapsEqualTheKernels(name: String) throws {
        let dir = TempDir("rc-k")
        let reader = try MetadataReader(path: try KernelFixtures.decompress(name, into: dir))
        for sm in [reader.live.dataSpaceMap, reader.live.metadataSpaceMap] {
            let entries = try sm.indexEntries()
            var rc = RefCounts(blockCount: sm.root.blockCount)
            for (b, c) in try sm.allCounts().enumerated() where c > 0 { rc.set(UInt64(b), c) }
            #expect(rc.allocatedCount == sm.root.allocatedCount, "\(name) \(sm.kind)")
            #expect(rc.bitmapCount == entries.count)
            for (i, e) in entries.enumerated() {
                let (ours, entry) = rc.renderBitmap(i, location: e.bitmapBlock)
                let kernels = try sm.bitmap(e)
                #expect(ours[16...] == kernels[16...], "\(name) \(sm.kind) bitmap \(i)")
                #expect(entry == e, "\(name) \(sm.kind) index entry \(i)")
            }
        }
    }

    @Test func growingAddsFreeBlocksAndMarksTheirBitmaps() {
        var rc = RefCounts(blockCount: 16320 + 10)
        for _ in 0..<16325 { _ = rc.allocate() }
        rc.committed()
        rc.grow(to: 3 * 16320)
        #expect(rc.blockCount == 3 * 16320 && rc.freeCount == 3 * 16320 - 16325)
        #expect(rc.dirtyBitmaps == [1, 2])
        #expect(rc.allocate() == 16325)
        let (_, e1) = rc.renderBitmap(1, location: 9)
        #expect(e1.freeCount == 16320 - 6 && e1.noneFreeBefore == 6)
    }
}
