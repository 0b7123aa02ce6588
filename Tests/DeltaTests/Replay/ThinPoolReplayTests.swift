import Delta
import Foundation
import PoolCore
import Testing
import TestSupport

/// Replay into PoolCore's real pool: device bytes, thin_check, and an unchanged pool after refusals.
@Suite struct ThinPoolReplayTests {
    static func makePool(_ dir: TempDir, blockSize: UInt64 = 64 * 1024) throws -> ThinPool {
        try ThinPool.create(folder: dir.file("pool"), dataSize: 64 << 20, blockSize: blockSize, metadataSize: 4 << 20)
    }

    static func thinCheck(_ dir: TempDir) throws -> Tool.Result {
        try Tool.run("thin_check", ["--quiet", dir.file("pool/metadata")])
    }

    /// Devices, transaction id and every device's bytes.
    static func snapshotOf(_ pool: ThinPool) throws -> (UInt64, [UInt64], [[UInt8]]) {
        let devs = try pool.devices()
        let images = try devs.map { try pool.read($0, offset: 0, count: Int(try pool.virtualSize(of: $0))) }
        return (pool.metadata.transactionID, devs, images)
    }

    @Test func fullThenFiveIncrementalsIntoAThinPool() throws {
        let dir = TempDir("replay-pool")
        let (s, ids) = ReplayTests.chain(seed: 21, length: 5)
        var pool = try Self.makePool(dir)
        var base: UInt64?
        for (k, id) in ids.enumerated() {
            let bytes = try s.send(id, from: base, streamID: UInt64(100 + k))
            let r = try Replayer(pool: pool).receive(from: MemorySource(bytes, chunk: 100_000))
            #expect(r.outcome == .received)
            // Reopen: what was committed is what counts.
            pool.close()
            pool = try ThinPool(folder: dir.file("pool"))
            #expect(try pool.read(id, offset: 0, count: s.image(id).count) == s.image(id), "device \(id)")
            if let b = base { #expect(try pool.read(b, offset: 0, count: s.image(b).count) == s.image(b)) }
            let check = try Self.thinCheck(dir)
            #expect(check.ok, "thin_check after device \(id): \(check.stderr)")
            base = id
        }
        // The same stream again changes nothing.
        let before = try Self.snapshotOf(pool)
        let again = try s.send(ids.last!, from: ids[ids.count - 2], streamID: 999)
        #expect(try Replayer(pool: pool).receive(from: MemorySource(again)).outcome == .alreadyReceived)
        let after = try Self.snapshotOf(pool)
        #expect(before.0 == after.0 && before.1 == after.1 && before.2 == after.2)
    }

    @Test func refusedStreamsLeaveTheThinPoolUnchanged() throws {
        let dir = TempDir("replay-refuse")
        let (s, ids) = ReplayTests.chain(seed: 22, length: 2)
        let pool = try Self.makePool(dir)
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(ids[0], from: nil, streamID: 1)))
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        let before = try Self.snapshotOf(pool)
        var rng = SeededRNG(seed: 31337)
        var bad: [(String, [UInt8])] = []
        for _ in 0..<200 {
            var b = inc
            let at = Int.random(in: 0..<b.count, using: &rng)
            b[at] ^= UInt8.random(in: 1...255, using: &rng)
            bad.append(("byte \(at) corrupted (seed 31337)", b))
        }
        for _ in 0..<10 {
            let cut = Int.random(in: 0..<inc.count, using: &rng)
            bad.append(("cut at \(cut)", Array(inc[0..<cut])))
        }
        // Two records swapped, and one dropped (record byte ranges read from their heads).
        var ranges: [Range<Int>] = []
        var at = 8
        while at < inc.count {
            let len = Int(inc[at + 4]) | Int(inc[at + 5]) << 8 | Int(inc[at + 6]) << 16 | Int(inc[at + 7]) << 24
            ranges.append(at..<at + 24 + len)
            at += 24 + len
        }
        #expect(ranges.count >= 4, "the incremental stream has too few records to swap")
        if ranges.count >= 4 {
            let r1 = ranges[1], r2 = ranges[2]
            bad.append(("records 1 and 2 swapped", Array(inc[0..<r1.lowerBound]) + Array(inc[r2]) + Array(inc[r1]) + Array(inc[r2.upperBound...])))
            bad.append(("record 2 dropped", Array(inc[0..<r2.lowerBound]) + Array(inc[r2.upperBound...])))
        }
        s.snapshot(60, of: ids[0]); s.mutate(60, changes: 3)
        s.snapshot(61, of: 60); s.mutate(61, changes: 3)
        bad.append(("another base", try s.send(61, from: 60, streamID: 3)))
        for (what, bytes) in bad {
            #expect(throws: (any Error).self, "\(what)") { _ = try Replayer(pool: pool).receive(from: MemorySource(bytes)) }
        }
        let after = try Self.snapshotOf(pool)
        #expect(before.0 == after.0, "transaction id")
        #expect(before.1 == after.1, "devices")
        #expect(before.2 == after.2, "device bytes")
        let check = try Self.thinCheck(dir)
        #expect(check.ok, "\(check.stderr)")
        // A base changed locally after it was received is refused by name.
        try pool.write(ids[0], offset: 0, [UInt8](repeating: 7, count: 4096))
        try pool.commit()
        #expect(throws: ReplayError.baseModified(local: ids[0], base: s.identities[ids[0]]!)) {
            _ = try Replayer(pool: pool).receive(from: MemorySource(inc))
        }
    }
}

extension ThinPoolReplayTests {
    /// A device deleted and re-created under the same id is not the one that was received.
    @Test func receiptsDoNotOutliveTheirDevice() throws {
        let dir = TempDir("replay-reuse")
        let (s, ids) = ReplayTests.chain(seed: 23, length: 1)
        let pool = try Self.makePool(dir)
        let full = try s.send(ids[0], from: nil, streamID: 1)
        _ = try Replayer(pool: pool).receive(from: MemorySource(full))
        #expect(try Replayer(pool: pool).receive(from: MemorySource(full)).outcome == .alreadyReceived)
        try pool.delete(ids[0])
        try pool.commit()
        try pool.createThin(ids[0], virtualSize: 1 << 20)
        try pool.commit()
        #expect(throws: ReplayError.deviceExists(ids[0])) { _ = try Replayer(pool: pool).receive(from: MemorySource(full)) }
        // Under another id it is received again, byte-identical.
        let r = Replayer(pool: pool)
        r.targetID = 77
        #expect(try r.receive(from: MemorySource(full)).outcome == .received)
        #expect(try pool.read(77, offset: 0, count: s.image(ids[0]).count) == s.image(ids[0]))
    }
}
