import Delta
import Foundation
import PoolCore
import Testing
import TestSupport

/// The receiver's per-block digest maps of a userspace pool (`digests/<dev>` in the pool folder):
/// an incremental takes replaced blocks' contributions from its base's map instead of reading them,
/// gets the same digest, and never uses a map that is not its base's exactly.
@Suite struct DigestMapTests {
    static func mapPath(_ dir: TempDir, _ dev: UInt64) -> String { dir.file("pool/digests/\(dev)") }

    /// Receives `stream`, checking its digest against the sender model's, the trailer's and a full
    /// recomputation from the device's bytes.
    @discardableResult
    static func receive(_ pool: ThinPool, _ s: SenderModel, _ id: UInt64, from base: UInt64?, as target: UInt64? = nil,
                        stream: UInt64, _ note: String) throws -> Replayer {
        let r = Replayer(pool: pool)
        r.targetID = target
        let sum = try r.receive(from: MemorySource(try s.send(id, from: base, streamID: stream), chunk: 70_000))
        let dev = target ?? id
        #expect(sum.outcome == .received, "\(note)")
        #expect(sum.contentDigest == s.digest(id), "\(note): digest vs the sender model's")
        #expect(sum.trailer?.targetDigest == sum.contentDigest, "\(note): digest vs the trailer's")
        #expect(try pool.contentDigest(of: dev, blockSize: s.blockSize) == sum.contentDigest, "\(note): digest vs a full recomputation")
        #expect(try pool.read(dev, offset: 0, count: s.image(id).count) == s.image(id), "\(note): bytes")
        return r
    }

    /// The map's entries, read from the file, against each block's contribution computed from the device's bytes.
    static func expectMapMatchesDevice(_ dir: TempDir, _ pool: ThinPool, _ dev: UInt64, blockSize bs: Int) throws {
        let image = try pool.read(dev, offset: 0, count: Int(try pool.virtualSize(of: dev)))
        let file = try Data(contentsOf: URL(fileURLWithPath: mapPath(dir, dev)))
        var wrong = 0
        image.withUnsafeBytes { img in
            for v in 0..<img.count / bs {
                let want = ContentDigest.contribution(block: UInt64(v), UnsafeRawBufferPointer(rebasing: img[v * bs..<(v + 1) * bs])) ?? (0, 0)
                let at = 4096 + 16 * v
                var got: (UInt64, UInt64) = (0, 0)
                if at + 16 <= file.count {
                    got.0 = file[at..<at + 8].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                    got.1 = file[at + 8..<at + 16].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
                }
                if got != want { wrong += 1 }
            }
        }
        #expect(wrong == 0, "device \(dev): \(wrong) map entries differ from the blocks' contributions")
    }

    @Test func incrementalsTakeOldContributionsFromTheBaseMap() throws {
        let dir = TempDir("digest-map")
        let (s, ids) = ReplayTests.chain(seed: 71, length: 5)
        var pool = try ThinPoolReplayTests.makePool(dir)
        var base: UInt64?
        for (k, id) in ids.enumerated() {
            let r = try Self.receive(pool, s, id, from: base, stream: UInt64(10 + k), "device \(id)")
            #expect(r.wroteDigestMap, "device \(id) has a map")
            if base != nil {
                #expect(r.usedDigestMap, "device \(id) used its base's map")
                #expect(r.replacedBlocksRead == 0, "device \(id): replaced blocks read back")
            }
            #expect(FileManager.default.fileExists(atPath: Self.mapPath(dir, id)))
            #expect(!FileManager.default.fileExists(atPath: Self.mapPath(dir, id) + ".new"))
            pool.close()
            pool = try ThinPool(folder: dir.file("pool"))
            try Self.expectMapMatchesDevice(dir, pool, id, blockSize: s.blockSize)
            base = id
        }
        // Without the base's map the same kind of receive reads the replaced blocks back (the count
        // above is not zero for want of replaced blocks), and then writes no map.
        s.snapshot(40, of: ids.last!)
        s.mutate(40, changes: 12)
        try FileManager.default.removeItem(atPath: Self.mapPath(dir, ids.last!))
        let r = try Self.receive(pool, s, 40, from: ids.last!, stream: 40, "without the base's map")
        #expect(!r.usedDigestMap)
        #expect(r.replacedBlocksRead > 0)
        #expect(!r.wroteDigestMap)
        #expect(!FileManager.default.fileExists(atPath: Self.mapPath(dir, 40)))
        #expect(try Tool.run("thin_check", ["--quiet", dir.file("pool/metadata")]).ok)
    }

