import Delta
import TestSupport

/// A ByteSink that keeps everything in memory.
final class MemorySink: ByteSink {
    var bytes: [UInt8] = []
    var finished = false
    func write(_ b: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: b) }
    func finish() throws { finished = true }
}

/// A data device in memory, addressed by data block.
final class MemoryDataReader: DataBlockReader {
    let blockSize: Int
    var data: [UInt8]
    init(blockSize: Int, blocks: Int) {
        self.blockSize = blockSize
        data = [UInt8](repeating: 0, count: blockSize * blocks)
    }
    func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let off = Int(block) * blockSize
        let n = max(0, min(buffer.count, data.count - off))
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        if n > 0 { data.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[off..<off + n])) } }
    }
    func block(_ b: UInt64) -> ArraySlice<UInt8> { data[Int(b) * blockSize..<(Int(b) + 1) * blockSize] }
    /// Fills data block `b`: 0 zeros, 1 random, 2 compressible text-like.
    func fill(_ b: UInt64, kind: Int, rng: inout SeededRNG) {
        let off = Int(b) * blockSize
        data.withUnsafeMutableBytes { all in
            let buf = UnsafeMutableRawBufferPointer(rebasing: all[off..<off + blockSize])
            switch kind {
            case 0: buf.initializeMemory(as: UInt8.self, repeating: 0)
            case 1:
                for i in stride(from: 0, to: blockSize, by: 8) { buf.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) }
            default:
                let line = Array("block \(b) holds text that compresses well. ".utf8)
                for i in 0..<blockSize { buf[i] = line[i % line.count] }
            }
        }
    }
}

/// A small random full-send scenario: a device of `blocks` virtual blocks, about half mapped.
struct Scenario {
    let blockSize = 64 * 1024
    var reader: MemoryDataReader
    /// virtual → data block
    var mapping: [(UInt64, UInt64)] = []
    let virtualBlocks: UInt64

    init(seed: UInt64, blocks: Int = 48) {
        var rng = SeededRNG(seed: seed)
        virtualBlocks = UInt64(blocks)
        reader = MemoryDataReader(blockSize: 64 * 1024, blocks: blocks)
        var d: UInt64 = 0
        for v in 0..<UInt64(blocks) where Bool.random(using: &rng) {
            reader.fill(d, kind: Int.random(in: 0...2, using: &rng), rng: &rng)
            mapping.append((v, d))
            d += 1
        }
    }

    /// The target's bytes, as a model.
    func model() -> [UInt8] {
        var m = [UInt8](repeating: 0, count: Int(virtualBlocks) * blockSize)
        for (v, d) in mapping { m.replaceSubrange(Int(v) * blockSize..<(Int(v) + 1) * blockSize, with: reader.block(d)) }
        return m
    }

    /// Runs of contiguous mappings, as a full send sees them.
    func runs() -> [DeltaRun] {
        var out: [DeltaRun] = []
        for (v, d) in mapping {
            if var last = out.last, last.end == v, last.rightData! + last.length == d {
                last.length += 1
                out[out.count - 1] = last
            } else {
                out.append(DeltaRun(kind: .rightOnly, begin: v, length: 1, leftData: nil, rightData: d))
            }
        }
        return out
    }

    func header(level: Int32 = 3) -> StreamHeader {
        StreamHeader(blockSize: UInt32(blockSize), virtualSize: virtualBlocks * UInt64(blockSize), level: level,
                     streamID: Digest128(high: 0x1234, low: 0x5678), sourcePool: Digest128(high: 1, low: 2),
                     target: SnapshotIdentity(device: 7, creationTime: 3, snapshottedTime: 3, transactionID: 9))
    }

    /// `parallel` > 0: that many single-threaded compressors working on records side by side.
    func send(level: Int32 = 3, parallel: Int = 0, key: StreamKey? = nil, header given: StreamHeader? = nil,
              resumeAt: StreamProgress? = nil) throws -> (bytes: [UInt8], summary: SendSummary) {
        let sink = MemorySink()
        let compressors = parallel > 0 ? try (0..<parallel).map { _ in try ZstdCompressor(level: level) }
            : [try ZstdCompressor(level: level, workers: 2)]
        let sender = StreamSender(header: given ?? header(level: level), reader: reader,
                                  compressors: compressors, sink: sink, baseDigest: .zero, resumeAt: resumeAt, key: key)
        let runs = self.runs()
        let s = try sender.send { body in for r in runs { try body(r) } }
        return (sink.bytes, s)
    }
}

/// Decodes `bytes` fed in pieces of the given sizes (cycled); returns the records.
func decodeAll(_ bytes: [UInt8], pieces: [Int], keyring: StreamKeyring? = nil, framingOnly: Bool = false) throws -> [StreamRecord] {
    var d = StreamDecoder(keyring: keyring, framingOnly: framingOnly)
    var out: [StreamRecord] = []
    var i = 0, k = 0
    while i < bytes.count {
        let n = min(pieces[k % pieces.count], bytes.count - i)
        k += 1
        bytes[i..<i + n].withUnsafeBytes { d.feed($0) }
        i += n
        while let r = try d.next() { out.append(r) }
    }
    try d.finish()
    return out
}

/// Applies decoded records to a zeroed image (a model of merge) and returns it.
func applyToImage(_ records: [StreamRecord], size: Int, blockSize: Int) throws -> [UInt8] {
    var img = [UInt8](repeating: 0, count: size)
    let z = try ZstdDecompressor()
    for r in records {
        switch r {
        case let .data(first, count, frame):
            var buf = [UInt8](repeating: 0, count: Int(count) * blockSize)
            let n = try frame.withUnsafeBytes { f in try buf.withUnsafeMutableBytes { try z.decompress(f, into: $0) } }
            precondition(n == buf.count)
            img.replaceSubrange(Int(first) * blockSize..<Int(first) * blockSize + buf.count, with: buf)
        case let .zero(first, count), let .discard(first, count):
            let a = Int(first) * blockSize
            img.replaceSubrange(a..<a + Int(count) * blockSize, with: repeatElement(0, count: Int(count) * blockSize))
        default: break
        }
    }
    return img
}
