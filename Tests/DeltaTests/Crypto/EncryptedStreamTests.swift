import Delta
import Foundation
import PoolCore
import Testing
import TestSupport

/// Byte ranges of a stream's records (after the 8-byte magic).
func recordRanges(of bytes: [UInt8]) -> [Range<Int>] {
    var out: [Range<Int>] = []
    var i = 8
    while i + 24 <= bytes.count {
        let len = Int(bytes[i + 4]) | Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]) << 16 | Int(bytes[i + 7]) << 24
        out.append(i..<min(bytes.count, i + 24 + len))
        i += 24 + len
    }
    return out
}

/// Reassembles records into a stream with every CRC recomputed (what anyone can do: CRCs have no key),
/// numbering them 0, 1, 2… when `renumber`. Tampering then has to get past the authentication.
func rechain(_ records: [[UInt8]], renumber: Bool = true) -> [UInt8] {
    var out = StreamFormat.magic
    var chain = StreamFormat.magic.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
    for (i, rec) in records.enumerated() {
        var r = rec
        if renumber { withUnsafeBytes(of: UInt64(i).littleEndian) { r.replaceSubrange(8..<16, with: $0) } }
        let head = r[0..<16].withUnsafeBytes { Checksum.update(chain, $0) }
        withUnsafeBytes(of: head.littleEndian) { r.replaceSubrange(16..<20, with: $0) }
        let crc = r[0..<r.count - 4].withUnsafeBytes { Checksum.update(chain, $0) }
        withUnsafeBytes(of: crc.littleEndian) { r.replaceSubrange(r.count - 4..<r.count, with: $0) }
        chain = crc
        out += r
    }
    return out
}

/// The data, zero and discard records (what a receiver applies; trailers differ: their stream digest covers the sealed bytes).
func content(_ r: [StreamRecord]) -> [StreamRecord] {
    r.filter { switch $0 { case .data, .zero, .discard: return true; default: return false } }
}

func records(of bytes: [UInt8]) -> [[UInt8]] { recordRanges(of: bytes).map { Array(bytes[$0]) } }

/// The error decoding `bytes` ends with (nil: it decoded).
func decodeFailure(_ bytes: [UInt8], keyring: StreamKeyring?, framingOnly: Bool = false) -> StreamError? {
    do {
        _ = try decodeAll(bytes, pieces: [max(1, bytes.count)], keyring: keyring, framingOnly: framingOnly)
        return nil
    } catch let e as StreamError {
        return e
    } catch {
        return .key("unexpected \(error)")
    }
}

/// An incremental stream: changed blocks (data), blocks gone (discard), zero blocks, under `key`.
func incrementalStream(key: StreamKey?, streamID: Digest128 = Digest128(high: 0xABC, low: 1)) throws -> [UInt8] {
    let s = Scenario(seed: 31, blocks: 64)
    var rng = SeededRNG(seed: 31)
    for d in 0..<8 as Range<UInt64> { s.reader.fill(d, kind: d == 3 ? 0 : 1, rng: &rng) }
    var h = s.header()
    h.streamID = streamID
    h.base = SnapshotIdentity(device: 6, creationTime: 1, snapshottedTime: 2, transactionID: 5)
    h.baseFingerprint = Digest128(high: 77, low: 88)
    let sink = MemorySink()
    let sender = StreamSender(header: h, reader: s.reader, compressor: try ZstdCompressor(level: 3), sink: sink,
                              baseDigest: nil, key: key)
    _ = try sender.send { body in
        try body(DeltaRun(kind: .different, begin: 2, length: 4, leftData: 40, rightData: 0))   // data, a zero block, data
        try body(DeltaRun(kind: .leftOnly, begin: 10, length: 3, leftData: 41, rightData: nil))  // discard
        try body(DeltaRun(kind: .rightOnly, begin: 20, length: 4, leftData: nil, rightData: 4))  // data
    }
    return sink.bytes
}

