import Delta
import Foundation
import PoolCore
import Testing
import TestSupport

/// A stream whose block size differs from the receiving pool's (issue #13): every byte as the
/// sender's, the digests the sender's, and thin stays thin — a receiver block is mapped only when
/// a non-zero stream block overlaps it (full streams), discards unmap whole receiver blocks.
@Suite struct BlockSizeReplayTests {
    static let k = 1024

    /// Receiver blocks (of `poolBS`) that overlap a non-zero block (of `streamBS`) of `image`:
    /// worked out from the sender's bytes alone.
    static func overlappingNonZero(_ image: [UInt8], streamBS: Int, poolBS: Int) -> Int {
        var blocks = Set<Int>()
        var at = 0
        while at < image.count {
            let end = min(at + streamBS, image.count)
            if image[at..<end].contains(where: { $0 != 0 }) {
                for b in (at / poolBS)...((end - 1) / poolBS) { blocks.insert(b) }
            }
            at = end
        }
        return blocks.count
    }

    /// Sender chain: a device of 40 stream blocks, then three snapshots with rewrites, zero
    /// blocks and discards.
    static func chain(streamBS: Int, seed: UInt64) -> (SenderModel, [UInt64]) {
        let s = SenderModel(blockSize: streamBS, seed: seed)
        s.create(1, blocks: 40)
        s.mutate(1, changes: 30)
        var ids: [UInt64] = [1]
        for i in 2...4 as ClosedRange<UInt64> {
            s.snapshot(i, of: ids.last!)
            s.mutate(i, changes: 12)
            ids.append(i)
        }
        return (s, ids)
    }