    /// A write to the base (its token changes), a map left at the path by another receive (a crash
    /// between the commit and the rename, or a deleted device of the same id), another device's map:
    /// none is used, and the digest stays right.
    @Test func staleMapsAreNotUsed() throws {
        let dir = TempDir("digest-map-stale")
        let s = SenderModel(seed: 72)
        s.create(1, blocks: 48)
        s.mutate(1, changes: 40)
        for (id, of) in [(2, 1), (3, 1), (4, 3), (5, 2)] as [(UInt64, UInt64)] {
            s.snapshot(id, of: of)
            s.mutate(id, changes: 10)
        }
        let pool = try ThinPoolReplayTests.makePool(dir)
        try Self.receive(pool, s, 1, from: nil, stream: 1, "full")
        try Self.receive(pool, s, 2, from: 1, stream: 2, "2 onto 1")
        let mapOf2 = try Data(contentsOf: URL(fileURLWithPath: Self.mapPath(dir, 2)))

        // Device 2 deleted (its map left behind), and 3 (another snapshot of 1) received as id 2.
        try pool.delete(2)
        try pool.commit()
        #expect(FileManager.default.fileExists(atPath: Self.mapPath(dir, 2)))
        try Self.receive(pool, s, 3, from: 1, as: 2, stream: 3, "3 onto 1 as 2")
        // A crash between the receive's commit and its map's rename: the old map is at the path.
        try mapOf2.write(to: URL(fileURLWithPath: Self.mapPath(dir, 2)))
        var r = try Self.receive(pool, s, 4, from: 3, as: 6, stream: 4, "4 onto 3 (local 2) with a stale map")
        #expect(!r.usedDigestMap && r.replacedBlocksRead > 0, "the stale map was used")
        #expect(!r.wroteDigestMap)

        // Another device's valid map (1's) copied over 2's path: not used either.
        try? FileManager.default.removeItem(atPath: Self.mapPath(dir, 6))
        try pool.delete(6)
        try pool.commit()
        try FileManager.default.copyItem(atPath: Self.mapPath(dir, 1), toPath: Self.mapPath(dir, 2) + ".x")
        try? FileManager.default.removeItem(atPath: Self.mapPath(dir, 2))
        try FileManager.default.moveItem(atPath: Self.mapPath(dir, 2) + ".x", toPath: Self.mapPath(dir, 2))
        r = try Self.receive(pool, s, 4, from: 3, as: 6, stream: 5, "4 onto 3 (local 2) with device 1's map")
        #expect(!r.usedDigestMap && r.replacedBlocksRead > 0, "another device's map was used")

        // A write to device 1 in place of nothing else: its write token changes, so its map no
        // longer opens (and the receive is refused as before, by the mapping digest).
        let binding = try #require(try pool.digestMapBinding(of: 1))
        #expect(BlockDigestMap.open(Self.mapPath(dir, 1), blockSize: s.blockSize, binding: binding) != nil)
        try pool.write(1, offset: 0, [UInt8](repeating: 9, count: 512))
        try pool.commit()
        let after = try #require(try pool.digestMapBinding(of: 1))
        #expect(after.writeToken != binding.writeToken)
        #expect(BlockDigestMap.open(Self.mapPath(dir, 1), blockSize: s.blockSize, binding: after) == nil)
        #expect(throws: ReplayError.baseModified(local: 1, base: s.identities[1]!)) {
            _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(3, from: 1, streamID: 6)))
        }
        #expect(try Tool.run("thin_check", ["--quiet", dir.file("pool/metadata")]).ok)
    }

    /// A receive with checkpoints uses its base's map but writes none (its commits come before the
    /// map could be complete); the next incremental then reads back, and still gets the digest right.
    @Test func checkpointedReceivesWriteNoMap() throws {
        let dir = TempDir("digest-map-ckpt")
        let (s, ids) = ReplayTests.chain(seed: 73, length: 2)
        let pool = try ThinPoolReplayTests.makePool(dir)
        try Self.receive(pool, s, ids[0], from: nil, stream: 1, "full")
        let r = Replayer(pool: pool)
        r.checkpointBytes = 64 * 1024
        let sum = try r.receive(from: MemorySource(try s.send(ids[1], from: ids[0], streamID: 2)))
        #expect(sum.contentDigest == s.digest(ids[1]))
        #expect(r.usedDigestMap && !r.wroteDigestMap)
        #expect(!FileManager.default.fileExists(atPath: Self.mapPath(dir, ids[1])))
        let r2 = try Self.receive(pool, s, ids[2], from: ids[1], stream: 3, "onto the checkpointed one")
        #expect(!r2.usedDigestMap && r2.replacedBlocksRead > 0)
    }
}