@Suite struct EncryptedStreamTests {
    let key = StreamKey.generate()
    var keyring: StreamKeyring { StreamKeyring(key: key) }

    /// The record types present in a stream, by sequence (decoded with the key).
    func types(_ bytes: [UInt8]) -> [UInt8] { records(of: bytes).map { $0[0] } }

    @Test func encryptedFullAndIncrementalGiveTheSameRecords() throws {
        let s = Scenario(seed: 3, blocks: 120)
        let plain = try decodeAll(s.send().bytes, pieces: [1 << 30])
        let sealed = try s.send(key: key).bytes
        let opened = try decodeAll(sealed, pieces: [1 << 30], keyring: keyring)
        let same = content(opened) == content(plain)
        #expect(same && content(plain).count > 3)
        guard case .header(let hp) = plain[0], case .header(let he) = opened[0] else { Issue.record("no header"); return }
        #expect(he.target == hp.target && he.sourcePool == hp.sourcePool && he.encryption?.keyID == key.id)
        let img = try applyToImage(opened, size: Int(s.virtualBlocks) * s.blockSize, blockSize: s.blockSize)
        #expect(img == s.model())
        // Incremental: same records as the clear stream, base identity and fingerprint from the sealed header.
        let ip = try decodeAll(incrementalStream(key: nil), pieces: [1 << 30])
        let ie = try decodeAll(incrementalStream(key: key), pieces: [1 << 30], keyring: keyring)
        let sameIncremental = content(ie) == content(ip)
        #expect(sameIncremental)
        guard case .header(let ih) = ie[0] else { Issue.record("no header"); return }
        #expect(ih.base == SnapshotIdentity(device: 6, creationTime: 1, snapshottedTime: 2, transactionID: 5))
        #expect(ih.baseFingerprint == Digest128(high: 77, low: 88))
        #expect(ie.contains { if case .discard = $0 { return true } else { return false } })
    }

    /// No 64-byte run of a source block appears in the encrypted stream (it does in the clear one).
    @Test func encryptedStreamHoldsNoPlaintextBlock() throws {
        let s = Scenario(seed: 8, blocks: 60)
        let clear = try s.send().bytes, sealed = try s.send(key: key).bytes
        var patterns: [ArraySlice<UInt8>] = []
        for (_, d) in s.mapping {
            let b = s.reader.block(d)
            if b.allSatisfy({ $0 == 0 }) { continue }
            patterns.append(b.prefix(64))
            patterns.append(b.dropFirst(b.count / 2).prefix(64))
        }
        #expect(patterns.count > 10)
        func contains(_ hay: [UInt8], _ p: ArraySlice<UInt8>) -> Bool {
            hay.withUnsafeBytes { h in p.withUnsafeBytes { n in
                var i = 0
                while i + n.count <= h.count {
                    if memcmp(h.baseAddress! + i, n.baseAddress!, n.count) == 0 { return true }
                    i += 1
                }
                return false
            } }
        }
        #expect(patterns.contains { contains(clear, $0) }, "the clear stream carries incompressible blocks as they are")
        #expect(!patterns.contains { contains(sealed, $0) })
    }