    @Test(arguments: [(64, 16), (64, 128), (64, 192), (128, 192), (192, 64)])
    func chainIntoAPoolWithOtherBlocks(sizes: (Int, Int)) throws {
        let (streamBS, poolBS) = (sizes.0 * Self.k, sizes.1 * Self.k)
        let (s, ids) = Self.chain(streamBS: streamBS, seed: UInt64(sizes.0 + sizes.1))
        let pool = MemoryReceivingPool(blockSize: poolBS)
        var base: UInt64?
        for (n, id) in ids.enumerated() {
            let r = try Replayer(pool: pool).receive(from: MemorySource(try s.send(id, from: base, streamID: UInt64(n + 1)), chunk: 33_000))
            #expect(pool.image(id) == s.image(id), "\(sizes) device \(id)")
            #expect(r.contentDigest == s.digest(id), "\(sizes) device \(id)")
            // The resume check recomputes the digest from the device in the stream's blocks.
            #expect(try pool.contentDigest(of: id, blockSize: streamBS) == s.digest(id))
            if base == nil {
                #expect(pool.mappedCount(id) == Self.overlappingNonZero(s.image(id), streamBS: streamBS, poolBS: poolBS),
                        "\(sizes): a full stream maps exactly the receiver blocks that hold data")
            } else {
                #expect(pool.mappedCount(id) >= Self.overlappingNonZero(s.image(id), streamBS: streamBS, poolBS: poolBS))
            }
            base = id
        }
    }

    @Test func discardsUnmapWholeReceiverBlocksAndZeroTheEdges() throws {
        // 64 KiB stream blocks into 128 KiB receiver blocks: device of 8 stream blocks, all data;
        // then stream blocks 1-4 discarded: receiver block 1 (stream 2-3) is unmapped whole, stream
        // blocks 1 and 4 are zeroed inside receiver blocks 0 and 2, which stay mapped.
        let s = SenderModel(blockSize: 64 * Self.k, seed: 9)
        s.create(1, blocks: 8)
        for v in 0..<8 as Range<UInt64> { s.write(1, v, kind: 1) }
        s.snapshot(2, of: 1)
        for v in 1...4 as ClosedRange<UInt64> { s.discard(2, v) }
        let pool = MemoryReceivingPool(blockSize: 128 * Self.k)
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(1, from: nil, streamID: 1)))
        #expect(pool.mappedCount(1) == 4)
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(2, from: 1, streamID: 2)))
        #expect(pool.image(2) == s.image(2))
        #expect(pool.committed.devices[2]!.blocks.keys.sorted() == [0, 2, 3])
        #expect(pool.unmappedBlocks == 1)
        #expect(pool.image(1) == s.image(1), "the base is untouched")
    }

    @Test func aDeviceWhoseSizeIsNotWholeReceiverBlocks() throws {
        // 5 stream blocks of 64 KiB = 320 KiB into 192 KiB receiver blocks (the last one partial).
        let s = SenderModel(blockSize: 64 * Self.k, seed: 10)
        s.create(1, blocks: 5)
        for v in 0..<5 as Range<UInt64> { s.write(1, v, kind: v == 3 ? 0 : 1) }
        let pool = MemoryReceivingPool(blockSize: 192 * Self.k)
        let r = try Replayer(pool: pool).receive(from: MemorySource(try s.send(1, from: nil, streamID: 1)))
        #expect(r.contentDigest == s.digest(1))
        #expect(pool.image(1) == s.image(1))
        #expect(pool.mappedCount(1) == 2)
    }

    @Test func anInterruptedReceiveResumesIntoOtherBlocks() throws {
        let s = SenderModel(blockSize: 64 * Self.k, seed: 11)
        s.create(1, blocks: 300)
        for v in 0..<300 as Range<UInt64> { s.write(1, v, kind: v % 7 == 0 ? 0 : 1) }
        let full = try s.send(1, from: nil, streamID: 1)
        let pool = MemoryReceivingPool(blockSize: 192 * Self.k)
        let rp = Replayer(pool: pool)
        rp.checkpointBytes = 2 << 20
        #expect(throws: MemorySource.Cut.self) { _ = try rp.receive(from: MemorySource(full, failAfter: full.count / 2)) }
        #expect(pool.committed.receipts[1]?.partial != nil)
        let r = try Replayer(pool: pool).receive(from: MemorySource(full), resume: true)
        #expect(r.outcome == .resumed)
        #expect(r.contentDigest == s.digest(1))
        #expect(pool.image(1) == s.image(1))
    }

    @Test func streamRunsCoverWhatTheMappedReceiverBlocksOverlap() {
        // 192 KiB receiver blocks over 128 KiB stream blocks: receiver block 0 = bytes 0-192K =
        // stream 0-1; block 1 = 192K-384K = stream 1-2; block 3 = 576K-768K = stream 4-5.
        #expect(streamRuns(mapped: [0, 1, 3], poolBlockSize: 192 * Self.k, streamBlockSize: 128 * Self.k) == [0..<3, 4..<6])
        // Receiver blocks smaller than stream blocks: 16 KiB into 64 KiB.
        #expect(streamRuns(mapped: [0, 1, 2, 9], poolBlockSize: 16 * Self.k, streamBlockSize: 64 * Self.k) == [0..<1, 2..<3])
        // A block number whose byte offset overflows ends the runs instead of wrapping.
        #expect(streamRuns(mapped: [1, UInt64.max / 2], poolBlockSize: 64 * Self.k, streamBlockSize: 64 * Self.k) == [1..<2])
    }

    @Test(arguments: [128, 192])
    func intoPoolCoresPoolWithOtherBlocks(poolKiB: Int) throws {
        let dir = TempDir("replay-bs-\(poolKiB)")
        let (s, ids) = Self.chain(streamBS: 64 * Self.k, seed: 12)
        let pool = try ThinPoolReplayTests.makePool(dir, blockSize: UInt64(poolKiB * Self.k))
        defer { pool.close() }
        var base: UInt64?
        for (n, id) in ids.enumerated() {
            _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(id, from: base, streamID: UInt64(n + 1))))
            #expect(try pool.read(id, offset: 0, count: s.image(id).count) == s.image(id), "device \(id)")
            #expect(try pool.contentDigest(of: id, blockSize: 64 * Self.k) == s.digest(id))
            if base == nil {
                #expect(try pool.details(of: id).mappedBlocks
                        == UInt64(Self.overlappingNonZero(s.image(id), streamBS: 64 * Self.k, poolBS: poolKiB * Self.k)))
            }
            base = id
        }
        let check = try ThinPoolReplayTests.thinCheck(dir)
        #expect(check.ok, "\(check.stderr)")
    }
}
