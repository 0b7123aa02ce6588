import Delta
import PoolCore
import Foundation
import Testing
import TestSupport

/// The send path's speed-ups keep the stream's bytes: records written in pieces (no frame copy),
/// the record hash computed over pieces, and incompressible blocks stored as raw zstd blocks.
@Suite struct SendFastPathTests {
    /// Records cut out of a chunk (zero, stored and compressed blocks interleaved, chunks of a whole
    /// record, more records than slots, an incremental's old blocks read for the digest) give one
    /// stream whatever the number of compressors; it decodes to the device's bytes, and its bytes are
    /// laid out as by the sender before records were compressed from the read buffer in place (the
    /// layout and the target digest below were printed by commit e20412f's sender, which copied them).
    @Test(arguments: [1, 2, 3])
    func recordsCutFromAChunkKeepTheirBytes(compressors: Int) throws {
        let bs = 64 * 1024, blocks = 400
        let memory = MemoryDataReader(blockSize: bs, blocks: blocks)
        var rng = SeededRNG(seed: 4015)
        // Kinds in runs of 1-9 blocks: 0 zeros, 1 random (stored), 2 text (compressed).
        var b = 0
        while b < blocks {
            let kind = Int.random(in: 0...2, using: &rng), n = Int.random(in: 1...9, using: &rng)
            for k in b..<min(blocks, b + n) { memory.fill(UInt64(k), kind: kind, rng: &rng) }
            b += n
        }
        for k in 330..<396 { memory.fill(UInt64(k), kind: 2, rng: &rng) }  // a whole record of text
        let runs = [
            DeltaRun(kind: .rightOnly, begin: 0, length: 150, leftData: nil, rightData: 0),
            DeltaRun(kind: .different, begin: 150, length: 70, leftData: 150, rightData: 300),
            DeltaRun(kind: .leftOnly, begin: 220, length: 3, leftData: 220, rightData: nil),
            DeltaRun(kind: .rightOnly, begin: 230, length: 64, leftData: nil, rightData: 223),
            DeltaRun(kind: .different, begin: 300, length: 5, leftData: 290, rightData: 395),
            DeltaRun(kind: .rightOnly, begin: 310, length: 66, leftData: nil, rightData: 330),
        ]
        let header = StreamHeader(blockSize: UInt32(bs), virtualSize: 380 * UInt64(bs), level: 3,
                                  streamID: Digest128(high: 0x4015, low: 1), sourcePool: Digest128(high: 1, low: 2),
                                  target: SnapshotIdentity(device: 2, creationTime: 1, snapshottedTime: 1, transactionID: 1),
                                  base: SnapshotIdentity(device: 1, creationTime: 0, snapshottedTime: 1, transactionID: 1),
                                  baseFingerprint: Digest128(high: 9, low: 9))
        let sink = MemorySink()
        let sender = StreamSender(header: header, reader: memory,
                                  compressors: try (0..<compressors).map { _ in try ZstdCompressor(level: 3, workers: 0) },
                                  sink: sink, baseDigest: Digest128(high: 9, low: 9))
        let summary = try sender.send { body in for r in runs { try body(r) } }
        // The device the stream describes, from the decoder (independent of the sender's buffers).
        var expected = [UInt8](repeating: 0, count: 380 * bs)
        for r in runs where r.kind != .leftOnly {
            for i in 0..<Int(r.length) {
                expected.replaceSubrange((Int(r.begin) + i) * bs..<(Int(r.begin) + i + 1) * bs, with: memory.block(r.rightData! + UInt64(i)))
            }
        }
        let records = try decodeAll(sink.bytes, pieces: [1 << 20])
        let image = try applyToImage(records, size: 380 * bs, blockSize: bs)
        #expect(image == expected)
        // The records' layout (kind, first block, count; frames stored or compressed), which does not
        // depend on libzstd's version.
        var layout = ""
        for r in records {
            switch r {
            case let .data(first, count, frame): let raw = Int(count) * bs
                layout += "d\(first)+\(count)\(frame.count == 9 + raw + 3 * ((raw + 131_071) / 131_072) ? "s" : "c") "
            case let .zero(first, count): layout += "z\(first)+\(count) "
            case let .discard(first, count): layout += "x\(first)+\(count) "
            default: break
            }
        }
        print("records-cut-from-a-chunk: \(compressors) compressors, \(sink.bytes.count) bytes, digest \(String(describing: summary.targetDigest)) \(layout)")
        #expect(layout == Self.cutRecordsLayout)
        #expect(summary.targetDigest == Self.cutRecordsDigest)
    }
    static let cutRecordsLayout = "z0+7 d7+6s z13+5 d18+5s d23+12c z35+1 d36+4c d40+3s d43+17c z60+2 d62+2s z64+26 d90+7c d97+9s "
        + "z106+8 d114+14c d128+3c z131+6 d137+9s d146+4c d150+2c z152+4 d156+3c d159+11s z170+8 d178+2s d180+34c d214+6c "
        + "x220+3 z230+2 d232+3c d235+14s z249+27 d276+9s z285+9 d300+2c d302+3s d310+64c d374+2c "
    static let cutRecordsDigest: Digest128? = Digest128(high: 0x7f17_6874_4210_063c, low: 0x31dd_3912_2267_4bb3)

