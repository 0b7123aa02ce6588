import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Merge and restore keep a thin device thin on a file: zero and discard runs become holes, a
/// missing target is created at the stream's virtual size, and the bytes equal `pool read`.
@Suite("Thin stays thin: merge and restore into files", .serialized)
struct ThinStaysThinTests {
    /// Linux lseek whences (Glibc's Swift module hides them).
    static let seekData: Int32 = 3, seekHole: Int32 = 4

    /// Allocated byte ranges of a file (SEEK_DATA/SEEK_HOLE).
    static func dataRanges(_ path: String) throws -> [Range<Int>] {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var out: [Range<Int>] = []
        var pos: off_t = 0
        while true {
            let start = lseek(fd, pos, seekData)
            if start < 0 { break }
            let end = lseek(fd, start, seekHole)
            out.append(Int(start)..<Int(end))
            pos = end
        }
        return out
    }

    static func allocatedBytes(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return -1 }
        return Int(st.st_blocks) * 512
    }

    /// Blocks of `image` (block size `bs`) that the file at `path` has storage for although they hold only zeros.
    static func allocatedZeroBlocks(_ path: String, image: [UInt8], bs: Int) throws -> [Int] {
        var out: Set<Int> = []
        for r in try dataRanges(path) {
            for b in (r.lowerBound / bs)..<((r.upperBound + bs - 1) / bs) where b * bs < image.count {
                if image[b * bs..<min(image.count, (b + 1) * bs)].allSatisfy({ $0 == 0 }) { out.insert(b) }
            }
        }
        return out.sorted()
    }

    static func mappedBytes(_ pool: String, _ dev: UInt64) throws -> Int {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        return Int(try p.details(of: dev).mappedBlocks) * Int(SourceChain.blockSize)
    }

    @Test func mergeCreatesAMissingFileAtTheVirtualSizeAndPunchesHolesForZeroAndDiscardRuns() throws {
        let src = try SourceChain(seed: 41)
        let dir = src.dir
        let bs = Int(SourceChain.blockSize)
        let full = dir.file("full.tbs"), incr = dir.file("incr.tbs")
        _ = try send(src.path, src.snapshots[0], to: full)
        _ = try send(src.path, src.snapshots[4], from: src.snapshots[0], to: incr)
        let out = dir.file("restored.img")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(try cli(["merge", "--stream", full, "--into", out, "--quiet"]) == nil)

        let image0 = try src.image(src.snapshots[0])
        #expect(try fileBytes(out) == image0)
        #expect(try #require(try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) == Int(SourceChain.blocks) * bs)
        #expect(try Self.allocatedZeroBlocks(out, image: image0, bs: bs) == [])
        // 64 KiB of slack for the file system's own extent blocks.
        let mapped0 = try Self.mappedBytes(src.path, src.snapshots[0])
        #expect(Self.allocatedBytes(out) <= mapped0 + 65536)

        let r = try runMerge(stream: incr, into: out, quiet: true)
        let image4 = try src.image(src.snapshots[4])
        #expect(try fileBytes(out) == image4)
        #expect(r.zeroedBlocks > 0 && r.unmappedBytes == r.zeroedBlocks * UInt64(bs) && r.zeroWrittenBytes == 0)
        #expect(try Self.allocatedZeroBlocks(out, image: image4, bs: bs) == [])
        let mapped4 = try Self.mappedBytes(src.path, src.snapshots[4])
        #expect(Self.allocatedBytes(out) <= mapped4 + 65536)
    }

    @Test func restoreToAFileIsSparseAtTheDeviceSize() throws {
        let w = try WorkflowPool(seed: 77, blocks: 48)
        let repo = w.dir.file("repo")
        var last: Int64 = 0
        for d in 0..<4 {
            // Zeros over written blocks and discards each day: the restore must leave them unallocated.
            try w.day(writes: 6)
            last = try backup(w, repo: repo, at: nightly(d)).id
        }
        let out = w.dir.file("restore.img")
        let r = try restoreToFile(repo, id: last, to: out)
        #expect(r.chain.count == 4)
        #expect(try fileBytes(out) == w.model)
        #expect(try Self.allocatedZeroBlocks(out, image: w.model, bs: w.blockSize) == [])
        let nonZero = stride(from: 0, to: w.model.count, by: w.blockSize).filter { b in
            w.model[b..<b + w.blockSize].contains { $0 != 0 }
        }.count
        #expect(Self.allocatedBytes(out) <= nonZero * w.blockSize + 65536)
    }

    @Test func aMergeOntoAnExistingFileUnmapsWhatTheStreamZeroes() throws {
        // The target holds the base with its data allocated; every block the incremental zeroes or
        // discards there must become a hole, not written zeros.
        let src = try SourceChain(seed: 5)
        let bs = Int(SourceChain.blockSize)
        let base = src.dir.file("base.tbs"), incr = src.dir.file("incr.tbs")
        _ = try send(src.path, src.snapshots[1], to: base)
        _ = try send(src.path, src.snapshots[5], from: src.snapshots[1], to: incr)
        let out = src.dir.file("target.img")
        #expect(try cli(["merge", "--stream", base, "--into", out, "--quiet"]) == nil)
        let r = try runMerge(stream: incr, into: out, quiet: true)
        let image = try src.image(src.snapshots[5])
        #expect(try fileBytes(out) == image)
        #expect(r.unmappedBytes > 0)
        #expect(try Self.allocatedZeroBlocks(out, image: image, bs: bs) == [])
    }

    @Test func aDeviceOfPartBlocksMergesIntoExactlyItsBytes() throws {
        // 64 KiB blocks, a device of 65536 + 512 bytes: the stream's last block is a whole block,
        // only its first 512 bytes are the device's.
        let dir = TempDir("part-block")
        let path = dir.file("pool")
        let size = 65536 + 512
        let pool = try ThinPool.create(folder: path, dataSize: 4 << 20, blockSize: 65536, metadataSize: 4 << 20)
        try pool.createThin(1, virtualSize: UInt64(size))
        var rng = SeededRNG(seed: 3)
        let bytes = (0..<size).map { _ in UInt8.random(in: 1...255, using: &rng) }
        try pool.write(1, offset: 0, bytes)
        try pool.commit()
        pool.close()
        let s = dir.file("s.tbs")
        _ = try send(path, 1, to: s)
        let new = dir.file("new.img")
        #expect(try cli(["merge", "--stream", s, "--into", new, "--quiet"]) == nil)
        #expect(try fileBytes(new).count == size, "a new file is the device's size, not two whole blocks")
        #expect(try fileBytes(new) == bytes)
        // A longer file: what lies past the device's end is not the device's, and stays.
        let longer = dir.file("longer.img")
        let old = [UInt8](repeating: 0xEE, count: 3 * 65536)
        try Data(old).write(to: URL(fileURLWithPath: longer))
        _ = try runMerge(stream: s, into: longer, quiet: true)
        #expect(try fileBytes(longer) == bytes + old[size...])
    }
}

