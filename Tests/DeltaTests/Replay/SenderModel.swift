import Delta
import TestSupport

/// A sending pool as a model: data blocks in memory, devices as maps virtual → data block.
final class SenderModel {
    let blockSize: Int
    let reader: MemoryDataReader
    var nextData: UInt64 = 0
    var devices: [UInt64: [UInt64: UInt64]] = [:]
    var identities: [UInt64: SnapshotIdentity] = [:]
    var sizes: [UInt64: UInt64] = [:]
    var time: UInt32 = 0
    var rng: SeededRNG
    let pool = Digest128(high: 0xAAAA, low: 0xBBBB)

    init(blockSize: Int = 64 * 1024, dataBlocks: Int = 4096, seed: UInt64) {
        self.blockSize = blockSize
        reader = MemoryDataReader(blockSize: blockSize, blocks: dataBlocks)
        rng = SeededRNG(seed: seed)
    }

    func create(_ dev: UInt64, blocks: UInt64) {
        devices[dev] = [:]
        sizes[dev] = blocks * UInt64(blockSize)
        time += 1
        identities[dev] = SnapshotIdentity(device: dev, creationTime: time, snapshottedTime: time, transactionID: UInt64(time))
    }

    func snapshot(_ dev: UInt64, of origin: UInt64) {
        devices[dev] = devices[origin]
        sizes[dev] = sizes[origin]
        time += 1
        identities[dev] = SnapshotIdentity(device: dev, creationTime: time, snapshottedTime: time, transactionID: UInt64(time))
    }

    /// Writes block v of dev with fresh content (kind 0 zeros, 1 random, 2 text), copy-on-write.
    func write(_ dev: UInt64, _ v: UInt64, kind: Int) {
        let d = nextData
        nextData += 1
        reader.fill(d, kind: kind, rng: &rng)
        devices[dev]![v] = d
    }

    func discard(_ dev: UInt64, _ v: UInt64) { devices[dev]![v] = nil }

    /// Random changes: clustered rewrites, some zero blocks, some discards.
    func mutate(_ dev: UInt64, changes: Int) {
        let n = sizes[dev]! / UInt64(blockSize)
        var left = changes
        while left > 0 {
            let start = UInt64.random(in: 0..<n, using: &rng)
            let len = min(UInt64.random(in: 1...6, using: &rng), n - start)
            let op = Int.random(in: 0..<10, using: &rng)
            for v in start..<start + len {
                if op < 2 { discard(dev, v) } else { write(dev, v, kind: op < 4 ? 0 : (op < 7 ? 1 : 2)) }
            }
            left -= Int(len)
        }
    }

    func image(_ dev: UInt64) -> [UInt8] {
        var m = [UInt8](repeating: 0, count: Int(sizes[dev]!))
        for (v, d) in devices[dev]! { m.replaceSubrange(Int(v) * blockSize..<(Int(v) + 1) * blockSize, with: reader.block(d)) }
        return m
    }

    func digest(_ dev: UInt64) -> Digest128 {
        var d = ContentDigest()
        image(dev).withUnsafeBytes { d.add(blocks: $0, from: 0, blockSize: blockSize) }
        return d.value
    }

    /// A brute-force diff of two mapping lists, as runs (contiguous in virtual and in both data addresses).
    func runs(from base: UInt64?, to target: UInt64) -> [DeltaRun] {
        let l = base.map { devices[$0]! } ?? [:]
        let r = devices[target]!
        var out: [DeltaRun] = []
        for v in Set(l.keys).union(r.keys).sorted() {
            let a = l[v], b = r[v]
            let kind: DeltaKind
            switch (a, b) {
            case let (x?, y?): kind = x == y ? .same : .different
            case (_?, nil): kind = .leftOnly
            default: kind = .rightOnly
            }
            if kind == .same { continue }
            if var last = out.last, last.kind == kind, last.end == v,
               last.leftData.map({ $0 + last.length }) == a, last.rightData.map({ $0 + last.length }) == b {
                last.length += 1
                out[out.count - 1] = last
            } else {
                out.append(DeltaRun(kind: kind, begin: v, length: 1, leftData: a, rightData: b))
            }
        }
        return out
    }

    func send(_ target: UInt64, from base: UInt64?, streamID: UInt64, resumeAt: StreamProgress? = nil,
              baseFingerprint: Digest128? = nil, key: StreamKey? = nil) throws -> [UInt8] {
        let header = StreamHeader(blockSize: UInt32(blockSize), virtualSize: sizes[target]!,
                                  streamID: Digest128(high: streamID, low: ~streamID), sourcePool: pool,
                                  target: identities[target]!, base: base.map { identities[$0]! },
                                  baseFingerprint: baseFingerprint ?? base.map { digest($0) } ?? .zero)
        let sink = MemorySink()
        let sender = StreamSender(header: header, reader: reader, compressor: try ZstdCompressor(level: 1, workers: 0),
                                  sink: sink, baseDigest: base.map { digest($0) } ?? .zero, resumeAt: resumeAt, key: key)
        let runs = self.runs(from: base, to: target)
        _ = try sender.send { body in for r in runs { try body(r) } }
        return sink.bytes
    }
}