    /// A regular data file is compressed and hashed where the page cache holds it (mapped): the
    /// stream's bytes equal those of a sender reading the same blocks into its buffers, also when
    /// the file ends inside the last run (that run is read, its missing bytes zeros), and the
    /// target digest is the one a reader without mappings gives.
    @Test(arguments: [0, 70_000])
    func aMappedDataFileGivesTheStreamOfReadBlocks(cutShort: Int) throws {
        let bs = 64 * 1024, blocks = 400
        let memory = MemoryDataReader(blockSize: bs, blocks: blocks)
        var rng = SeededRNG(seed: 77)
        for k in 0..<blocks { memory.fill(UInt64(k), kind: [2, 2, 1, 0][k % 4 == 3 ? Int.random(in: 0...3, using: &rng) : k % 3], rng: &rng) }
        // The file holds the first 396 blocks, less `cutShort` bytes; the memory reader the same bytes.
        let fileSize = 396 * bs - cutShort
        memory.data.replaceSubrange(fileSize..<memory.data.count, with: [UInt8](repeating: 0, count: memory.data.count - fileSize))
        let tmp = TempDir("mapped-send")
        let path = tmp.file("data")
        try Data(memory.data[0..<fileSize]).write(to: URL(fileURLWithPath: path))
        let runs = [
            DeltaRun(kind: .rightOnly, begin: 0, length: 100, leftData: nil, rightData: 0),
            DeltaRun(kind: .different, begin: 100, length: 90, leftData: 100, rightData: 200),
            DeltaRun(kind: .leftOnly, begin: 190, length: 4, leftData: 190, rightData: nil),
            DeltaRun(kind: .different, begin: 300, length: 96, leftData: 290, rightData: 300),
        ]
        let header = StreamHeader(blockSize: UInt32(bs), virtualSize: 396 * UInt64(bs), level: 3,
                                  streamID: Digest128(high: 0x77, low: 1), sourcePool: Digest128(high: 1, low: 2),
                                  target: SnapshotIdentity(device: 2, creationTime: 1, snapshottedTime: 1, transactionID: 1),
                                  base: SnapshotIdentity(device: 1, creationTime: 0, snapshottedTime: 1, transactionID: 1),
                                  baseFingerprint: Digest128(high: 5, low: 5))
        func send(_ reader: any DataBlockReader) throws -> ([UInt8], Digest128?) {
            let sink = MemorySink()
            let sender = StreamSender(header: header, reader: reader,
                                      compressors: try (0..<2).map { _ in try ZstdCompressor(level: 3, workers: 0) },
                                      sink: sink, baseDigest: Digest128(high: 5, low: 5))
            let summary = try sender.send { body in for r in runs { try body(r) } }
            return (sink.bytes, summary.targetDigest)
        }
        let file = try RandomAccessFile(path: path, writable: false)
        defer { file.close() }
        let mapped = FileDataBlockReader(file: file, blockSize: bs)
        let (a, da) = try send(mapped)
        let (b, db) = try send(memory)
        #expect(mapped.mappedRuns > 0)
        let same = a == b
        #expect(same, "the streams differ (\(a.count) and \(b.count) bytes)")
        #expect(da == db)
        // The digest from the blocks themselves: base − old (data blocks 100..<190 at 100, 190..<194,
        // 290..<386 at 300) + new (data blocks 0..<100 at 0, 200..<290 at 100, 300..<396 at 300).
        var d = ContentDigest(Digest128(high: 5, low: 5))
        func bytes(_ first: Int, _ n: Int) -> [UInt8] { Array(memory.data[first * bs..<(first + n) * bs]) }
        for (v, db, n) in [(100, 100, 90), (190, 190, 4), (300, 290, 96)] {
            bytes(db, n).withUnsafeBytes { d.remove(blocks: $0, from: UInt64(v), blockSize: bs) }
        }
        for (v, db, n) in [(0, 0, 100), (100, 200, 90), (300, 300, 96)] {
            bytes(db, n).withUnsafeBytes { d.add(blocks: $0, from: UInt64(v), blockSize: bs) }
        }
        #expect(da == d.value)
    }

