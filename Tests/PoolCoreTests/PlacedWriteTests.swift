import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// Whole-block writes in two steps (`ThinPool.place`, then `PlacedWrite.perform`, possibly on
/// another thread): the same bytes and the same sharing as `write`, and nothing changed by a refusal.
@Suite struct PlacedWriteTests {
    static let bs: UInt64 = 65536

    static func bytes(_ blocks: Int, seed: UInt8) -> [UInt8] {
        (0..<blocks * Int(bs)).map { UInt8(truncatingIfNeeded: $0 / 4096 &* 31 &+ Int(seed)) }
    }

    static func place(_ pool: ThinPool, _ dev: UInt64, block: UInt64, _ data: [UInt8]) throws -> PlacedWrite {
        try pool.place(dev, offset: block * bs, count: data.count)
    }

    /// Data blocks each virtual block of `dev` maps to, in `range`.
    static func dataBlocks(_ pool: ThinPool, _ dev: UInt64, _ range: Range<UInt64>) throws -> [UInt64?] {
        let m = try pool.metadata.view.mappings(of: dev, in: range)
        return range.map { v in m.first { $0.vblock == v }?.mapping.dataBlock }
    }

    @Test func placedBytesReadBackAndShareAsWrittenOnes() throws {
        let tmp = TempDir("placed")
        let pool = try ThinPool.create(folder: tmp.file("pool"), dataSize: 64 * Self.bs)
        try pool.createThin(1, virtualSize: 16 * Self.bs)
        let first = Self.bytes(6, seed: 1)
        try pool.write(1, offset: 2 * Self.bs, first)
        try pool.snapshot(origin: 1, as: 2)
        try pool.commit()
        let shared = try Self.dataBlocks(pool, 2, 0..<16)

        // Over the snapshot's shared blocks 3...6 and unmapped 8...9: new data blocks for all six,
        // written from another thread.
        let second = Self.bytes(6, seed: 2)
        let p = try Self.place(pool, 2, block: 3, Array(second[0..<(4 * Int(Self.bs))]) + Self.bytes(2, seed: 9))
        #expect(p.count == 6 * Int(Self.bs))
        let placed = try Self.dataBlocks(pool, 2, 0..<16)
        for v in 3..<9 { #expect(placed[v] != nil && placed[v] != shared[v], "block \(v) has a new data block") }
        #expect(Set(placed[3..<9].compactMap { $0 }).isDisjoint(with: Set(shared.compactMap { $0 })))
        let data = Array(second[0..<(4 * Int(Self.bs))]) + Self.bytes(2, seed: 9)
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var failure: (any Error)?
        Thread {
            do { try data.withUnsafeBytes { try p.perform($0) } } catch { failure = error }
            done.signal()
        }.start()
        done.wait()
        #expect(failure == nil)
        // The extents cover the write once, in order, on the blocks mapped.
        #expect(p.extents.reduce(0) { $0 + $1.count } == p.count)
        #expect(zip(p.extents, p.extents.dropFirst()).allSatisfy { $0.source + $0.count == $1.source })
        for e in p.extents {
            for k in stride(from: 0, to: e.count, by: Int(Self.bs)) {
                let v = 3 + (e.source + k) / Int(Self.bs)
                #expect(placed[v] == (e.data + UInt64(k)) / Self.bs, "block \(v)'s extent names its mapped data block")
            }
        }

        // Placed again in the same transaction: written in place (the blocks are this transaction's).
        let again = try Self.place(pool, 2, block: 4, Self.bytes(1, seed: 7))
        #expect(again.extents == [PlacedWrite.Extent(source: 0, data: placed[4]! * Self.bs, count: Int(Self.bs))])
        try Self.bytes(1, seed: 7).withUnsafeBytes { try again.perform($0) }
        try pool.commit()

        var want = [UInt8](repeating: 0, count: Int(16 * Self.bs))
        want.replaceSubrange(Int(2 * Self.bs)..<Int(8 * Self.bs), with: first)
        #expect(try pool.read(1, offset: 0, count: want.count) == want, "the origin is unchanged")
        want.replaceSubrange(Int(3 * Self.bs)..<Int(9 * Self.bs), with: data)
        want.replaceSubrange(Int(4 * Self.bs)..<Int(5 * Self.bs), with: Self.bytes(1, seed: 7))
        #expect(try pool.read(2, offset: 0, count: want.count) == want)
        let check = try Tool.run("thin_check", ["--quiet", tmp.file("pool/metadata")])
        #expect(check.ok, "thin_check: \(check.stderr)")
    }

    @Test func refusedPlacementsChangeNothing() throws {
        let tmp = TempDir("placed-refused")
        let pool = try ThinPool.create(folder: tmp.file("pool"), dataSize: 8 * Self.bs)
        try pool.createThin(1, virtualSize: 32 * Self.bs)
        try pool.write(1, offset: 0, Self.bytes(5, seed: 3))
        try pool.commit()
        let before = try Self.dataBlocks(pool, 1, 0..<32)
        let tx = pool.metadata.transactionID

        // Not whole blocks, beyond the end, and more new blocks than the pool has free (3 free, 4 asked).
        #expect(throws: PoolError.self) { try pool.place(1, offset: 4096, count: Int(Self.bs)) }
        #expect(throws: PoolError.self) { try pool.place(1, offset: 0, count: Int(Self.bs) + 512) }
        #expect(throws: PoolError.self) { try pool.place(1, offset: 31 * Self.bs, count: 2 * Int(Self.bs)) }
        #expect(try Self.dataBlocks(pool, 1, 0..<32) == before)
        #expect(pool.mode == .write)
        #expect(throws: PoolError.outOfDataSpace) { try pool.place(1, offset: 10 * Self.bs, count: 4 * Int(Self.bs)) }
        #expect(pool.mode == .readOnly(.outOfDataSpace))
        #expect(try Self.dataBlocks(pool, 1, 0..<32) == before, "an out-of-space placement maps nothing")
        #expect(pool.metadata.transactionID == tx)
    }

    @Test func aPlacedWriteTakesExactlyItsBytes() throws {
        let tmp = TempDir("placed-count")
        let pool = try ThinPool.create(folder: tmp.file("pool"), dataSize: 8 * Self.bs)
        try pool.createThin(1, virtualSize: 4 * Self.bs)
        let p = try pool.place(1, offset: 0, count: 2 * Int(Self.bs))
        #expect(throws: PoolError.self) { try Self.bytes(1, seed: 1).withUnsafeBytes { try p.perform($0) } }
        #expect(throws: PoolError.self) { try Self.bytes(3, seed: 1).withUnsafeBytes { try p.perform($0) } }
        try Self.bytes(2, seed: 1).withUnsafeBytes { try p.perform($0) }
        #expect(try pool.read(1, offset: 0, count: 2 * Int(Self.bs)) == Self.bytes(2, seed: 1))
    }
}
