import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Pools written by our own PoolCore write path (snapshots share nodes and leaves, as on a
/// kernel): `pool check` clean, `dump` == thin_dump (with -m too), `pool ls` == thin_ls.
@Suite struct WrittenPoolReadTests {
    @Test(arguments: [UInt64(1), 2, 3])
    func writtenPoolsReadLikeTheOracle(seed: UInt64) throws {
        try Tool.requireThinTools()
        var rng = SeededRNG(seed: seed)
        let dir = TempDir("written")
        defer { withExtendedLifetime(dir) {} }
        let path = dir.sparseFile("meta", size: 16 << 20)
        let md = try PoolMetadata(formatting: try FileMetadataDevice(path: path, writable: true), dataBlockSectors: 128, dataBlocks: 40_000)
        try md.createThin(1)
        for v in 0..<UInt64(3000) where rng.next() % 4 != 0 {
            _ = try md.insertMapping(1, v, BlockTime(dataBlock: md.allocateDataBlock()!, time: 0))
        }
        try md.commit()
        try md.createSnapshot(2, of: 1)
        try md.commit()
        // Diverge both sides: overwrite some blocks, remove some, add some.
        for _ in 0..<400 {
            let dev = UInt64(1 + rng.next() % 2), v = rng.next() % 3500
            if rng.next() % 5 == 0 {
                _ = try md.removeMapping(dev, v)
            } else {
                _ = try md.insertMapping(dev, v, BlockTime(dataBlock: md.allocateDataBlock()!, time: 1))
            }
        }
        try md.commit()
        try md.reserveMetadataSnapshot()
        try md.commit()
        try md.createSnapshot(3, of: 2)
        for v in stride(from: UInt64(100), to: 200, by: 3) {
            _ = try md.insertMapping(3, v, BlockTime(dataBlock: md.allocateDataBlock()!, time: 2))
        }
        try md.commit()

        let c = try Read.check(path)
        #expect(c.hasPrefix("clean: "), "seed \(seed): \(c)")
        #expect(c.contains("metadata snapshot held at block"))
        // Leaves are shared (snapshots, the held snapshot): fewer distinct-leaf mappings than mapped blocks.
        let mapped = try [1, 2, 3].reduce(UInt64(0)) { $0 + (try md.details(of: $1).mappedBlocks) }
        let distinct = try #require(c.split(separator: " ").firstIndex(of: "mappings").map { UInt64(c.split(separator: " ")[$0 - 1])! })
        #expect(distinct < mapped, "\(c)")
        for args in [[String](), ["-m"]] {
            let t = try Tool.run("thin_dump", [path] + args)
            try #require(t.ok, "\(t.stderr)")
            #expect(try Read.dump(["--metadata", path] + args) == t.stdout, "seed \(seed) \(args)")
            let l = try Tool.run("thin_ls", [path, "-o", Read.allLsFields] + args)
            #expect(try Read.ls(["--metadata", path, "--fields", Read.allLsFields] + args) == l.stdout, "seed \(seed) \(args)")
        }
        #expect((try Tool.run("thin_check", [path])).ok)
    }
}