    /// A byte changed in any record (CRCs recomputed) fails authentication at that record; in the clear header, at record 1.
    @Test(arguments: [false, true])
    func everyRecordTypeTamperedFailsAtItsRecord(incremental: Bool) throws {
        let bytes = incremental ? try incrementalStream(key: key) : try Scenario(seed: 4, blocks: 40).send(key: key).bytes
        let recs = records(of: bytes)
        let t = types(bytes)
        #expect(Set(t).isSuperset(of: incremental ? [1, 2, 3, 4, 5, 6] : [1, 2, 3, 5, 6]), "record types \(t)")
        #expect(rechain(recs) == bytes)
        let ranges = recordRanges(of: bytes)
        for i in 1..<recs.count {
            for at in [20, 20 + (recs[i].count - 24) / 2, recs[i].count - 5] {
                var bad = recs
                bad[i][at] ^= 0x20
                #expect(decodeFailure(rechain(bad), keyring: keyring)
                        == .authenticationFailed(sequence: UInt64(i), offset: UInt64(ranges[i].lowerBound)), "record \(i) type \(t[i]) byte \(at)")
            }
        }
        // The header is in the clear but covered by every record's associated data.
        var bad = recs
        bad[0][20 + 136] ^= 1  // expected blocks
        #expect(decodeFailure(rechain(bad), keyring: keyring) == .authenticationFailed(sequence: 1, offset: UInt64(ranges[1].lowerBound)))
    }

    @Test func droppedReorderedAndCutRecordsFail() throws {
        let bytes = try Scenario(seed: 5, blocks: 40).send(key: key).bytes
        let recs = records(of: bytes), ranges = recordRanges(of: bytes)
        #expect(recs.count >= 5)
        for i in 2..<recs.count - 1 {
            var dropped = recs
            dropped.remove(at: i)
            #expect(decodeFailure(rechain(dropped), keyring: keyring) == .authenticationFailed(sequence: UInt64(i), offset: UInt64(ranges[i].lowerBound)))
            var swapped = recs
            swapped.swapAt(i - 1, i)
            #expect(decodeFailure(rechain(swapped), keyring: keyring) == .authenticationFailed(sequence: UInt64(i - 1), offset: UInt64(ranges[i - 1].lowerBound)))
        }
        // Without its trailer (the rest re-chained) the stream is truncated; cut anywhere, it fails.
        let noTrailer = rechain(Array(recs.dropLast()))
        #expect(decodeFailure(noTrailer, keyring: keyring) == .truncated(offset: UInt64(noTrailer.count)))
        var rng = SeededRNG(seed: 5)
        for _ in 0..<20 {
            let cut = Int.random(in: 0..<bytes.count, using: &rng)
            #expect(decodeFailure(Array(bytes[0..<cut]), keyring: keyring) != nil, "cut at \(cut)")
        }
    }

    /// Two streams under one key: records, trailer or header taken from the other fail authentication.
    @Test func recordsFromAnotherStreamUnderTheSameKeyFail() throws {
        let a = try incrementalStream(key: key, streamID: Digest128(high: 1, low: 1))
        let b = try incrementalStream(key: key, streamID: Digest128(high: 2, low: 2))
        let ra = records(of: a), rb = records(of: b), ranges = recordRanges(of: a)
        #expect(ra.count == rb.count)
        for i in 1..<ra.count {
            var spliced = ra
            spliced[i] = rb[i]
            #expect(decodeFailure(rechain(spliced), keyring: keyring)
                    == .authenticationFailed(sequence: UInt64(i), offset: UInt64(ranges[i].lowerBound)), "record \(i) from the other stream")
        }
        var otherHeader = ra
        otherHeader[0] = rb[0]
        #expect(decodeFailure(rechain(otherHeader), keyring: keyring) == .authenticationFailed(sequence: 1, offset: UInt64(ranges[1].lowerBound)))
    }

    @Test func wrongMissingAndNeedlessKeysAreRefused() throws {
        let s = Scenario(seed: 6, blocks: 16)
        let sealed = try s.send(key: key).bytes
        let other = StreamKey.generate()
        #expect(decodeFailure(sealed, keyring: StreamKeyring(key: other)) == .wrongKey(stream: key.id, given: other.id))
        #expect(decodeFailure(sealed, keyring: nil) == .keyRequired(keyID: key.id))
        #expect(decodeFailure(try s.send().bytes, keyring: keyring) == .notEncrypted)
        guard case .key(let why)? = decodeFailure(sealed, keyring: try StreamKeyring(passphrase: Array("pw".utf8))) else {
            Issue.record("a passphrase for a key-file stream"); return
        }
        #expect(why.contains("key file"))
    }

    @Test func passphraseStreamsCarryTheirSaltAndCost() throws {
        let pk = try StreamKey.derive(passphrase: Array("a long passphrase".utf8), salt: Sodium.randomBytes(16), opsLimit: 1, memLimit: 8 << 20)
        let s = Scenario(seed: 7, blocks: 16)
        let sealed = try s.send(key: pk).bytes
        let got = try decodeAll(sealed, pieces: [1 << 30], keyring: try StreamKeyring(passphrase: Array("a long passphrase".utf8)))
        let same = content(got) == content(try decodeAll(s.send().bytes, pieces: [1 << 30]))
        #expect(same)
        #expect(decodeFailure(sealed, keyring: try StreamKeyring(passphrase: Array("a long passphrasE".utf8)))
                == .wrongKey(stream: pk.id, given: try StreamKey.derive(passphrase: Array("a long passphrasE".utf8),
                    salt: { if case let .argon2id(salt, _, _) = pk.derivation { return salt } else { return [] } }(), opsLimit: 1, memLimit: 8 << 20).id))
    }

    /// Without the key: the framing is checked (damage, truncation), the records come back sealed.
    @Test func framingIsCheckedWithoutTheKey() throws {
        let sealed = try Scenario(seed: 9, blocks: 30).send(key: key).bytes
        let recs = try decodeAll(sealed, pieces: [1 << 30], framingOnly: true)
        #expect(recs.count == records(of: sealed).count)
        guard case .header(let h) = recs[0], case .sealed(5, _, _)? = recs.last else { Issue.record("\(recs.first!)"); return }
        #expect(h.encryption?.keyID == key.id && h.target == .none)
        var damaged = sealed
        damaged[damaged.count / 2] ^= 4
        #expect(decodeFailure(damaged, keyring: nil, framingOnly: true) != nil)
        #expect(decodeFailure(Array(sealed.dropLast(30)), keyring: nil, framingOnly: true) != nil)
    }

    /// A reader of version 1 only checks the header length (at most 160) and then the version: it says "version 2".
    @Test func headerTellsAVersion1ReaderItsVersion() throws {
        let sealed = try Scenario(seed: 2, blocks: 8).send(key: key).bytes
        let head = records(of: sealed)[0]
        #expect(head[0] == 1 && head[4..<8] == [160, 0, 0, 0] && head[20..<24] == [2, 0, 0, 0])
        #expect(StreamError.unsupportedVersion(2).description.contains("version 2"))
    }

    @Test func encryptedResumeUsesNewNoncesAndContinuesTheChain() throws {
        let s = Scenario(seed: 11, blocks: 40)
        let bytes = try s.send(key: key).bytes
        let whole = try decodeAll(bytes, pieces: [bytes.count], keyring: keyring)
        var d = StreamDecoder(keyring: keyring)
        d.feed(bytes)
        var first: [StreamRecord] = []
        for _ in 0..<3 { first.append(try d.next()!) }
        let point = try #require(StreamProgress(token: d.progress.token))
        let resumed = try s.send(key: key, resumeAt: point).bytes
        var rd = StreamDecoder(resumingAt: point, keyring: keyring)
        rd.feed(resumed)
        var rest: [StreamRecord] = []
        while let r = try rd.next() { rest.append(r) }
        try rd.finish()
        guard case .header(let h) = rest.removeFirst(), case .header(let h0) = whole[0] else { Issue.record("no header"); return }
        #expect(h.resumeSequence == point.nextSequence && h.target == h0.target)
        #expect(h.encryption!.nonceSalt != h0.encryption!.nonceSalt)
        let same = content(first + rest) == content(whole)
        #expect(same && content(whole).count > 3)
        guard case .trailer(let t)? = rest.last, case .trailer(let t0)? = whole.last else { Issue.record("no trailer"); return }
        #expect(t.records == t0.records && t.dataBlocks == t0.dataBlocks && t.zeroBlocks == t0.zeroBlocks)
    }
}
