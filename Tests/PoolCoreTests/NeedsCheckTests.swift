import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// A failed metadata operation (FORMAT.md §5.5, §6.8): rollback to the last commit, NEEDS_CHECK in the
/// superblock, read-only; write mode refused until a clean check clears the flag. Running
/// out of space is different: no flag, and adding space brings write mode back.
@Suite struct NeedsCheckTests {
    static let bs = 65536
    static func block(_ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: bs) }

    /// Opens the pool in `dir` over a metadata device whose `n`th write fails once.
    static func openFailingOnce(_ dir: String, after n: Int) throws -> ThinPool {
        let dev = FailingDevice(try FileMetadataDevice(path: "\(dir)/metadata", writable: true), failAfter: n)
        dev.failOnlyOnce = true
        return try ThinPool(metadataDevice: dev, dataFile: RandomAccessFile(path: "\(dir)/data", writable: true), sidecarPath: "\(dir)/pool.json")
    }

    /// Writes `fill` to block `v` (unmapped so far) and fails the commit.
    static func failACommit(_ dir: String, at v: UInt64, fill: UInt8) throws {
        let pool = try openFailingOnce(dir, after: 1)
        defer { pool.close() }
        try pool.write(1, offset: v * UInt64(bs), block(fill))
        #expect(throws: (any Error).self) { try pool.commit() }
        guard case .readOnly(.failedOperation) = pool.mode else { Issue.record("mode \(pool.mode), expected read-only after a failed operation"); return }
        #expect(pool.needsCheck)
        #expect(try pool.readBlock(1, v) == block(0), "rolled back to the last commit")
        #expect(throws: PoolError.self) { try pool.write(1, offset: 0, [1]) }
        #expect(throws: PoolError.self) { try pool.setWriteMode() }
        #expect(throws: PoolError.self) { try pool.resize(dataSize: 200 * UInt64(bs)) }
    }

    @Test func failedCommitSetsNeedsCheckAndReopenRefusesWrites() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("needscheck")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let p0 = try ThinPool.create(folder: dir, dataSize: 100 * UInt64(Self.bs))
        try p0.createThin(1, virtualSize: 8 * UInt64(Self.bs))
        try p0.write(1, offset: 0, Self.block(4))
        try p0.commit()
        p0.close()
        #expect(try Oracle.dump(meta).root["flags"] == "0")

        try Self.failACommit(dir, at: 1, fill: 5)
        let dumped = try Oracle.dump(meta)
        #expect(dumped.root["flags"] == "1", "thin_dump shows NEEDS_CHECK")
        #expect(dumped.devices[1] == [0: dumped.devices[1]![0]!], "only the committed mapping")
        #expect(try Oracle.check(meta).ok, "the rolled-back metadata is consistent")

        // Reopened with the flag set: read-only, with a clear error; reads still work.
        let ro = try ThinPool(folder: dir)
        #expect(ro.mode == .readOnly(.needsCheck))
        do {
            try ro.write(1, offset: 0, [9])
            Issue.record("a write was accepted with NEEDS_CHECK set")
        } catch let e as PoolError {
            #expect(e.description.contains("NEEDS_CHECK") && e.description.contains("--clear-needs-check"), "\(e)")
        }
        #expect(throws: PoolError.self) { try ro.setWriteMode() }
        #expect(try ro.readBlock(1, 0) == Self.block(4))
        ro.close()

        // thin_check --clear-needs-check-flag accepts our metadata and clears the flag.
        #expect(try Tool.run("thin_check", ["--clear-needs-check-flag", meta]).ok)
        #expect(try Oracle.dump(meta).root["flags"] == "0")
        let rw = try ThinPool(folder: dir)
        #expect(rw.mode == .write)
        try rw.write(1, offset: UInt64(Self.bs), Self.block(6))
        try rw.commit()
        rw.close()
        #expect(try Oracle.check(meta).ok)

        // Our own clear: only after a clean check, only while no one holds the pool.
        try Self.failACommit(dir, at: 2, fill: 7)
        #expect(try Oracle.dump(meta).root["flags"] == "1")
        let holder = try ThinPool(folder: dir)
        #expect(throws: PoolError.self) { try ThinPool.clearNeedsCheck(metadataPath: meta) }
        holder.close()
        let report = try ThinPool.clearNeedsCheck(metadataPath: meta)
        #expect(report.needsCheck)
        let after = try Oracle.dump(meta)
        #expect(after.root["flags"] == "0")
        #expect(after.devices[1]?.count == 2)
        let again = try ThinPool(folder: dir)
        #expect(again.mode == .write)
        #expect(try again.readBlock(1, 1) == Self.block(6), "the commit before the failure is kept")
        again.close()
    }

    @Test func runningOutOfSpaceDoesNotSetNeedsCheck() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("nospace")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let pool = try ThinPool.create(folder: dir, dataSize: 6 * UInt64(Self.bs), metadataSize: 30 * 4096)
        try pool.createThin(1, virtualSize: 4000 * UInt64(Self.bs))
        try pool.write(1, offset: 0, [UInt8](repeating: 1, count: 6 * Self.bs))
        try pool.commit()
        #expect(throws: PoolError.outOfDataSpace) { try pool.write(1, offset: 6 * UInt64(Self.bs), [1]) }
        #expect(pool.mode == .readOnly(.outOfDataSpace))
        #expect(!pool.needsCheck)
        try pool.resize(dataSize: 4000 * UInt64(Self.bs))
        #expect(pool.mode == .write)
        var outOfMetadata = false
        for v in stride(from: UInt64(6), to: 4000, by: 2) {
            do { try pool.write(1, offset: v * UInt64(Self.bs), [2]) } catch {
                #expect(error as? PoolError == .outOfMetadataSpace)
                outOfMetadata = true
                break
            }
        }
        #expect(outOfMetadata)
        #expect(pool.mode == .readOnly(.outOfMetadataSpace))
        #expect(throws: PoolError.readOnly(reason: "out of metadata space"), "no metadata change while out of metadata space") {
            try pool.discard(1, blocks: 0..<1)
        }
        #expect(!pool.needsCheck)
        #expect(try Oracle.dump(meta).root["flags"] == "0")
        try pool.resize(metadataSize: 1 << 20)
        #expect(pool.mode == .write, "adding metadata space brings write mode back")
        pool.close()
        #expect(try Oracle.check(meta).ok)
    }

    /// Out of data space (OUT_OF_DATA_SPACE, FORMAT.md §6.8) refuses only new data blocks: snapshots,
    /// discards and deletes still work, and a commit that finds free blocks ends it.
    @Test func outOfDataSpaceTakesMetadataChangesAndEndsAtACommitWithFreeBlocks() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("nodata")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let bs = UInt64(Self.bs)
        let pool = try ThinPool.create(folder: dir, dataSize: 8 * bs)
        try pool.createThin(1, virtualSize: 16 * bs)
        for v in 0..<8 { try pool.write(1, offset: UInt64(v) * bs, Self.block(UInt8(v + 1))) }
        try pool.commit()
        #expect(throws: PoolError.outOfDataSpace) { try pool.write(1, offset: 8 * bs, [1]) }
        #expect(pool.mode == .readOnly(.outOfDataSpace))
        #expect(throws: PoolError.outOfDataSpace, "copy-on-write needs a new block") { try pool.write(1, offset: 0, [1]) }
        try pool.snapshot(origin: 1, as: 2)
        try pool.discard(1, blocks: 0..<4)
        try pool.commit()
        #expect(pool.mode == .readOnly(.outOfDataSpace), "the discarded blocks are still device 2's")
        #expect(throws: PoolError.outOfDataSpace) { try pool.write(1, offset: 8 * bs, [1]) }
        try pool.delete(2)
        #expect(throws: PoolError.outOfDataSpace, "blocks freed in this transaction wait for the commit") {
            try pool.write(1, offset: 8 * bs, [1])
        }
        try pool.commit()
        #expect(pool.mode == .write)
        try pool.write(1, offset: 8 * bs, Self.block(9))
        try pool.commit()
        pool.close()
        #expect(try Oracle.check(meta).ok)
        let d = try Oracle.dump(meta)
        #expect(d.root["flags"] == "0")
        #expect(d.devices.keys.sorted() == [1])
        #expect(d.devices[1]!.keys.sorted() == [4, 5, 6, 7, 8])
        let again = try ThinPool(folder: dir)
        #expect(try again.readBlock(1, 5) == Self.block(6))
        #expect(try again.readBlock(1, 8) == Self.block(9))
        #expect(try again.readBlock(1, 0) == Self.block(0))
        again.close()
    }
}