    @Test func streamingXXHashEqualsOneShotInAnySplit() {
        var rng = SeededRNG(seed: 31)
        for len in [0, 1, 31, 32, 33, 64, 100, 4096, 70_001] {
            let data = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let whole = XXHash64.hash(data, seed: UInt64(len))
            for _ in 0..<8 {
                var h = XXHash64.Streaming(seed: UInt64(len))
                var i = 0
                while i < len {
                    let n = min(len - i, Int.random(in: 1...80, using: &rng))
                    data[i..<i + n].withUnsafeBytes { h.update($0) }
                    i += n
                }
                #expect(h.finish() == whole, "length \(len)")
            }
        }
    }

    /// A data record written as head + frame + tail is byte for byte the record `data` builds,
    /// and leaves the encoder in the same state (sequence, CRC chain, counts, stream digest).
    @Test func dataPiecesGiveTheBytesOfData() {
        let header = Scenario(seed: 1, blocks: 4).header()
        var a = StreamEncoder(header: header), b = StreamEncoder(header: header)
        #expect(a.start() == b.start())
        var rng = SeededRNG(seed: 5)
        var first: UInt64 = 0
        for len in [1, 17, 1000, 65_536, 200_003] {
            let frame = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let whole = frame.withUnsafeBytes { a.data(firstBlock: first, blockCount: 3, rawBytes: 3 * 65_536, frame: $0) }
            let (head, tail) = frame.withUnsafeBytes { b.dataPieces(firstBlock: first, blockCount: 3, rawBytes: 3 * 65_536, frame: $0) }
            #expect(head + frame + tail == whole, "frame of \(len) bytes")
            #expect(a.progress == b.progress)
            #expect(a.zero(firstBlock: first + 3, blockCount: 2) == b.zero(firstBlock: first + 3, blockCount: 2))
            first += 5
        }
        #expect(a.finish(targetDigest: .zero) == b.finish(targetDigest: .zero))
    }

