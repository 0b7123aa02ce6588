import Delta
import Foundation
import Testing
import TestSupport

/// The receiver side of encrypted streams: checkpoints, resume from the whole stream, from a token
/// (a new nonce salt) or at a byte offset, and refusals before any change.
@Suite struct EncryptedReplayTests {
    let key = StreamKey.generate()

    @Test func interruptedEncryptedReceiveResumes() throws {
        let s = SenderModel(seed: 18)
        s.create(1, blocks: 400)
        for v in 0..<400 as Range<UInt64> { s.write(1, v, kind: v % 5 == 0 ? 0 : 1) }
        let full = try s.send(1, from: nil, streamID: 1, key: key)
        for mode in ["whole stream", "token", "byte offset"] {
            let pool = MemoryReceivingPool(blockSize: s.blockSize)
            let rp = Replayer(pool: pool)
            rp.keyring = StreamKeyring(key: key)
            rp.checkpointBytes = 4 << 20
            var token: String?
            rp.onCheckpoint = { token = $0 }
            #expect(throws: MemorySource.Cut.self) { _ = try rp.receive(from: MemorySource(full, failAfter: full.count * 2 / 3)) }
            let tok = try #require(token)
            let point = try #require(StreamProgress(token: tok))
            let partial = try #require(pool.committed.receipts[1]?.partial)
            #expect(partial.header.isEncrypted && partial.header.target == s.identities[1]!)
            // The kept header (with its key parameters) survives the sidecar's JSON.
            let kept = try JSONDecoder().decode(StreamHeader.self, from: JSONEncoder().encode(partial.header))
            #expect(kept == partial.header)
            // Without the key the resume is refused and the checkpoint stays.
            #expect(throws: StreamError.keyRequired(keyID: key.id)) { _ = try Replayer(pool: pool).receive(from: MemorySource(full), resume: true) }
            #expect(pool.committed.receipts[1]?.partial?.progress == point)
            let r2 = Replayer(pool: pool)
            r2.keyring = StreamKeyring(key: key)
            r2.targetID = 1
            let r: ReceiveSummary
            switch mode {
            case "token":
                let rest = try s.send(1, from: nil, streamID: 1, resumeAt: point, key: key)
                #expect(rest.count < full.count)
                r = try r2.receive(from: MemorySource(rest), resume: true)
            case "byte offset":
                r = try r2.receiveContinuing(from: MemorySource(Array(full[Int(partial.streamOffset)...])))
            default:
                r = try r2.receive(from: MemorySource(full), resume: true)
            }
            #expect(r.outcome == .resumed)
            #expect(pool.image(1) == s.image(1), "\(mode)")
            #expect(pool.committed.receipts[1]?.contentDigest == s.digest(1))
        }
    }

    /// Incremental: the base checks use the authenticated sealed header; a wrong key changes nothing.
    @Test func encryptedIncrementalsApplyOntoTheirBaseOnly() throws {
        let s = SenderModel(seed: 19)
        s.create(1, blocks: 64)
        for v in 0..<64 as Range<UInt64> { s.write(1, v, kind: 1) }
        s.snapshot(2, of: 1)
        for v in stride(from: 0, to: 64, by: 7) as StrideTo<UInt64> { s.write(1, v, kind: 1) }
        let full = try s.send(2, from: nil, streamID: 10, key: key)
        let inc = try s.send(1, from: 2, streamID: 11, key: key)
        let pool = MemoryReceivingPool(blockSize: s.blockSize)
        let keyring = StreamKeyring(key: key)
        // The incremental before its base: refused (its base is named only inside the sealed header).
        let early = Replayer(pool: pool)
        early.keyring = keyring
        #expect(throws: ReplayError.self) { _ = try early.receive(from: MemorySource(inc)) }
        #expect(pool.committed.receipts.isEmpty)
        for (bytes, dev) in [(full, 2 as UInt64), (inc, 1)] {
            let wrong = Replayer(pool: pool)
            wrong.keyring = StreamKeyring(key: StreamKey.generate())
            let before = pool.committed.receipts
            #expect(throws: StreamError.self) { _ = try wrong.receive(from: MemorySource(bytes)) }
            #expect(pool.committed.receipts == before)
            let rp = Replayer(pool: pool)
            rp.keyring = keyring
            _ = try rp.receive(from: MemorySource(bytes))
            #expect(pool.image(dev) == s.image(dev))
        }
    }
}
