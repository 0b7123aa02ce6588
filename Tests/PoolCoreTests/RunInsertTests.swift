import Foundation
@testable import PoolCore
import Testing
import TestSupport

/// Runs of consecutive blocks mapped in one B-tree pass (`BTree.insertRun`,
/// `PoolMetadata.insertMappings`, `ThinPool.write` of several whole blocks) give the metadata
/// that one insert per block gives.
@Suite struct RunInsertTests {
    /// Two identical pools: device 1 with scattered mappings (some overwritten below), device 2
    /// a snapshot of it (so the run's leaves are shared and get copied on write).
    static func twinPools(seed: UInt64) throws -> [(MemoryMetadataDevice, PoolMetadata)] {
        try (0..<2).map { _ in
            let dev = MemoryMetadataDevice(blockCount: 2048)
            let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: 60_000)
            try md.createThin(1)
            var rng = SplitMix(seed)
            for _ in 0..<900 {
                let v = rng.next() % 20_000
                try md.insertMapping(1, v, BlockTime(dataBlock: try #require(try md.allocateDataBlock()), time: 0))
            }
            try md.createSnapshot(2, of: 1)
            try md.commit()
            return (dev, md)
        }
    }

    struct SplitMix {
        var s: UInt64
        init(_ s: UInt64) { self.s = s }
        mutating func next() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test(arguments: [(UInt64(1), UInt64(0), 3000), (2, 7_000, 600), (3, 19_990, 40), (4, 5, 1)])
    func runGivesTheMetadataOfOneInsertPerBlock(seed: UInt64, first: UInt64, count: Int) throws {
        let pools = try Self.twinPools(seed: seed)
        let (runDev, runMd) = pools[0], (oneDev, oneMd) = pools[1]
        for dev: UInt64 in [2, 1] {
            var blocks: [UInt64] = []
            for _ in 0..<count { blocks.append(try #require(try runMd.allocateDataBlock())) }
            try runMd.insertMappings(dev, first: first, blocks.map { BlockTime(dataBlock: $0, time: 1) })
            for i in 0..<count {
                let b = try #require(try oneMd.allocateDataBlock())
                #expect(b == blocks[i])
                try oneMd.insertMapping(dev, first + UInt64(i), BlockTime(dataBlock: b, time: 1))
            }
        }
        #expect(try runMd.details(of: 1) == (try oneMd.details(of: 1)))
        try runMd.commit()
        try oneMd.commit()
        // Byte for byte the same metadata: same tree shapes, same blocks, same counts.
        #expect(runDev.blocks == oneDev.blocks)
        #expect(try MetadataChecker(source: runDev).check().leafMappings > count)
    }

    @Test func poolWriteOfManyBlocksMatchesBlockByBlock() throws {
        try Tool.requireThinTools()
        let dir = TempDir("runs")
        defer { withExtendedLifetime(dir) {} }
        let bs = 65536
        var rng = SplitMix(9)
        var input = [UInt8](repeating: 0, count: 300 * bs)
        for i in stride(from: 0, to: input.count, by: 8) { input.setLE64(i, rng.next()) }
        var dumps: [String] = []
        for byBlock in [false, true] {
            let folder = "\(dir.path)/\(byBlock ? "one" : "run")"
            let pool = try ThinPool.create(folder: folder, dataSize: 64 << 20, blockSize: UInt64(bs))
            try pool.createThin(1, virtualSize: 32 << 20)
            // Some blocks first (one in the middle written in place later, some overwritten by the runs).
            try pool.write(1, offset: UInt64(40 * bs), [UInt8](repeating: 7, count: 3 * bs))
            try pool.commit()
            try pool.snapshot(origin: 1, as: 2)
            if byBlock {
                for b in 0..<300 { try pool.write(1, offset: UInt64((10 + b) * bs), Array(input[(b * bs)..<((b + 1) * bs)])) }
            } else {
                try pool.write(1, offset: UInt64(10 * bs), input)
            }
            try pool.write(1, offset: UInt64(500 * bs + 100), [UInt8](repeating: 9, count: 2 * bs))  // unaligned: two partial blocks
            try pool.commit()
            #expect(try pool.read(1, offset: UInt64(10 * bs), count: input.count) == input)
            #expect(try pool.read(2, offset: UInt64(40 * bs), count: bs) == [UInt8](repeating: 7, count: bs))
            pool.close()
            let check = try Tool.run("thin_check", ["\(folder)/metadata"])
            #expect(check.ok, "\(check.stderr)")
            dumps.append(try Tool.run("thin_dump", ["\(folder)/metadata"]).stdout)
        }
        #expect(dumps[0] == dumps[1])
        #expect(dumps[0].contains("length=\"300\""))
    }
}
