import Delta
import Testing
import TestSupport

@Suite struct ReplayTests {
    /// Sender: device 1 of 64 blocks, then a chain of snapshots 2…7, each mutated from the one before.
    static func chain(seed: UInt64, length: Int = 6) -> (SenderModel, [UInt64]) {
        let s = SenderModel(seed: seed)
        s.create(1, blocks: 64)
        s.mutate(1, changes: 40)
        var ids: [UInt64] = [1]
        for i in 2...UInt64(length + 1) {
            s.snapshot(i, of: ids.last!)
            s.mutate(i, changes: 10)
            ids.append(i)
        }
        return (s, ids)
    }

    /// Long runs of replaced blocks (read back in 1 MiB chunks, two buffers hashed in turn on another
    /// thread) and frames whose blocks the workers hash: the receive's digest is the model's, with and
    /// without checkpoints (each takes the hashed chunks out of the digest it saves first).
    @Test(arguments: [nil, 1 << 20] as [UInt64?])
    func longRunsOfReplacedBlocksKeepTheDigest(checkpointBytes: UInt64?) throws {
        let s = SenderModel(seed: 41)
        s.create(1, blocks: 240)
        for v in 0..<240 as Range<UInt64> { s.write(1, v, kind: Int(v % 3)) }
        s.snapshot(2, of: 1)
        for v in 5..<170 as Range<UInt64> { s.write(2, v, kind: v % 7 == 0 ? 0 : (v % 2 == 0 ? 1 : 2)) }
        for v in 180..<236 as Range<UInt64> { s.discard(2, v) }
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        for (id, base, stream) in [(1 as UInt64, nil as UInt64?, 1 as UInt64), (2, 1, 2)] {
            let r = Replayer(pool: pool)
            r.checkpointBytes = checkpointBytes
            let got = try r.receive(from: MemorySource(try s.send(id, from: base, streamID: stream), chunk: 300_000))
            #expect(got.outcome == .received)
            #expect(got.contentDigest == s.digest(id), "device \(id)")
            #expect(pool.image(id) == s.image(id), "device \(id)")
        }
        #expect(pool.image(1) == s.image(1))
    }

    @Test(arguments: [1 as UInt64, 2])
    func fullThenChainOfIncrementalsIsByteIdentical(seed: UInt64) throws {
        let (s, ids) = Self.chain(seed: seed)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        var base: UInt64?
        for (k, id) in ids.enumerated() {
            let bytes = try s.send(id, from: base, streamID: UInt64(k + 1))
            let r = try Replayer(pool: pool).receive(from: MemorySource(bytes, chunk: 70_000))
            #expect(r.outcome == .received)
            #expect(pool.image(id) == s.image(id), "seed \(seed), device \(id)")
            #expect(r.contentDigest == s.digest(id))
            // Earlier devices are untouched by later receives.
            if let b = base { #expect(pool.image(b) == s.image(b)) }
            base = id
        }
        #expect(pool.committed.devices.count == ids.count)
    }

    @Test func receivingTheSameStreamTwiceChangesNothing() throws {
        let (s, ids) = Self.chain(seed: 3, length: 2)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        let full = try s.send(ids[0], from: nil, streamID: 1)
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        _ = try Replayer(pool: pool).receive(from: MemorySource(full))
        _ = try Replayer(pool: pool).receive(from: MemorySource(inc))
        let before = pool.committed
        for bytes in [full, inc] {
            let r = try Replayer(pool: pool).receive(from: MemorySource(bytes))
            #expect(r.outcome == .alreadyReceived)
            #expect(pool.committed == before)
            #expect(pool.open == before)
        }
        // A second send of the same snapshot (another stream id) is the same snapshot: nothing changes either.
        let again = try s.send(ids[1], from: ids[0], streamID: 99)
        #expect(try Replayer(pool: pool).receive(from: MemorySource(again)).outcome == .alreadyReceived)
        #expect(pool.committed == before)
    }

    /// Receives `bytes` into a pool that already holds the chain's first device, expecting a refusal and no change.
    func expectRefused(_ bytes: [UInt8], pool: MemoryReceivingPool, _ note: String) {
        let before = pool.committed
        #expect(throws: (any Error).self, "\(note)") { _ = try Replayer(pool: pool).receive(from: MemorySource(bytes, chunk: 50_000)) }
        #expect(pool.committed == before, "\(note)")
        #expect(pool.open == before, "\(note)")
    }

    @Test func corruptTruncatedSwappedAndForeignStreamsLeaveThePoolUnchanged() throws {
        let (s, ids) = Self.chain(seed: 4, length: 2)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(ids[0], from: nil, streamID: 1)))
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        var rng = SeededRNG(seed: 2024)
        for _ in 0..<200 {
            var bad = inc
            let at = Int.random(in: 0..<bad.count, using: &rng)
            bad[at] ^= UInt8.random(in: 1...255, using: &rng)
            expectRefused(bad, pool: pool, "corrupt byte at \(at) (seed 2024)")
        }
        for _ in 0..<20 {
            let cut = Int.random(in: 0..<inc.count, using: &rng)
            expectRefused(Array(inc[0..<cut]), pool: pool, "cut at \(cut)")
        }
        // Another base: an incremental from a snapshot this pool never received.
        s.snapshot(50, of: ids[0]); s.mutate(50, changes: 3)
        s.snapshot(51, of: 50); s.mutate(51, changes: 3)
        expectRefused(try s.send(51, from: 50, streamID: 3), pool: pool, "another base")
        // The right base id but another content fingerprint.
        expectRefused(try s.send(ids[1], from: ids[0], streamID: 4, baseFingerprint: Digest128(high: 1, low: 1)),
                      pool: pool, "wrong fingerprint")
        // And the good stream still applies afterwards.
        _ = try Replayer(pool: pool).receive(from: MemorySource(inc))
        #expect(pool.image(ids[1]) == s.image(ids[1]))
    }

    @Test func errorMessagesNameWhatIsWrong() throws {
        let (s, ids) = Self.chain(seed: 6, length: 2)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        do {
            _ = try Replayer(pool: pool).receive(from: MemorySource(inc))
            Issue.record("accepted an incremental without its base")
        } catch {
            #expect("\(error)".contains("base device 1"), "\(error)")
        }
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(ids[0], from: nil, streamID: 1)))
        try pool.scribble(ids[0], block: 3)
        do {
            _ = try Replayer(pool: pool).receive(from: MemorySource(inc))
            Issue.record("accepted an incremental onto a modified base")
        } catch {
            #expect("\(error)" == ReplayError.baseModified(local: 1, base: s.identities[1]!).description)
        }
    }

    @Test func aFailedWriteAbortsEverything() throws {
        let (s, ids) = Self.chain(seed: 7, length: 1)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        let full = try s.send(ids[0], from: nil, streamID: 1)
        for n in [0, 1, 3] {
            pool.failWritesAfter = n
            expectRefused(full, pool: pool, "write \(n) fails")
        }
        pool.failWritesAfter = nil
        _ = try Replayer(pool: pool).receive(from: MemorySource(full))
        #expect(pool.image(ids[0]) == s.image(ids[0]))
    }

    @Test func interruptedReceiveResumesFromTheWholeStreamOrAToken() throws {
        let s = SenderModel(seed: 8)
        s.create(1, blocks: 400)
        for v in 0..<400 as Range<UInt64> { s.write(1, v, kind: v % 5 == 0 ? 0 : 1) }
        let full = try s.send(1, from: nil, streamID: 1)
        for viaToken in [false, true] {
            let pool = MemoryReceivingPool(blockSize: s.blockSize)
            let rp = Replayer(pool: pool)
            rp.checkpointBytes = 4 << 20
            var token: String?
            rp.onCheckpoint = { token = $0 }
            #expect(throws: MemorySource.Cut.self) { _ = try rp.receive(from: MemorySource(full, failAfter: full.count * 2 / 3)) }
            let tok = try #require(token)
            let point = try #require(StreamProgress(token: tok))
            #expect(pool.committed.receipts[1]?.partial?.progress == point)
            let rest: [UInt8] = viaToken ? try s.send(1, from: nil, streamID: 1, resumeAt: point) : full
            if viaToken { #expect(rest.count < full.count) }
            let r = try Replayer(pool: pool).receive(from: MemorySource(rest), resume: true)
            #expect(r.outcome == .resumed)
            #expect(pool.image(1) == s.image(1), "via token: \(viaToken)")
            #expect(pool.committed.receipts[1]?.partial == nil)
            #expect(pool.committed.receipts[1]?.contentDigest == s.digest(1))
        }
    }
}

