import Foundation
import Testing
@testable import PoolCore
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

@Suite struct PoolBehaviourTests {
    static let bs: UInt64 = 65536

    static func block(_ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: Int(bs)) }

    /// Every node block reachable from a committed superblock's mapping tree of `dev`.
    static func bottomNodes(_ view: MetadataView, _ dev: UInt64) throws -> Set<UInt64> {
        var out = Set<UInt64>()
        try view.mappingTree(of: dev).walkNodes { n, _ in out.insert(n.location); return .children }
        return out
    }

    @Test func snapshotThenOneBlockWriteCopiesOnlyThePath() throws {
        let tmp = TempDir("share")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 1400 * Self.bs)
        try pool.createThin(1, virtualSize: 1200 * Self.bs)
        // 700 blocks: the bottom tree has an internal root over several leaves.
        try pool.write(1, offset: 0, [UInt8](repeating: 7, count: Int(700 * Self.bs)))
        try pool.snapshot(origin: 1, as: 2)
        try pool.commit()
        let before = try pool.committedView().live
        let nodes1 = try Self.bottomNodes(before, 1)
        #expect(try before.mappingRoot(of: 1) == before.mappingRoot(of: 2))
        #expect(nodes1.count >= 4)
        try pool.write(2, offset: 300 * Self.bs, Self.block(9))
        try pool.commit()
        let after = try pool.committedView().live
        let n1 = try Self.bottomNodes(after, 1), n2 = try Self.bottomNodes(after, 2)
        #expect(n1 == nodes1, "the origin's tree must be untouched")
        let fresh = n2.subtracting(nodes1)
        let depth = try after.mappingTree(of: 2).walkDepth(to: 300)
        #expect(fresh.count == depth, "new nodes \(fresh.count), path length \(depth)")
        #expect(n2.intersection(nodes1).count == n2.count - depth)
        #expect(try pool.readBlock(2, 300) == Self.block(9))
        #expect(try pool.readBlock(1, 300) == Self.block(7))
        #expect(try Oracle.check("\(dir)/metadata").ok)
    }

    @Test func lookupCostDoesNotGrowWithSnapshotDepth() throws {
        let tmp = TempDir("chain")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 1000 * Self.bs)
        try pool.createThin(0, virtualSize: 600 * Self.bs)
        try pool.write(0, offset: 0, [UInt8](repeating: 3, count: Int(400 * Self.bs)))
        for id in 1...100 {
            try pool.snapshot(origin: UInt64(id - 1), as: UInt64(id))
            try pool.write(UInt64(id), offset: UInt64(id) * Self.bs, Self.block(UInt8(id)))
        }
        try pool.commit()
        #expect(try Oracle.check("\(dir)/metadata").ok)
        func reads(_ dev: UInt64, _ v: UInt64) throws -> Int {
            let counter = CountingReader(try FileMetadataDevice(path: "\(dir)/metadata"))
            let r = try MetadataReader(source: counter)
            _ = try r.live.mappingTree(of: dev).lookup64(v)
            return counter.reads
        }
        let shallow = try reads(1, 399), deep = try reads(100, 399)
        #expect(deep == shallow, "depth-100 lookup read \(deep) blocks, depth-1 read \(shallow)")
        #expect(try pool.readBlock(100, 5) == Self.block(5))
        #expect(try pool.readBlock(100, 399) == Self.block(3))
        #expect(try pool.readBlock(100, 100) == Self.block(100))
        #expect(try pool.readBlock(50, 100) == Self.block(3))
    }

    @Test func misuseGivesClearErrorsAndLosesNothing() throws {
        let tmp = TempDir("misuse")
        let dir = tmp.file("pool")
        #expect(throws: PoolError.self) { try ThinPool.create(folder: tmp.file("bad"), dataSize: 1 << 20, blockSize: 100_000) }
        let pool = try ThinPool.create(folder: dir, dataSize: 12 * Self.bs)
        pool.dataLowWaterMark = 2
        try pool.createThin(1, virtualSize: 16 * Self.bs)
        try pool.write(1, offset: 0, Self.block(1))
        try pool.commit()
        #expect(throws: PoolError.busy("\(dir)/metadata")) { try ThinPool(folder: dir) }
        #expect(throws: PoolError.unknownDevice(5)) { try pool.snapshot(origin: 5, as: 6) }
        #expect(throws: PoolError.deviceExists(1)) { try pool.createThin(1) }
        #expect(throws: PoolError.beyondEnd(dev: 1, offset: 16 * Self.bs + 1, size: 16 * Self.bs)) {
            try pool.write(1, offset: 16 * Self.bs, [1])
        }
        #expect(throws: PoolError.self) { try pool.read(1, offset: 16 * Self.bs - 1, count: 2) }
        #expect(!pool.changedThisTransaction)
        try pool.reserveMetadataSnapshot()
        #expect(throws: PoolError.metadataSnapshotHeld(pool.heldMetadataSnapshot!)) { try pool.reserveMetadataSnapshot() }
        try pool.releaseMetadataSnapshot()
        #expect(throws: PoolError.noMetadataSnapshot) { try pool.releaseMetadataSnapshot() }
        pool.setReadOnly()
        #expect(throws: PoolError.readOnly(reason: "opened read-only")) { try pool.write(1, offset: 0, [9]) }
        #expect(throws: PoolError.readOnly(reason: "opened read-only")) { try pool.createThin(2) }
        try pool.setWriteMode()
        // Fill the pool: the failing write changes nothing and the pool turns read-only.
        try pool.write(1, offset: Self.bs, [UInt8](repeating: 2, count: Int(10 * Self.bs)))
        #expect(throws: PoolError.outOfDataSpace) { try pool.write(1, offset: 11 * Self.bs, [UInt8](repeating: 3, count: Int(5 * Self.bs))) }
        #expect(pool.mode == .readOnly(.outOfDataSpace))
        #expect(throws: PoolError.outOfDataSpace) { try pool.write(1, offset: 11 * Self.bs, [UInt8](repeating: 3, count: Int(2 * Self.bs))) }
        #expect(try pool.readBlock(1, 0) == Self.block(1))
        #expect(try pool.readBlock(1, 11) == Self.block(0))
        #expect(pool.events.contains { if case .dataLow = $0 { return true } else { return false } })
        try pool.resize(dataSize: 40 * Self.bs)
        #expect(pool.mode == .write)
        try pool.write(1, offset: 11 * Self.bs, [UInt8](repeating: 3, count: Int(5 * Self.bs)))
        try pool.commit()
        #expect(try Oracle.check("\(dir)/metadata").ok)
        let d = try Oracle.dump("\(dir)/metadata")
        #expect(d.devices[1]?.count == 16)
        #expect(d.root["nr_data_blocks"] == "40")
        // Unformatted metadata is refused.
        let raw = tmp.file("raw")
        try FileManager.default.createDirectory(atPath: raw, withIntermediateDirectories: true)
        tmp.sparseFile("raw/metadata", size: 1 << 20)
        tmp.sparseFile("raw/data", size: 1 << 20)
        #expect(throws: PoolError.unformatted("\(raw)/metadata")) { try ThinPool(folder: raw) }
    }

    @Test func runningOutOfMetadataRollsBackAndResizeRecovers() throws {
        let tmp = TempDir("mfull")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 4000 * Self.bs, metadataSize: 30 * 4096)
        try pool.createThin(1, virtualSize: 4000 * Self.bs)
        try pool.write(1, offset: 0, Self.block(1))
        try pool.commit()
        var failedAt: UInt64? = nil
        for v in stride(from: UInt64(1), to: 4000, by: 2) {
            do { try pool.write(1, offset: v * Self.bs, Self.block(2)) } catch {
                #expect(error as? PoolError == .outOfMetadataSpace)
                failedAt = v
                break
            }
        }
        #expect(failedAt != nil)
        #expect(pool.mode == .readOnly(.outOfMetadataSpace))
        #expect(pool.events.contains { if case .metadataLow = $0 { return true } else { return false } })
        #expect(!pool.changedThisTransaction)
        #expect(try pool.readBlock(1, 1) == Self.block(0), "rolled back to the last commit")
        #expect(try pool.readBlock(1, 0) == Self.block(1))
        #expect(throws: PoolError.self) { try pool.write(1, offset: 0, [1]) }
        try pool.resize(metadataSize: 1 << 20)
        #expect(pool.mode == .write)
        for v in stride(from: UInt64(1), to: 1000, by: 2) { try pool.write(1, offset: v * Self.bs, Self.block(2)) }
        try pool.commit()
        #expect(try Oracle.check("\(dir)/metadata").ok)
        #expect(try Oracle.dump("\(dir)/metadata").devices[1]?.count == 501)
    }

    @Test func grownMetadataIsTakenInOnOpen() throws {
        let tmp = TempDir("mgrow")
        let dir = tmp.file("pool")
        try ThinPool.create(folder: dir, dataSize: 100 * Self.bs, metadataSize: 1 << 20).close()
        let f = try RandomAccessFile(path: "\(dir)/metadata", writable: true)
        try f.truncate(to: 4 << 20)
        f.close()
        let pool = try ThinPool(folder: dir)
        #expect(pool.metadata.metadataBlockCount == 1024)
        try pool.createThin(1)
        try pool.commit()
        #expect(try Oracle.check("\(dir)/metadata").ok)
        #expect(try MetadataReader(path: "\(dir)/metadata").superblock.metadataSpaceMapRoot.blockCount == 1024)
    }

    @Test func metadataBeyondTheUsableMaximumIsCappedWithAWarning() throws {
        let tmp = TempDir("mbig")
        let dir = tmp.file("pool")
        try ThinPool.create(folder: dir, dataSize: 100 * Self.bs, metadataSize: 1 << 20).close()
        let f = try RandomAccessFile(path: "\(dir)/metadata", writable: true)
        try f.truncate(to: (maxMetadataBlocks + 5000) * 4096)
        f.close()
        let pool = try ThinPool(folder: dir)
        #expect(pool.metadata.metadataBlockCount == maxMetadataBlocks)
        #expect(pool.warnings.count == 1)
        try pool.createThin(1)
        try pool.commit()
        #expect(try MetadataReader(path: "\(dir)/metadata").superblock.metadataSpaceMapRoot.blockCount == 4_161_600)
    }

    @Test func externalOriginReadsUntilFirstWrite() throws {
        let tmp = TempDir("origin")
        let dir = tmp.file("pool")
        var rng = SeededRNG(seed: 3)
        let originBytes = (0..<(Int(Self.bs) * 3 + 1000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let origin = tmp.file("origin.img")
        try Data(originBytes).write(to: URL(fileURLWithPath: origin))
        let pool = try ThinPool.create(folder: dir, dataSize: 50 * Self.bs)
        try pool.createThin(1, virtualSize: 6 * Self.bs, originFile: origin)
        #expect(try pool.read(1, offset: 0, count: originBytes.count) == originBytes)
        #expect(try pool.readBlock(1, 4) == Self.block(0))
        try pool.write(1, offset: 10, [0xAB, 0xCD])
        var expect = Array(originBytes[0..<Int(Self.bs)])
        expect[10] = 0xAB; expect[11] = 0xCD
        #expect(try pool.readBlock(1, 0) == expect)
        try pool.snapshot(origin: 1, as: 2)
        try pool.commit()
        pool.close()
        let again = try ThinPool(folder: dir)
        #expect(try again.readBlock(2, 0) == expect)
        #expect(try again.readBlock(2, 1) == Array(originBytes[Int(Self.bs)..<Int(2 * Self.bs)]))
        #expect(try Oracle.dump("\(dir)/metadata").devices == [1: [0: 0], 2: [0: 0]])
    }

    static func isHole(_ path: String, at offset: UInt64, length: UInt64) throws -> Bool {
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let next = lseek(fd, off_t(offset), 3 /* SEEK_DATA */)
        return next < 0 || UInt64(next) >= offset + length
    }

    @Test func discardPassesDownOnlyUnreferencedBlocks() throws {
        let tmp = TempDir("passdown")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * Self.bs)
        try pool.createThin(1, virtualSize: 16 * Self.bs)
        try pool.write(1, offset: 0, [UInt8](repeating: 5, count: Int(8 * Self.bs)))
        try pool.snapshot(origin: 1, as: 2)
        try pool.commit()
        // Blocks 0..<4 are shared with the snapshot: unmapped from 1 but not punched.
        let shared = try (0..<4).map { try pool.lookup(1, $0)!.dataBlock }
        try pool.discard(1, blocks: 0..<4)
        try pool.commit()
        for b in shared {
            #expect(try pool.dataRefCount(b) == 1)
            #expect(!(try Self.isHole("\(dir)/data", at: b * Self.bs, length: Self.bs)))
        }
        #expect(try pool.readBlock(2, 0) == Self.block(5))
        // Blocks written after the snapshot are exclusive: discarding them punches holes.
        try pool.write(1, offset: 10 * Self.bs, [UInt8](repeating: 6, count: Int(2 * Self.bs)))
        try pool.commit()
        let own = try (10..<12).map { try pool.lookup(1, $0)!.dataBlock }
        try pool.discard(1, blocks: 10..<12)
        #expect(!(try Self.isHole("\(dir)/data", at: own[0] * Self.bs, length: Self.bs)), "not before the commit")
        try pool.commit()
        for b in own { #expect(try Self.isHole("\(dir)/data", at: b * Self.bs, length: Self.bs)) }
        // After the snapshot is deleted, the origin's old blocks still look shared by time
        // (false positive) but their count is 1: discard punches them.
        try pool.delete(2)
        try pool.commit()
        let old = try pool.lookup(1, 6)!
        #expect(old.time < (try pool.details(of: 1)).snapshottedTime)
        try pool.discard(1, blocks: 6..<7)
        try pool.commit()
        #expect(try Self.isHole("\(dir)/data", at: old.dataBlock * Self.bs, length: Self.bs))
        #expect(try Oracle.check("\(dir)/metadata").ok)
    }
}

extension BTreeReader {
    /// Nodes on the path from the root to `key`'s leaf.
    func walkDepth(to key: UInt64) throws -> Int {
        var b = root, d = 1
        while true {
            let n = try node(b)
            if n.isLeaf { return d }
            b = n.value64(max(0, n.lowerBound(key)))
            d += 1
        }
    }
}

@Suite struct PoolInteropTests {
    /// A pool restored by thin_restore (its conventions: version, nr_free, over-counted
    /// nr_allocated) opens without a sidecar, takes changes, and stays thin_check-clean.
    @Test func restoredMetadataOpensAndTakesChanges() throws {
        let tmp = TempDir("interop")
        let spec = RandomPoolXML.generate(seed: 21, mappings: 3000)
        let meta = try RandomPool.restore(spec, into: tmp)
        let dir = tmp.file("pool")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: meta, toPath: "\(dir)/metadata")
        let bs = UInt64(spec.dataBlockSize) * 512
        tmp.sparseFile("pool/data", size: spec.dataBlockCount * bs)
        let before = try Oracle.dump("\(dir)/metadata")
        let pool = try ThinPool(folder: dir)
        #expect(try pool.devices() == spec.devices.map(\.id).sorted())
        let ids = spec.devices.map(\.id).sorted()
        let target = ids[0]
        #expect(try pool.virtualSize(of: target) == spec.dataBlockCount * bs, "no sidecar: as large as the data device")
        try pool.write(target, offset: 0, [UInt8](repeating: 0x5A, count: Int(bs)))
        try pool.snapshot(origin: target, as: 4000)
        try pool.delete(ids[1])
        try pool.commit()
        #expect(try pool.readBlock(4000, 0) == [UInt8](repeating: 0x5A, count: Int(bs)))
        let c = try Oracle.check("\(dir)/metadata")
        #expect(c.ok, "\(c.stdout)\(c.stderr)")
        let after = try Oracle.dump("\(dir)/metadata")
        for id in ids.dropFirst(2) { #expect(after.devices[id] == before.devices[id], "device \(id) untouched") }
        #expect(after.devices[ids[1]] == nil)
        var expect = before.devices[target]!
        expect[0] = after.devices[target]![0]
        #expect(after.devices[target] == expect)
        #expect(after.devices[4000] == expect)
        let r = try MetadataReader(path: "\(dir)/metadata")
        let rc = try Recount.count(r)
        #expect(try Recount.onDisk(r.live.dataSpaceMap) == rc.data)
        #expect(try Recount.onDisk(r.live.metadataSpaceMap) == rc.metadata)
    }

    /// Large devices: a data index tree beyond one leaf (> 168 bitmaps) and a metadata space
    /// map with several bitmaps, grown across a bitmap boundary on open.
    @Test func largeSpaceMapsPassThinCheck() throws {
        let tmp = TempDir("large")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 3_000_000 * 65536, metadataSize: 70 << 20)
        #expect(pool.metadata.metadataBlockCount == 17920)
        try pool.createThin(1)
        try pool.write(1, offset: 2_999_000 * 65536, [1, 2, 3])
        try pool.commit()
        pool.close()
        var c = try Oracle.check("\(dir)/metadata")
        #expect(c.ok, "\(c.stdout)\(c.stderr)")
        let f = try RandomAccessFile(path: "\(dir)/metadata", writable: true)
        try f.truncate(to: 140 << 20)
        f.close()
        let again = try ThinPool(folder: dir)
        #expect(again.metadata.metadataBlockCount == 35840)
        try again.write(1, offset: 5 * 65536, [4])
        try again.commit()
        c = try Oracle.check("\(dir)/metadata")
        #expect(c.ok, "\(c.stdout)\(c.stderr)")
        #expect(try Oracle.dump("\(dir)/metadata").devices[1]?.count == 2)
        #expect(try again.read(1, offset: 2_999_000 * 65536, count: 3) == [1, 2, 3])
    }
}