/// How a zero run splits over a receiver's discard granules (values worked out by hand).
@Suite("Discard plan: whole receiver blocks discarded, edges zeroed")
struct DiscardPlanTests {
    let k = UInt64(1024)

    @Test func alignedRunIsDiscardedWhole() {
        let p = DiscardPlan(offset: 0, length: 256 * k, granularity: 64 * k)
        #expect(p == DiscardPlan(head: 0..<0, whole: 0..<(256 * k), tail: (256 * k)..<(256 * k)))
    }

    @Test func senderBlocksSmallerThanReceiverBlocks() {
        // Sender blocks of 64 KiB, blocks 3…5 zeroed; the receiver's 256 KiB block 0 is only partly
        // covered and block 1 too: nothing whole to discard, all written as zeros.
        let p = DiscardPlan(offset: 192 * k, length: 192 * k, granularity: 256 * k)
        #expect(p == DiscardPlan(head: (192 * k)..<(256 * k), whole: (256 * k)..<(256 * k), tail: (256 * k)..<(384 * k)))
        // Blocks 3…12: receiver block 1 (256…512 KiB) is covered whole.
        let q = DiscardPlan(offset: 192 * k, length: 640 * k, granularity: 256 * k)
        #expect(q == DiscardPlan(head: (192 * k)..<(256 * k), whole: (256 * k)..<(768 * k), tail: (768 * k)..<(832 * k)))
    }

    @Test func runInsideOneGranuleIsAllEdge() {
        let p = DiscardPlan(offset: 100, length: 10, granularity: 64)
        #expect(p.head == 100..<110 && p.whole.isEmpty && p.tail.isEmpty)
    }

    @Test func noDiscardsMeansZerosEverywhere() {
        let p = DiscardPlan(offset: 4096, length: 8192, granularity: 0)
        #expect(p.head == 4096..<12288 && p.whole.isEmpty && p.tail.isEmpty)
    }

    @Test func aRangePastTheEndOfTheNumbersIsClipped() {
        let p = DiscardPlan(offset: UInt64.max - 10, length: 100, granularity: 64)
        #expect(p.head.upperBound == UInt64.max && p.whole.isEmpty)
    }
}
