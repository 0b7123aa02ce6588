import Delta
import Foundation
import PoolCore
import Testing
import TestSupport

/// Holes of a sparse data file are zero blocks that are never read (issue #15: an incremental send
/// of 100 changed blocks read its whole base, 625 MiB of holes, to compute the base's digest).
@Suite struct SparseReadTests {
    static let bs = 64 * 1024

    /// Counts the blocks read through `inner`; `holes` (when given) are reported as holes.
    final class CountingReader: DataBlockReader {
        let inner: any DataBlockReader
        let holes: Set<UInt64>?
        private(set) var reads: [UInt64: Int] = [:]
        var blockSize: Int { inner.blockSize }

        init(_ inner: any DataBlockReader, holes: Set<UInt64>? = nil) {
            self.inner = inner
            self.holes = holes
        }

        func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
            for b in 0..<UInt64(buffer.count / blockSize) { reads[block + b, default: 0] += 1 }
            try inner.read(dataBlock: block, into: buffer)
        }

        func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int) {
            guard let holes else { return inner.extent(dataBlock: block, count: count) }
            let z = holes.contains(block)
            var n = 1
            while n < count && holes.contains(block + UInt64(n)) == z { n += 1 }
            return (z, n)
        }
    }

    /// An incremental send whose runs cross holes on both sides (right-only, different, left-only,
    /// a run longer than a record) gives the same bytes and digest as a send that reads every block,
    /// and reads exactly the blocks that are not holes.
    @Test func holesAreNotReadAndTheStreamIsTheSame() throws {
        let blocks = 256
        let memory = MemoryDataReader(blockSize: Self.bs, blocks: blocks)
        // Holes (zeros): 2-4, 10-11, 20-27, 40-41, and from 64 on three blocks in every seven.
        var holes: Set<UInt64> = [2, 3, 4, 10, 11, 40, 41]
        for b in 20...27 { holes.insert(UInt64(b)) }
        for b in 64..<UInt64(blocks) where b % 7 < 3 { holes.insert(b) }
        var rng = SeededRNG(seed: 15)
        // Block 30 holds zeros but is no hole (it is read); the rest random or text.
        for b in 0..<UInt64(blocks) where !holes.contains(b) && b != 30 { memory.fill(b, kind: 1 + Int(b % 2), rng: &rng) }
        let runs = [
            DeltaRun(kind: .rightOnly, begin: 0, length: 6, leftData: nil, rightData: 0),
            DeltaRun(kind: .different, begin: 8, length: 2, leftData: 10, rightData: 12),
            DeltaRun(kind: .different, begin: 12, length: 3, leftData: 14, rightData: 20),
            DeltaRun(kind: .leftOnly, begin: 20, length: 4, leftData: 23, rightData: nil),
            DeltaRun(kind: .leftOnly, begin: 30, length: 2, leftData: 28, rightData: nil),
            DeltaRun(kind: .rightOnly, begin: 40, length: 5, leftData: nil, rightData: 39),
            DeltaRun(kind: .rightOnly, begin: 50, length: 1, leftData: nil, rightData: 30),
            DeltaRun(kind: .rightOnly, begin: 51, length: 1, leftData: nil, rightData: 27),
            DeltaRun(kind: .rightOnly, begin: 100, length: 150, leftData: nil, rightData: 64),
        ]
        let header = StreamHeader(blockSize: UInt32(Self.bs), virtualSize: 300 * UInt64(Self.bs), level: 3,
                                  streamID: Digest128(high: 0x15, low: 0x15), sourcePool: Digest128(high: 1, low: 2),
                                  target: SnapshotIdentity(device: 2, creationTime: 1, snapshottedTime: 1, transactionID: 1),
                                  base: SnapshotIdentity(device: 1, creationTime: 0, snapshottedTime: 1, transactionID: 1),
                                  baseFingerprint: Digest128(high: 77, low: 88))
        func send(_ reader: CountingReader) throws -> ([UInt8], SendSummary) {
            let sink = MemorySink()
            let sender = StreamSender(header: header, reader: reader, compressors: [try ZstdCompressor(level: 3, workers: 0)],
                                      sink: sink, baseDigest: Digest128(high: 77, low: 88))
            let s = try sender.send { body in for r in runs { try body(r) } }
            return (sink.bytes, s)
        }
        let plain = CountingReader(memory, holes: [])
        let sparse = CountingReader(memory, holes: holes)
        let (a, sa) = try send(plain)
        let (b, sb) = try send(sparse)
        #expect(a == b, "the stream's bytes")
        #expect(sa.targetDigest == sb.targetDigest && sa.targetDigest != nil)
        #expect(sa.trailer == sb.trailer)
        // Every block of the runs but the holes is read, once; the holes never.
        var touched: Set<UInt64> = []
        for r in runs {
            for side in [r.kind == .leftOnly || r.kind == .different ? r.leftData : nil, r.rightData] {
                if let d = side { for i in 0..<r.length { touched.insert(d + i) } }
            }
        }
        #expect(Set(plain.reads.keys) == touched)
        #expect(!touched.isDisjoint(with: holes), "the runs cross holes")
        #expect(Set(sparse.reads.keys) == touched.subtracting(holes))
        #expect(sparse.reads.values.allSatisfy { $0 == 1 })
    }

    /// FileDataBlockReader's extents on a sparse file: whole-block holes are zeros; a block with any
    /// data byte (a small hole inside or around it) is data; past the end of the file is a hole.
    @Test func fileExtentsFollowTheHoles() throws {
        let dir = TempDir("sparse")
        let path = dir.sparseFile("data", size: 40 * UInt64(Self.bs))
        let h = try #require(FileHandle(forWritingAtPath: path))
        func put(_ offset: Int, _ count: Int) throws {
            try h.seek(toOffset: UInt64(offset))
            h.write(Data(repeating: 0xA5, count: count))
        }
        let bs = Self.bs
        try put(3 * bs, bs)                       // block 3
        try put(10 * bs + 8192, 4096)             // a piece of block 10
        try put(20 * bs, bs + 8192)               // blocks 20-22, with an 8 KiB hole inside 21
        try put(21 * bs + 16384, 2 * bs - 16384)
        try put(30 * bs, 4096)                    // block 30: data at both ends, a hole between
        try put(31 * bs - 4096, 4096)
        try h.close()
        let reader = FileDataBlockReader(file: try RandomAccessFile(path: path, writable: false), blockSize: bs)
        var got: [[Int]] = []
        reader.forEachExtent(dataBlock: 0, count: 48) { o, n, zeros in got.append([o, n, zeros ? 0 : 1]) }
        #expect(got == [[0, 3, 0], [3, 1, 1], [4, 6, 0], [10, 1, 1], [11, 9, 0], [20, 3, 1], [23, 7, 0], [30, 1, 1], [31, 17, 0]])
        // Asked from inside a run, and cut at `count`.
        let inRun = reader.extent(dataBlock: 21, count: 1), cut = reader.extent(dataBlock: 5, count: 2)
        let past = reader.extent(dataBlock: 40, count: 1000)
        #expect(!inRun.zeros && inRun.blocks == 1)
        #expect(cut.zeros && cut.blocks == 2)
        #expect(past.zeros && past.blocks == 1000)
    }

    /// The reader keeps the file system's last answer: queries in any order, from one reader, equal
    /// the answers of a fresh reader each time; a dense run read chunk by chunk is asked about once
    /// (SEEK_HOLE on tmpfs walks the page cache up to the hole: per chunk, quadratic in the file).
    @Test func extentsFromOneReaderEqualFreshAnswersAndADenseRunIsAskedOnce() throws {
        let dir = TempDir("sparse-cache")
        let bs = Self.bs
        let path = dir.sparseFile("data", size: 300 * UInt64(bs))
        let h = try #require(FileHandle(forWritingAtPath: path))
        func put(_ offset: Int, _ count: Int) throws {
            try h.seek(toOffset: UInt64(offset))
            h.write(Data(repeating: 0x5A, count: count))
        }
        try put(0, 200 * bs)              // blocks 0-199 dense
        try put(210 * bs + 4096, 8192)    // a piece of block 210
        try put(220 * bs, 5 * bs)         // 220-224
        try h.close()
        let file = try RandomAccessFile(path: path, writable: false)
        let kept = FileDataBlockReader(file: file, blockSize: bs)
        var chunks = 0
        var b: UInt64 = 0
        while b + 16 <= 200 {
            let e = kept.extent(dataBlock: b, count: 16)
            #expect(!e.zeros && e.blocks == 16, "chunk at \(b)")
            b += 16 - 8  // overlapping chunks too
            chunks += 1
        }
        #expect(chunks > 20 && kept.fileQueries == 1, "\(kept.fileQueries) queries for one dense run")
        var rng = SeededRNG(seed: 1515)
        for _ in 0..<400 {
            let start = UInt64.random(in: 0..<310, using: &rng), count = Int.random(in: 1...40, using: &rng)
            let fresh = FileDataBlockReader(file: file, blockSize: bs).extent(dataBlock: start, count: count)
            let got = kept.extent(dataBlock: start, count: count)
            #expect(got.zeros == fresh.zeros && got.blocks == fresh.blocks, "extent(\(start), \(count))")
        }
        // Asked near the end of the dense run: cut at the run's last block, never past it.
        let edge = FileDataBlockReader(file: file, blockSize: bs)
        _ = edge.extent(dataBlock: 0, count: 1)
        let tail = edge.extent(dataBlock: 190, count: 40)
        #expect(!tail.zeros && tail.blocks == 10)
        #expect(edge.extent(dataBlock: 200, count: 5) == (true, 5))
    }

    /// A data file without holes (allocation covering its size) is never asked about: every extent
    /// up to its size is data at once (issue #15: one SEEK_HOLE from an incremental's first changed
    /// run walked the rest of a dense 550 MB file on tmpfs, 6 % of the send's CPU). Past its size,
    /// and for the same file with one hole punched, the file system is asked as before.
    @Test func aFileWithoutHolesIsNeverAsked() throws {
        let dir = TempDir("dense")
        let bs = Self.bs
        let path = dir.file("data")
        var rng = SeededRNG(seed: 1516)
        try Data((0..<(64 * bs + 4096)).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: URL(fileURLWithPath: path))
        let file = try RandomAccessFile(path: path, writable: true)
        #expect(file.allocatedSize == UInt64(64 * bs + 4096))
        let reader = FileDataBlockReader(file: file, blockSize: bs)
        for (start, count) in [(60, 5), (0, 64), (3, 1), (64, 1), (30, 40)] as [(UInt64, Int)] {
            let e = reader.extent(dataBlock: start, count: count)
            #expect(!e.zeros && e.blocks == min(count, 65 - Int(start)), "extent(\(start), \(count))")
        }
        #expect(reader.fileQueries == 0)
        // Past the end (block 65 on) it asks, and finds the hole that reads as zeros.
        #expect(reader.extent(dataBlock: 70, count: 3) == (true, 3))
        #expect(reader.fileQueries == 1)
        // One block punched out: the file is sparse, asked, and the hole found.
        try file.discard(offset: 10 * UInt64(bs), length: UInt64(bs))
        #expect(file.allocatedSize == nil)
        let sparse = FileDataBlockReader(file: file, blockSize: bs)
        #expect(sparse.extent(dataBlock: 8, count: 4) == (false, 2))
        #expect(sparse.extent(dataBlock: 10, count: 4) == (true, 1))
        #expect(sparse.fileQueries > 0)
    }

    /// A data block whose byte offset does not fit in 64 bits (or in a file offset) is an error, not a trap.
    @Test func aBlockBeyondAnyOffsetIsAnError() throws {
        let dir = TempDir("sparse-overflow")
        let path = dir.sparseFile("data", size: UInt64(Self.bs))
        let reader = FileDataBlockReader(file: try RandomAccessFile(path: path, writable: false), blockSize: Self.bs)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bs, alignment: 64)
        defer { buffer.deallocate() }
        for block in [UInt64.max / 2, UInt64(Int64.max) / UInt64(Self.bs) + 1] {
            #expect(throws: MetadataError.self) { try reader.read(dataBlock: block, into: buffer) }
            #expect(!reader.extent(dataBlock: block, count: 1).zeros)
        }
    }

    /// The case of the issue on a real pool image: a base whose mapped blocks are holes of the data
    /// file (thin_restore metadata, a sparse data file). Its digest reads only the blocks written, and
    /// equals the digest of a reader that reads every block; the incremental send reads those, the
    /// changed block and its old version, and nothing else.
    @Test func incrementalSendReadsTheDataNotTheHoles() throws {
        try Tool.requireThinTools()
        let dir = TempDir("sparse-send")
        defer { withExtendedLifetime(dir) {} }
        let xml = """
            <superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="1024">
              <device dev_id="1" mapped_blocks="100" transaction="0" creation_time="0" snap_time="1">
                <range_mapping origin_begin="0" data_begin="0" length="100" time="0"/>
              </device>
              <device dev_id="2" mapped_blocks="100" transaction="0" creation_time="1" snap_time="1">
                <range_mapping origin_begin="0" data_begin="0" length="50" time="0"/>
                <single_mapping origin_block="50" data_block="500" time="1"/>
                <range_mapping origin_begin="51" data_begin="51" length="49" time="0"/>
              </device>
            </superblock>

            """
        try xml.write(toFile: dir.file("pool.xml"), atomically: false, encoding: .utf8)
        let meta = dir.sparseFile("meta", size: 4 << 20)
        let r = try Tool.run("thin_restore", ["-i", dir.file("pool.xml"), "-o", meta])
        try #require(r.ok, "\(r.stderr)")
        let dataPath = dir.sparseFile("data", size: 512 * UInt64(Self.bs))
        var rng = SeededRNG(seed: 16)
        let written: [UInt64] = [5, 50, 51, 52, 500]
        let h = try #require(FileHandle(forWritingAtPath: dataPath))
        for b in written {
            try h.seek(toOffset: b * UInt64(Self.bs))
            h.write(Data((0..<Self.bs).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        }
        try h.close()
        let file = FileDataBlockReader(file: try RandomAccessFile(path: dataPath, writable: false), blockSize: Self.bs)
        let whole = MemoryDataReader(blockSize: Self.bs, blocks: 512)
        whole.data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dataPath)))
        let view = try MetadataReader(path: meta).live

        let counted = CountingReader(file)
        let d = try deviceDigest(view, 1, reader: counted)
        #expect(d == (try deviceDigest(view, 1, reader: whole)) && d != .zero)
        #expect(Set(counted.reads.keys) == [5, 50, 51, 52])

        var o = DeviceSendOptions(virtualSize: 100 * UInt64(Self.bs), streamID: Digest128(high: 3, low: 4),
                                  sourcePool: Digest128(high: 5, low: 6))
        o.baseDigest = d
        let sending = CountingReader(file)
        let summary = try sendDevice(view: view, target: 2, base: 1, reader: sending, sink: MemorySink(), options: o)
        #expect(Set(sending.reads.keys) == [50, 500])
        #expect(summary.targetDigest == (try deviceDigest(view, 2, reader: whole)))
    }
}