    /// A stored frame is a valid zstd frame: the zstd tool (an independent decoder) and libzstd
    /// give back the input, and it declares its content size.
    @Test(arguments: [1, 4096, 131_072, 131_073, 300_000, 4 << 20])
    func storedFrameDecodesToItsInput(length: Int) throws {
        var rng = SeededRNG(seed: UInt64(length))
        let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var frame = [UInt8](repeating: 0, count: ZstdCompressor.bound(length))
        let n = data.withUnsafeBytes { src in frame.withUnsafeMutableBytes { ZstdCompressor.store(src, into: $0) } }
        frame.removeSubrange(n...)
        // Header (9 bytes) and a 3-byte head per block of at most 128 KiB.
        #expect(n == 9 + length + 3 * ((length + 131_071) / 131_072))
        #expect(frame.withUnsafeBytes { ZstdDecompressor.contentSize(of: $0) } == UInt64(length))
        var out = [UInt8](repeating: 0, count: length)
        let got = try frame.withUnsafeBytes { f in try out.withUnsafeMutableBytes { try ZstdDecompressor().decompress(f, into: $0) } }
        #expect(got == length && out == data)
        let dir = TempDir("stored")
        try Data(frame).write(to: URL(fileURLWithPath: dir.file("f.zst")))
        let r = try Tool.run("zstd", ["-q", "-d", "-f", dir.file("f.zst"), "-o", dir.file("f")])
        #expect(r.ok, "zstd -d: \(r)")
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.file("f")))) == data)
    }

    @Test func incompressibilityTestTellsRandomFromCompressible() throws {
        var rng = SeededRNG(seed: 8)
        let random = (0..<65_536).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let text = Array(String(repeating: "the quick brown fox jumps over the lazy dog 0123456789. ", count: 1200).utf8.prefix(65_536))
        var records = [UInt8](repeating: 0, count: 65_536)
        for i in stride(from: 0, to: 65_536, by: 16) { records[i] = UInt8(i >> 4 & 0xFF); records[i + 1] = UInt8(i >> 12 & 0xFF); records[i + 8] = 0xCA }
        // zstd's own output of text is random-looking: stored, not compressed again.
        let bigText = Array(String(repeating: "record \(UInt64.random(in: 0...UInt64.max, using: &rng)) ", count: 1).utf8)
        var varied: [UInt8] = []
        while varied.count < 600_000 { varied += Array("\(UInt32.random(in: 0...UInt32.max, using: &rng)) \(bigText.count) ".utf8) }
        var z = [UInt8](repeating: 0, count: ZstdCompressor.bound(varied.count))
        let zn = try varied.withUnsafeBytes { s in try z.withUnsafeMutableBytes { try ZstdCompressor(level: 19).compress(s, into: $0) } }
        #expect(zn >= 65_536)
        let compressed = Array(z[0..<65_536])
        func test(_ b: [UInt8]) -> Bool { b.withUnsafeBytes { ZstdCompressor.looksIncompressible($0) } }
        #expect(test(random))
        #expect(test(compressed))
        #expect(!test(text))
        #expect(!test(records))
        #expect(!test([UInt8](repeating: 0, count: 65_536)))
        #expect(!test(Array(random.prefix(4095))), "blocks under 4 KiB are never stored")
    }

    /// The sender stores random blocks (frame = raw size + headers) and compresses the others; the
    /// stream still gives the device's bytes.
    @Test func senderStoresRandomBlocksAndCompressesTheRest() throws {
        let s = Scenario(seed: 21, blocks: 120)
        let (bytes, summary) = try s.send(parallel: 2)
        let records = try decodeAll(bytes, pieces: [bytes.count])
        #expect(try applyToImage(records, size: Int(s.virtualBlocks) * s.blockSize, blockSize: s.blockSize) == s.model())
        let model = s.model()
        var stored = 0, compressed = 0
        for case let .data(first, count, frame) in records {
            let raw = Int(count) * s.blockSize
            let blocks = (0..<Int(count)).map { i in
                model[(Int(first) + i) * s.blockSize..<(Int(first) + i + 1) * s.blockSize].withUnsafeBytes { ZstdCompressor.looksIncompressible($0) }
            }
            // A record holds blocks of one kind only.
            #expect(Set(blocks).count == 1, "record at block \(first)")
            if blocks[0] {
                #expect(frame.count == 9 + raw + 3 * ((raw + 131_071) / 131_072))
                stored += 1
            } else {
                #expect(frame.count < raw / 4)
                compressed += 1
            }
        }
        #expect(stored > 0 && compressed > 0)
        var d = ContentDigest()
        model.withUnsafeBytes { d.add(blocks: $0, from: 0, blockSize: s.blockSize) }
        #expect(summary.targetDigest == d.value)
    }
}
