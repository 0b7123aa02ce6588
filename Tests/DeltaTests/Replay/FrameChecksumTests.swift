import Delta
import PoolCore
import Testing
import TestSupport

/// zstd's content checksums are skipped only where the trailer's digest checks every decompressed
/// byte before anything commits (an incremental stream from a base of known digest, one transaction).
/// A frame that decodes to other bytes than it claims (a sender's or decoder's fault the record CRC
/// cannot see) is still refused, and the pool is left as it was.
@Suite struct FrameChecksumTests {
    /// A zstd frame of raw blocks holding `content`, whose content checksum field is that of `claimed`:
    /// single segment, 4-byte content size, checksum flag (RFC 8878, 3.1.1).
    static func frame(_ content: [UInt8], claiming claimed: [UInt8]) -> [UInt8] {
        var f: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xA4]
        withUnsafeBytes(of: UInt32(content.count).littleEndian) { f += $0 }
        var i = 0
        repeat {
            let n = min(128 << 10, content.count - i)
            let head = UInt32(i + n == content.count ? 1 : 0) | UInt32(n) << 3
            f += [UInt8(head & 0xFF), UInt8(head >> 8 & 0xFF), UInt8(head >> 16)]
            f += content[i..<i + n]
            i += n
        } while i < content.count
        let sum = UInt32(truncatingIfNeeded: claimed.withUnsafeBytes { XXHash64.hash($0, seed: 0) })
        withUnsafeBytes(of: sum.littleEndian) { f += $0 }
        return f
    }

    static func decompress(_ frame: [UInt8], size: Int, checks: Bool) throws -> [UInt8] {
        let z = try ZstdDecompressor()
        try z.checkContentChecksums(checks)
        var out = [UInt8](repeating: 0, count: size)
        let n = try frame.withUnsafeBytes { f in try out.withUnsafeMutableBytes { try z.decompress(f, into: $0) } }
        return Array(out[0..<n])
    }

    @Test func theHandMadeFramesAreWhatTheTestsNeed() throws {
        var rng = SeededRNG(seed: 5)
        let x = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var y = x
        y[123_456] ^= 0x40
        // An honest frame decodes with the check on; a lying one is refused with it, read without it.
        #expect(try Self.decompress(Self.frame(x, claiming: x), size: x.count, checks: true) == x)
        #expect(throws: ZstdError.self) { try Self.decompress(Self.frame(y, claiming: x), size: x.count, checks: true) }
        #expect(try Self.decompress(Self.frame(y, claiming: x), size: x.count, checks: false) == y)
        // Back on after off: checked again.
        let z = try ZstdDecompressor()
        try z.checkContentChecksums(false)
        try z.checkContentChecksums(true)
        var out = [UInt8](repeating: 0, count: x.count)
        #expect(throws: ZstdError.self) {
            try Self.frame(y, claiming: x).withUnsafeBytes { f in try out.withUnsafeMutableBytes { _ = try z.decompress(f, into: $0) } }
        }
    }

    @Test func thePipelineChecksFramesUnlessToldNotTo() throws {
        let bs = 64 * 1024
        var rng = SeededRNG(seed: 6)
        let x = (0..<4 * bs).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var y = x
        y[7] ^= 1
        let lying = Self.frame(y, claiming: x)
        for checks in [true, false] {
            let p = try FramePipeline(workers: 2, maxRecordRaw: 4 * bs)
            p.checksFrameChecksums = checks
            var got: [[UInt8]] = []
            let run = {
                try p.push(.data(firstBlock: 0, blockCount: 4, frame: lying), sequence: 1, blockSize: bs) { got.append(Array($0.raw)) }
                try p.drain { got.append(Array($0.raw)) }
            }
            if checks {
                #expect(throws: StreamError.self) { try run() }
                #expect(got.isEmpty)
            } else {
                try run()
                #expect(got == [y])
            }
        }
    }

    /// `stream` decoded and written again, the first data record's frame replaced by one that decodes
    /// to its bytes with one bit flipped but claims the original's checksum; the trailer's digest is
    /// the original's, or none.
    static func tampered(_ stream: [UInt8], blockSize bs: Int, keepDigest: Bool) throws -> [UInt8] {
        var d = StreamDecoder()
        d.feed(stream)
        var records: [StreamRecord] = []
        while let r = try d.next() { records.append(r) }
        guard case let .header(h) = records.first, case let .trailer(t) = records.last else { throw StreamError.notAStream }
        var e = StreamEncoder(header: h)
        var out = e.start()
        var replaced = false
        for r in records.dropFirst().dropLast() {
            switch r {
            case let .data(first, count, frame):
                var f = frame
                if !replaced {
                    let x = try decompress(frame, size: Int(count) * bs, checks: true)
                    var y = x
                    y[y.count / 2] ^= 0x10
                    f = Self.frame(y, claiming: x)
                    replaced = true
                }
                out += f.withUnsafeBytes { e.data(firstBlock: first, blockCount: count, rawBytes: Int(count) * bs, frame: $0) }
            case let .zero(first, count): out += e.zero(firstBlock: first, blockCount: count)
            case let .discard(first, count): out += e.discard(firstBlock: first, blockCount: count)
            default: throw StreamError.notAStream
            }
        }
        #expect(replaced, "the stream has a data record")
        out += e.finish(targetDigest: keepDigest ? t.targetDigest : nil)
        return out
    }

    @Test func anIncrementalDecodedUncheckedIsStillRefusedWhenItsBytesAreWrong() throws {
        let dir = TempDir("frame-checksums")
        let (s, ids) = ReplayTests.chain(seed: 77, length: 2)
        let pool = try ThinPoolReplayTests.makePool(dir)
        _ = try Replayer(pool: pool).receive(from: MemorySource(try s.send(ids[0], from: nil, streamID: 1)))
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        let before = try ThinPoolReplayTests.snapshotOf(pool)

        // With the trailer's digest: decoded without zstd's checks, refused by the digest.
        let r1 = Replayer(pool: pool)
        do {
            _ = try r1.receive(from: MemorySource(try Self.tampered(inc, blockSize: s.blockSize, keepDigest: true)))
            Issue.record("an incremental with a lying frame was received")
        } catch let e as ReplayError {
            guard case .targetDigestMismatch = e else { Issue.record("refused for \(e), not the digest"); return }
        }
        #expect(r1.framesUnchecked)
        // Without it: refused because nothing checked the bytes.
        #expect(throws: ReplayError.unverifiedContent(s.identities[ids[1]]!)) {
            try Replayer(pool: pool).receive(from: MemorySource(try Self.tampered(inc, blockSize: s.blockSize, keepDigest: false)))
        }
        let after = try ThinPoolReplayTests.snapshotOf(pool)
        #expect(before.0 == after.0 && before.1 == after.1 && before.2 == after.2, "the pool is as it was")

        // The honest stream: decoded unchecked, received, right bytes.
        let ok = Replayer(pool: pool)
        let sum = try ok.receive(from: MemorySource(inc))
        #expect(ok.framesUnchecked)
        #expect(sum.contentDigest == s.digest(ids[1]))
        #expect(try pool.read(ids[1], offset: 0, count: s.image(ids[1]).count) == s.image(ids[1]))
    }

    @Test func fullStreamsAndCheckpointedReceivesKeepZstdsChecks() throws {
        let dir = TempDir("frame-checksums-full")
        let (s, ids) = ReplayTests.chain(seed: 78, length: 2)
        let pool = try ThinPoolReplayTests.makePool(dir)
        let full = try s.send(ids[0], from: nil, streamID: 1)
        let before = try ThinPoolReplayTests.snapshotOf(pool)
        let r = Replayer(pool: pool)
        try Self.expectZstdRefuses(r, Self.tampered(full, blockSize: s.blockSize, keepDigest: true), "a full stream")
        let after = try ThinPoolReplayTests.snapshotOf(pool)
        #expect(before.0 == after.0 && before.1 == after.1 && before.2 == after.2)

        _ = try Replayer(pool: pool).receive(from: MemorySource(full))
        let inc = try s.send(ids[1], from: ids[0], streamID: 2)
        let c = Replayer(pool: pool)
        c.checkpointBytes = 1 << 20
        try Self.expectZstdRefuses(c, Self.tampered(inc, blockSize: s.blockSize, keepDigest: true), "a checkpointed incremental")
    }

    /// `r` refuses `stream` (a lying frame) in zstd's checksum check, which it kept on.
    static func expectZstdRefuses(_ r: Replayer, _ stream: [UInt8], _ what: String) throws {
        do {
            _ = try r.receive(from: MemorySource(stream))
            Issue.record("\(what) with a lying frame was received")
        } catch let e as StreamError {
            #expect("\(e)".contains("does not decompress"), "\(what): \(e)")
        }
        #expect(!r.framesUnchecked, "\(what)")
    }
}
