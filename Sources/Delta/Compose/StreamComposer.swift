/// Composes a chain of streams into one stream with the same result: the records of every input,
/// newest winning block by block, in one pass over all inputs at once (each input is read in
/// order, one record held at a time). A data record that reaches the output whole is copied as
/// its compressed frame; only a record that a newer one partly overrides is decompressed, sliced
/// and compressed again. Nothing is replayed: the cost follows the records, not the device.
///
/// Inputs, oldest first: a full stream then increments (the output is full), or increments
/// only, the first of which applies onto the output's base. Each input must apply onto the
/// target of the one before. Discards become nothing in a full output (an unnamed block of a full
/// stream is unmapped). The output's trailer carries the last input's target digest; for a full
/// output the composer recomputes it from the data it writes and refuses a mismatch.
public final class StreamComposer {
    /// The output's header: target, size and origin flag of the last input, base of the first; set by `compose`.
    public private(set) var header: StreamHeader!
    private let inputs: [RecordCursor]
    private let sink: ByteSink
    private let compressor: ZstdCompressor
    private let decompressor: ZstdDecompressor
    private var encoder: StreamEncoder!
    private var written: UInt64 = 0
    private var pending: (kind: RecordCursor.Kind, first: UInt64, count: UInt64)?
    private var digest = ContentDigest()
    private var blockSize = 0
    private let level: Int32
    private let streamID: Digest128
    /// Blocks whose data was copied as a whole frame / compressed again (for reports and benchmarks).
    public private(set) var copiedBlocks: UInt64 = 0
    public private(set) var recompressedBlocks: UInt64 = 0

    private let key: StreamKey?

    /// `inputs`: the chain's streams, oldest first. `streamID`: the new stream's id.
    /// `keyring` opens encrypted inputs; `key` encrypts the composed stream.
    public init(inputs: [ByteSource], sink: ByteSink, level: Int32, streamID: Digest128,
                keyring: StreamKeyring? = nil, key: StreamKey? = nil) throws {
        precondition(!inputs.isEmpty)
        self.inputs = inputs.map { RecordCursor($0, keyring: keyring) }
        self.key = key
        self.sink = sink
        self.level = level
        self.streamID = streamID
        compressor = try ZstdCompressor(level: level, workers: 0)
        decompressor = try ZstdDecompressor()
    }

    /// Writes the composed stream and finishes the sink.
    public func compose() throws -> SendSummary {
        header = try checkHeaders()
        blockSize = Int(header.blockSize)
        encoder = StreamEncoder(header: header, key: key)
        try emit(encoder.start())
        let limit = header.blockCount
        var p: UInt64 = 0
        while p < limit {
            for c in inputs { try c.skip(below: p) }
            guard let start = inputs.compactMap({ $0.current.map { max($0.begin, p) } }).min(), start < limit else { break }
            p = start
            let w = inputs.lastIndex { $0.current.map { $0.begin <= p } ?? false }!
            var q = min(inputs[w].current!.end, limit)
            for c in inputs[(w + 1)...] { if let s = c.current { q = min(q, s.begin) } }
            try segment(inputs[w], p, q)
            p = q
        }
        try flushPending()
        for c in inputs { try c.finish() }
        let last = inputs.last!.trailer!
        if !header.isIncremental, let want = last.targetDigest, want != digest.value {
            throw StreamError.trailerMismatch("composed content digest \(digest.value), the chain's last stream says \(want)")
        }
        try emit(encoder.finish(targetDigest: last.targetDigest))
        try sink.finish()
        return SendSummary(header: header, trailer: encoder.progress.trailer(targetDigest: last.targetDigest),
                           streamBytes: written, targetDigest: last.targetDigest)
    }

    /// Reads every input's header, checks that they form one chain, and makes the output's header.
    private func checkHeaders() throws -> StreamHeader {
        var prev: StreamHeader?
        var first: StreamHeader?
        var maxRaw: UInt32 = 0
        for (i, c) in inputs.enumerated() {
            let h = try c.readHeader()
            func bad(_ why: String) -> StreamError { .badRecord(sequence: 0, reason: "stream \(i + 1) of the chain \(why)") }
            guard h.resumeSequence == 0 else { throw bad("is a resumed stream") }
            if let prev {
                guard h.blockSize == prev.blockSize, h.sourcePool == prev.sourcePool else {
                    throw bad("has another block size or source pool")
                }
                guard h.base == prev.target else { throw bad("does not apply onto the stream before it") }
            }
            if first == nil { first = h }
            maxRaw = max(maxRaw, h.maxRecordRaw)
            prev = h
        }
        let last = prev!
        return StreamHeader(blockSize: last.blockSize, virtualSize: last.virtualSize, level: level, maxRecordRaw: maxRaw,
                            streamID: streamID, sourcePool: last.sourcePool, target: last.target, base: first!.base,
                            baseFingerprint: first!.baseFingerprint, readsOrigin: last.readsOrigin)
    }

    /// Blocks `p..<q` of `c`'s current record go to the output.
    private func segment(_ c: RecordCursor, _ p: UInt64, _ q: UInt64) throws {
        let s = c.current!
        switch s.kind {
        case .zero, .discard:
            if s.kind == .discard && !header.isIncremental { return }
            if let pe = pending, pe.kind == s.kind, pe.first + pe.count == p {
                pending!.count += q - p
            } else {
                try flushPending()
                pending = (s.kind, p, q - p)
            }
        case .data:
            try flushPending()
            if p == s.begin && q == s.end {
                try c.frame.withUnsafeBytes { f in
                    try emit(encoder.data(firstBlock: p, blockCount: UInt32(q - p), rawBytes: Int(q - p) * blockSize, frame: f))
                }
                if !header.isIncremental {
                    let raw = try c.decompressed(decompressor, blockSize: blockSize)
                    digest.add(blocks: UnsafeRawBufferPointer(raw), from: p, blockSize: blockSize)
                }
                copiedBlocks += q - p
            } else {
                let raw = try c.decompressed(decompressor, blockSize: blockSize)
                let maxBlocks = UInt64(header.maxRecordRaw) / UInt64(blockSize)
                var b = p
                while b < q {
                    let n = min(maxBlocks, q - b)
                    let from = Int(b - s.begin) * blockSize
                    let slice = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[from..<from + Int(n) * blockSize])
                    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: ZstdCompressor.bound(slice.count), alignment: 16)
                    defer { out.deallocate() }
                    let k = try compressor.compress(slice, into: out)
                    try emit(encoder.data(firstBlock: b, blockCount: UInt32(n), rawBytes: slice.count,
                                          frame: UnsafeRawBufferPointer(rebasing: out[0..<k])))
                    if !header.isIncremental { digest.add(blocks: slice, from: b, blockSize: blockSize) }
                    b += n
                }
                recompressedBlocks += q - p
            }
        }
    }

    private func flushPending() throws {
        guard let pe = pending else { return }
        pending = nil
        try emit(pe.kind == .zero ? encoder.zero(firstBlock: pe.first, blockCount: pe.count)
                                  : encoder.discard(firstBlock: pe.first, blockCount: pe.count))
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink.write($0) }
        written += UInt64(bytes.count)
    }
}
