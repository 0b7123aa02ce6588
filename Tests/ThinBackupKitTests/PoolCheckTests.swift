import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// `thin-backup pool check` on good images (clean) and on deliberately corrupted copies.
@Suite struct PoolCheckTests {
    @Test(arguments: KernelFixtures.names)
    func kernelFixturesAreClean(name: String) throws {
        let dir = TempDir("checkk")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress(name, into: dir)
        let s = try Read.check(meta)
        #expect(s.hasPrefix("clean: "), "\(name): \(s)")
        try Tool.requireThinTools()
        // Independent totals from thin_dump: devices, and data blocks in use = the union of
        // the blocks mapped by the live trees and by the held snapshot's trees.
        let live = Read.dataBlocks(inDump: try Tool.run("thin_dump", [meta]).stdout)
        var used = live.blocks
        let held = try Tool.run("thin_dump", [meta, "-m"])
        if held.ok { used.formUnion(Read.dataBlocks(inDump: held.stdout).blocks) }
        #expect(s.contains("data \(used.count)/\(live.nrDataBlocks) blocks in use"), "\(name): \(s)")
        #expect(s.contains(", \(try Read.deviceIDs(meta).count) devices,"), "\(name): \(s)")
    }

    @Test(arguments: [(UInt64(41), 0), (42, 1), (43, 300), (44, 9000), (45, 60_000), (46, 500), (47, 700), (48, 900)])
    func randomPoolsAreClean(seed: UInt64, mappings: Int) throws {
        try Tool.requireThinTools()
        let dir = TempDir("checkr")
        defer { withExtendedLifetime(dir) {} }
        let pool = RandomPoolXML.generate(seed: seed, mappings: mappings)
        let meta = try RandomPool.restore(pool, into: dir)
        let s = try Read.check(meta)
        // thin_restore gives each device its own leaves, so every mapping sits in a distinct leaf.
        #expect(s.contains(" \(mappings) mappings in distinct leaves"), "seed \(seed): \(s)")
        let distinctData = Set(pool.devices.flatMap { $0.mappings.map(\.dataBlock) }).count
        #expect(s.contains("data \(distinctData)/\(pool.dataBlockCount) blocks in use"), "seed \(seed): \(s)")
        #expect(s.contains("NEEDS_CHECK flag set") == (pool.flags == 1), "seed \(seed): \(s)")
    }

    @Test func needsCheckFlagIsReported() throws {
        try Tool.requireThinTools()
        let dir = TempDir("checkn")
        defer { withExtendedLifetime(dir) {} }
        for flags: UInt32 in [0, 1] {
            var pool = RandomPoolXML.generate(seed: 49, mappings: 100)
            pool.flags = flags
            let meta = try RandomPool.restore(pool, into: dir, name: "flags\(flags)")
            let s = try Read.check(meta)
            #expect(s.hasPrefix("clean: ") && s.contains("NEEDS_CHECK flag set") == (flags == 1), "\(s)")
            #expect(try Read.dump(["--metadata", meta]) == (try Tool.run("thin_dump", [meta])).stdout)
        }
    }

    /// The data block of device `dev`'s first mapping, and where its count sits in the data space map.
    static func firstDataBlock(_ meta: String) throws -> (data: UInt64, bitmap: UInt64, count: UInt32) {
        let r = try MetadataReader(path: meta)
        let view = r.live
        var first: UInt64?
        for (id, _) in try view.devices() where first == nil {
            try view.forEachMapping(of: id) { _, bt in if first == nil { first = bt.dataBlock } }
        }
        let d = try #require(first)
        let sm = view.dataSpaceMap
        let entry = try sm.indexEntries()[Int(d / entriesPerBitmap)]
        return (d, entry.bitmapBlock, try sm.count(of: d))
    }

    /// Sets the 2-bit count of entry `e` in a bitmap block.
    static func setBitmapValue(_ b: inout [UInt8], _ e: Int, _ v: UInt64) {
        let off = 16 + 8 * (e / 32)
        var word = b.le64(off)
        let p = UInt64(2 * (e % 32))
        word &= ~(3 << p)
        word |= ((v >> 1) & 1) << p | (v & 1) << (p + 1)  // lower-numbered bit is worth 2
        b.setLE64(off, word)
    }

    @Test(arguments: ["tmeta", "tmeta_with_shared_internals_and_leaves"])
    func wrongDataCountIsFound(name: String) throws {
        let dir = TempDir("checkd")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress(name, into: dir)
        let (d, bitmap, count) = try Self.firstDataBlock(meta)
        try #require(count == 1 || count == 2)
        try Surgery(path: meta).patch(bitmap, reseal: .bitmap) { b in
            Self.setBitmapValue(&b, Int(d % entriesPerBitmap), UInt64(3 - count))  // 1 ↔ 2
        }
        let err = try #require(Read.checkFailure(meta))
        #expect(err == "data block \(d): reference count \(3 - count) in the data space map (bitmap block \(bitmap)), but \(count) mappings in distinct leaves reference it")
        try Tool.requireThinTools()
        // thin_check 0.9.0 does not check data counts (the reason we do).
        #expect((try Tool.run("thin_check", [meta])).ok)
    }

    @Test func wrongMetadataCountIsFound() throws {
        let dir = TempDir("checkm")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress("tmeta", into: dir)
        let r = try MetadataReader(path: meta)
        let details = r.superblock.deviceDetailsRoot
        let msm = r.live.metadataSpaceMap
        let entry = try msm.indexEntries()[Int(details / entriesPerBitmap)]
        let stored = try msm.count(of: details)
        try #require(stored == 1)
        try Surgery(path: meta).patch(entry.bitmapBlock, reseal: .bitmap) { b in
            Self.setBitmapValue(&b, Int(details % entriesPerBitmap), 2)
        }
        #expect(Read.checkFailure(meta) == "block \(details): metadata reference count 2 in the space map, but 1 references found (device details tree)")
        try Tool.requireThinTools()
        #expect(!(try Tool.run("thin_check", [meta])).ok)
    }

    @Test func leakedMetadataBlockIsFound() throws {
        let dir = TempDir("checkl")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress("tmeta_with_empty_roots", into: dir)
        let r = try MetadataReader(path: meta)
        let msm = r.live.metadataSpaceMap
        let counts = try msm.allCounts()
        let free = UInt64(try #require(counts.lastIndex(of: 0)))
        let entry = try msm.indexEntries()[Int(free / entriesPerBitmap)]
        try Surgery(path: meta).patch(entry.bitmapBlock, reseal: .bitmap) { b in
            Self.setBitmapValue(&b, Int(free % entriesPerBitmap), 1)
        }
        #expect(Read.checkFailure(meta) == "block \(free): metadata reference count 1 in the space map, but 0 references found (not referenced)")
    }
}