/// A pool whose devices keep versions (an LVM volume `VG/LV` names the newest): an increment
/// goes onto the version the target holds and becomes its next version; anything else is refused
/// as on any pool.
@Suite struct VersionedReplayTests {
    @Test func anIncrementOntoTheVersionTheTargetHoldsBecomesItsNextVersion() throws {
        let (s, ids) = ReplayTests.chain(seed: 7, length: 3)
        let full = try s.send(ids[0], from: nil, streamID: 1)
        let inc1 = try s.send(ids[1], from: ids[0], streamID: 2)
        let inc2 = try s.send(ids[2], from: ids[1], streamID: 3)
        let inc3 = try s.send(ids[3], from: ids[2], streamID: 4)
        func replayer(_ pool: MemoryReceivingPool) -> Replayer {
            let r = Replayer(pool: pool)
            r.targetID = 9
            return r
        }
        // Without versions, the same target id is a device that exists.
        let plain = MemoryReceivingPool(blockSize: s.blockSize)
        _ = try replayer(plain).receive(from: MemorySource(full))
        #expect(throws: ReplayError.deviceExists(9)) { _ = try replayer(plain).receive(from: MemorySource(inc1)) }

        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        pool.versioned = true
        _ = try replayer(pool).receive(from: MemorySource(full))
        #expect(pool.image(9) == s.image(ids[0]))
        // A wrong base (the target holds ids[0], the stream needs ids[1]) and a full stream onto it: refused, nothing changed.
        let before = pool.committed
        #expect(throws: (any Error).self) { _ = try replayer(pool).receive(from: MemorySource(inc2)) }
        let other = try s.send(ids[2], from: nil, streamID: 5)
        #expect(throws: ReplayError.deviceExists(9)) { _ = try replayer(pool).receive(from: MemorySource(other)) }
        #expect(pool.committed == before)
        for (k, bytes) in [inc1, inc2, inc3].enumerated() {
            let r = try replayer(pool).receive(from: MemorySource(bytes, chunk: 30_000))
            #expect(r.outcome == .received && r.device == 9)
            #expect(pool.image(9) == s.image(ids[k + 1]), "version \(k + 2)")
        }
        // The newest version's stream again: already received, nothing changed.
        let now = pool.committed
        #expect(try replayer(pool).receive(from: MemorySource(inc3)).outcome == .alreadyReceived)
        #expect(pool.committed == now)
    }
}
