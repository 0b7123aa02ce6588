import Foundation
import Testing
import PoolCore
import TestSupport

/// Low-space events (FORMAT.md §6.9) fire exactly when free space crosses the threshold, not before.
@Suite struct LowSpaceEventTests {
    static let bs: UInt64 = 65536

    static func metadataLows(_ p: ThinPool) -> Int {
        p.events.filter { if case .metadataLow = $0 { return true } else { return false } }.count
    }
    static func dataLows(_ p: ThinPool) -> Int {
        p.events.filter { if case .dataLow = $0 { return true } else { return false } }.count
    }

    /// One new device with one block per step, committed; the free metadata count after each
    /// step comes from an independent walk of the committed metadata (MetadataChecker).
    @Test func metadataEventFiresWhenCrossingTheThreshold() throws {
        let tmp = TempDir("mlow")
        let dir = tmp.file("pool")
        let blocks: UInt64 = 80
        let pool = try ThinPool.create(folder: dir, dataSize: 400 * Self.bs, metadataSize: blocks * 4096)
        pool.dataLowWaterMark = 0
        // FORMAT.md §6.9: threshold min(1024, blocks / 4); reserve min(4096, blocks / 10) (at least 8 here) hidden from the free count.
        let threshold = min(1024, blocks / 4), reserve = max(8, min(4096, blocks / 10))
        var crossedAt: Int? = nil
        for step in 0..<60 {
            try pool.createThin(UInt64(step), virtualSize: 4 * Self.bs)
            try pool.write(UInt64(step), offset: 0, [UInt8](repeating: UInt8(step), count: Int(Self.bs)))
            try pool.commit()
            let r = try MetadataChecker(path: "\(dir)/metadata").check()
            let free = r.metadataBlockCount - UInt64(r.metadataBlocksInUse)
            let visible = free > reserve ? free - reserve : 0
            if crossedAt == nil, visible <= threshold { crossedAt = step }
            let want = crossedAt == nil ? 0 : 1
            #expect(Self.metadataLows(pool) == want, "step \(step): \(visible) visible free blocks (threshold \(threshold)), events \(pool.events)")
            if let c = crossedAt, step > c + 3 { break }
        }
        #expect(crossedAt != nil && crossedAt! > 5, "the threshold was crossed, and not at once")
        pool.close()
    }

    /// Writes one new block per step into a pool whose low-water mark is 10 of 64 blocks:
    /// the event fires at the write that leaves 10 free blocks, once.
    @Test func dataEventFiresAtTheLowWaterMark() throws {
        let tmp = TempDir("dlow")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        pool.dataLowWaterMark = 10
        try pool.commit()
        var seen: [PoolEvent] = []
        pool.onEvent = { seen.append($0) }
        try pool.createThin(1, virtualSize: 64 * Self.bs)
        for k in 1...60 {
            try pool.write(1, offset: UInt64(k - 1) * Self.bs, [UInt8](repeating: 1, count: Int(Self.bs)))
            let free = 64 - k
            #expect(Self.dataLows(pool) == (free <= 10 ? 1 : 0), "after \(k) blocks (\(free) free): \(pool.events)")
            if k % 7 == 0 { try pool.commit() }
        }
        #expect(seen == [.dataLow(freeBlocks: 10, lowWaterMark: 10)])
        pool.close()
        // The mark is kept in pool.json across opens.
        let again = try ThinPool(folder: dir)
        #expect(again.dataLowWaterMark == 10)
        again.close()
    }
}
