import PoolCore
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// What a send produced.
public struct SendSummary: Sendable {
    public var header: StreamHeader
    public var trailer: StreamTrailer
    /// Bytes written to the sink.
    public var streamBytes: UInt64
    /// Content digest of the target, when known (always for a full send).
    public var targetDigest: Digest128?
}

/// Reads the changed blocks a diff names, finds all-zero blocks, compresses the
/// rest into independent zstd frames (stored as they are, without trying, where a block
/// looks incompressible) and writes the records to a sink.
///
/// Records are compressed a batch at a time, one frame per compressor, in parallel
/// (frames are independent), and written in order. A record is compressed where it was read:
/// each chunk is read into one of (compressors + 1) read buffers, which stays untouched until
/// the records cut from it are written (no copy into a compressor's slot). Memory: per
/// compressor one read buffer (4 MiB) and one frame, plus two read buffers — whatever the
/// device size.
public final class StreamSender {
    public let header: StreamHeader
    private let reader: DataBlockReader
    private let compressors: [ZstdCompressor]
    private let sink: ByteSink
    /// Each slot's frame output (one record in flight per slot).
    private var slots: [UnsafeMutableRawBufferPointer] = []
    /// Read buffers, one more than the slots: records in flight (at most one per slot) hold at most
    /// `slots.count` of them, so one is always free to read the next chunk into.
    private var buffers: [UnsafeMutableRawBufferPointer] = []
    /// Records in flight that were cut from each read buffer.
    private var holds: [Int] = []
    /// Mapped chunks of the data file (ids from `buffers.count` on) and their records in flight.
    private var mappings: [Int: (mapping: FileMapping, holds: Int)] = [:]
    private var nextMapping = 0
    /// What the records being cut hold: a read buffer's index, or a mapping's id (-1: none).
    private var holder = 0
    /// The read buffer the current chunk goes into.
    private var current = 0
    private var queue: [Pending] = []
    /// Next slot to fill (slots are used round-robin, so the oldest job holds the next one).
    private var nextSlot = 0
    /// Data records queued and not yet written (each holds a slot).
    private var inFlight = 0
    private var jobs: [CompressionJob] = []
    private let workQueue = DispatchQueue(label: "thin-backup.compress", attributes: .concurrent)
    /// No record may be queued below this block (resume check).
    private var queuedEnd: UInt64 = 0

    private enum Pending {
        case data(first: UInt64, blocks: Int, slot: Int, bytes: Int, buffer: Int)
        case zero(first: UInt64, count: UInt64)
        case discard(first: UInt64, count: UInt64)
    }
    private var encoder: StreamEncoder
    private let blockSize: Int
    private let maxBlocks: Int
    private var old: UnsafeMutableRawBufferPointer
    /// What each block of the chunk being split is (one entry per block of a record).
    private var kinds: [BlockKind]
    private var digest: ContentDigest?
    /// Old blocks' contributions summed on the workers (mapped old blocks), taken out before the trailer.
    private let oldSums = MappedSums()
    private var pendingZero: (first: UInt64, count: UInt64)?
    private var pendingDiscard: (first: UInt64, count: UInt64)?
    private var written: UInt64 = 0
    /// When resuming: records below this sequence are counted, not sent.
    private var skipBelow: UInt64 = 0
    private var skippedSequence: UInt64 = 1
    /// Called after each record written with (raw bytes covered so far, stream bytes written so far).
    public var onProgress: ((UInt64, UInt64) -> Void)?
    private var coveredBytes: UInt64 = 0

    /// - Parameters:
    ///   - baseDigest: for an incremental, the base's content digest; when given, the target's digest is
    ///     computed (reading the base's old blocks where they change) and put in the trailer. For a full send
    ///     pass `.zero` (an empty device).
    ///   - resumeAt: a receiver's resume token: send only the records from there on.
    ///   - compressors: one per record compressed at the same time (give as many as cores to use).
    ///   - key: encrypt the stream (format version 2) with this key.
    public init(header: StreamHeader, reader: DataBlockReader, compressors: [ZstdCompressor], sink: ByteSink,
                baseDigest: Digest128?, resumeAt: StreamProgress? = nil, key: StreamKey? = nil) {
        precondition(reader.blockSize == Int(header.blockSize) && !compressors.isEmpty)
        self.header = header
        self.reader = reader
        self.compressors = compressors
        self.sink = sink
        blockSize = reader.blockSize
        maxBlocks = Int(header.maxRecordRaw) / blockSize
        let bytes = maxBlocks * blockSize
        old = PageBuffer.allocate(bytes)
        kinds = Array(repeating: .zero, count: maxBlocks)
        for c in compressors {
            slots.append(PageBuffer.allocate(ZstdCompressor.bound(bytes)))
            jobs.append(CompressionJob(compressor: c))
        }
        for _ in 0...compressors.count { buffers.append(PageBuffer.allocate(bytes)) }
        holds = Array(repeating: 0, count: buffers.count)
        digest = baseDigest.map { ContentDigest($0) }
        if let r = resumeAt {
            encoder = StreamEncoder(header: header, resumingAt: r, key: key)
            skipBelow = r.nextSequence
            queuedEnd = r.nextBlock
        } else {
            encoder = StreamEncoder(header: header, key: key)
        }
        skippedSequence = encoder.firstRecordSequence
    }

    /// One compressor (libzstd may still use its own worker threads inside a frame).
    public convenience init(header: StreamHeader, reader: DataBlockReader, compressor: ZstdCompressor, sink: ByteSink,
                            baseDigest: Digest128?, resumeAt: StreamProgress? = nil, key: StreamKey? = nil) {
        self.init(header: header, reader: reader, compressors: [compressor], sink: sink, baseDigest: baseDigest,
                  resumeAt: resumeAt, key: key)
    }

    deinit {
        // Jobs still running (after an error) use the slots: wait for them first.
        for case let .data(_, _, slot, _, _) in queue { _ = try? jobs[slot].wait() }
        PageBuffer.release(old)
        for s in slots { PageBuffer.release(s) }
        for b in buffers { PageBuffer.release(b) }
    }

    /// Sends the runs `produce` hands over (ascending by virtual block), then the trailer.
    ///
    /// `.different` and `.rightOnly` runs are read from `rightData`; `.leftOnly` runs become discards;
    /// `.same` runs are skipped.
    public func send(_ produce: ((DeltaRun) throws -> Void) throws -> Void) throws -> SendSummary {
        try emit(encoder.start())
        try produce { run in try self.add(run) }
        try flushPending()
        try drain(all: true)
        guard skippedSequence >= skipBelow else {
            throw StreamError.badRecord(sequence: skippedSequence, reason: "the resume token points past the end of this stream")
        }
        digest?.remove(oldSums.total())
        let trailerBytes = encoder.finish(targetDigest: digest?.value)
        try emit(trailerBytes)
        try sink.finish()
        return SendSummary(header: encoder.header, trailer: encoder.progress.trailer(targetDigest: digest?.value),
                           streamBytes: written, targetDigest: digest?.value)
    }

    private func add(_ run: DeltaRun) throws {
        switch run.kind {
        case .same:
            return
        case .leftOnly:
            if let left = run.leftData { try removeOld(left, run) }
            try flushZero()
            if let p = pendingDiscard, p.first + p.count == run.begin {
                pendingDiscard = (p.first, p.count + run.length)
            } else {
                try flushDiscard()
                pendingDiscard = (run.begin, run.length)
            }
            coveredBytes += run.length * UInt64(blockSize)
        case .different, .rightOnly:
            guard let right = run.rightData else { return }
            try flushDiscard()
            try forEachChunk(run) { v, n, i in
                // A hole of the data file is zero blocks: no read, nothing added to the digest.
                try reader.forEachExtent(dataBlock: right + i, count: n) { o, k, zeros in
                    let first = v + UInt64(o)
                    if zeros {
                        try zeroBlocks(from: first, count: UInt64(k))
                    } else if let m = reader.mapped(dataBlock: right + i + UInt64(o), count: k) {
                        // Compressed and hashed where the page cache holds it; unmapped once its
                        // records are written.
                        let id = buffers.count + nextMapping
                        nextMapping += 1
                        mappings[id] = (m, 0)
                        holder = id
                        try chunk(m.bytes, from: first)
                        holder = -1
                        if mappings[id]?.holds == 0 { mappings[id] = nil }
                    } else {
                        try takeFreeBuffer()
                        holder = current
                        let buf = UnsafeMutableRawBufferPointer(rebasing: buffers[current][0..<k * blockSize])
                        try reader.read(dataBlock: right + i + UInt64(o), into: buf)
                        // Each record's job compresses its blocks and sums their digest contributions
                        // (the buffer is not read into again before its records are written).
                        try chunk(UnsafeRawBufferPointer(buf), from: first)
                    }
                    coveredBytes += UInt64(k * blockSize)
                }
            }
            // The old contents leave the digest after the new ones are on their way to the
            // compressors (the digest is a sum: the order does not matter).
            if run.kind == .different, let left = run.leftData { try removeOld(left, run) }
        }
    }

    /// Takes the old contents of `run`'s blocks (at data block `left` on) out of the digest, when one
    /// is kept; holes held zeros, which the digest never counted.
    private func removeOld(_ left: UInt64, _ run: DeltaRun) throws {
        guard digest != nil else { return }
        try forEachChunk(run) { v, n, i in
            try reader.forEachExtent(dataBlock: left + i, count: n) { o, k, zeros in
                guard !zeros else { return }
                if let m = reader.mapped(dataBlock: left + i + UInt64(o), count: k) {
                    // Hashed on a worker, the mapping kept until then.
                    oldSums.add(m, from: v + UInt64(o), blockSize: blockSize, on: workQueue)
                    return
                }
                let buf = UnsafeMutableRawBufferPointer(rebasing: old[0..<k * blockSize])
                try reader.read(dataBlock: left + i + UInt64(o), into: buf)
                digest?.remove(blocks: UnsafeRawBufferPointer(buf), from: v + UInt64(o), blockSize: blockSize)
            }
        }
    }

    /// Calls `body(virtualBlock, blocks, offsetInRun)` for pieces of at most one record's size.
    private func forEachChunk(_ run: DeltaRun, _ body: (UInt64, Int, UInt64) throws -> Void) throws {
        var i: UInt64 = 0
        while i < run.length {
            let n = Int(min(UInt64(maxBlocks), run.length - i))
            try body(run.begin + i, n, i)
            i += UInt64(n)
        }
    }

    /// Splits a chunk of consecutive blocks into zero runs and data records: a record per run of
    /// blocks that zstd compresses, and one per run of blocks that look incompressible (stored).
    private func chunk(_ buf: UnsafeRawBufferPointer, from first: UInt64) throws {
        let n = buf.count / blockSize
        for b in 0..<n { kinds[b] = kind(UnsafeRawBufferPointer(rebasing: buf[b * blockSize..<(b + 1) * blockSize])) }
        var i = 0
        while i < n {
            if kinds[i] == .zero {
                try zeroBlocks(from: first + UInt64(i), count: 1)
                i += 1
                continue
            }
            var j = i + 1
            while j < n && kinds[j] == kinds[i] { j += 1 }
            try flushZero()
            try dataRecord(UnsafeRawBufferPointer(rebasing: buf[i * blockSize..<j * blockSize]), from: first + UInt64(i), blocks: j - i,
                           store: kinds[i] == .stored)
            i = j
        }
    }

    /// Adds `count` zero blocks from `first` on to the pending zero run (one record for a contiguous run).
    private func zeroBlocks(from first: UInt64, count: UInt64) throws {
        if let p = pendingZero, p.first + p.count == first {
            pendingZero = (p.first, p.count + count)
        } else {
            try flushZero()
            pendingZero = (first, count)
        }
    }

    private enum BlockKind { case zero, stored, compressed }

    private func kind(_ block: UnsafeRawBufferPointer) -> BlockKind {
        if isAllZero(block) { return .zero }
        return ZstdCompressor.looksIncompressible(block) ? .stored : .compressed
    }

    /// Makes `current` a read buffer no record in flight was cut from: the current one when free
    /// (its pages already touched), else another free one, else the records are written until one is.
    private func takeFreeBuffer() throws {
        while holds[current] > 0 {
            if let free = holds.firstIndex(of: 0) {
                current = free
                return
            }
            try drain(all: false)
        }
    }

    /// Queues a data record: `bytes`, part of the current read buffer, are compressed where they
    /// are; the buffer is not read into again before the record is written.
    private func dataRecord(_ bytes: UnsafeRawBufferPointer, from first: UInt64, blocks: Int, store: Bool) throws {
        if try skip(first) {
            // Not sent (resume), but still part of the target's content.
            digest?.add(blocks: bytes, from: first, blockSize: blockSize)
            return
        }
        if inFlight == slots.count { try drain(all: false) }
        let slot = nextSlot
        nextSlot = (nextSlot + 1) % slots.count
        queue.append(.data(first: first, blocks: blocks, slot: slot, bytes: bytes.count, buffer: holder))
        // `holder` is set by `add` around every `chunk`: a read buffer or a mapping, never -1 here.
        if holder < holds.count { holds[holder] += 1 } else { mappings[holder]?.holds += 1 }
        queuedEnd = first + UInt64(blocks)
        inFlight += 1
        let job = jobs[slot]
        job.start(bytes, into: slots[slot], store: store, digestFrom: digest == nil ? nil : first, blockSize: blockSize)
        workQueue.async { job.run() }
    }

    private func flushZero() throws {
        guard let p = pendingZero else { return }
        pendingZero = nil
        if try skip(p.first) { return }
        queue.append(.zero(first: p.first, count: p.count))
        queuedEnd = p.first + p.count
    }

    private func flushDiscard() throws {
        guard let p = pendingDiscard else { return }
        pendingDiscard = nil
        if try skip(p.first) { return }
        queue.append(.discard(first: p.first, count: p.count))
        queuedEnd = p.first + p.count
    }

    /// Writes queued records in order, waiting for their compression: all of them, or up to and
    /// including the oldest data record (which frees its slot).
    private func drain(all: Bool) throws {
        while !queue.isEmpty {
            let item = queue.removeFirst()
            switch item {
            case let .data(first, blocks, slot, bytes, buffer):
                let size = try jobs[slot].wait()
                if let sum = jobs[slot].sum { digest?.add(sum) }
                inFlight -= 1
                if buffer < holds.count {
                    holds[buffer] -= 1
                } else if let m = mappings[buffer] {
                    // The mapping being cut stays until its chunk is done (`add`).
                    if m.holds == 1, buffer != holder { mappings[buffer] = nil } else { mappings[buffer]?.holds -= 1 }
                }
                let frame = UnsafeRawBufferPointer(rebasing: slots[slot][0..<size])
                if encoder.isEncrypted {
                    try emit(encoder.data(firstBlock: first, blockCount: UInt32(blocks), rawBytes: bytes, frame: frame))
                } else {
                    // The frame goes to the sink from where it was compressed (no record copy of it).
                    let (head, tail) = encoder.dataPieces(firstBlock: first, blockCount: UInt32(blocks), rawBytes: bytes, frame: frame)
                    try head.withUnsafeBytes { try sink.write($0) }
                    try sink.write(frame)
                    written += UInt64(head.count + frame.count)
                    try emit(tail)
                }
                if !all { return }
            case let .zero(first, count):
                try emit(encoder.zero(firstBlock: first, blockCount: count))
            case let .discard(first, count):
                try emit(encoder.discard(firstBlock: first, blockCount: count))
            }
        }
    }

    private func flushPending() throws {
        try flushZero()
        try flushDiscard()
    }

    /// While resuming, counts a record below the resume point and says to leave it out.
    private func skip(_ first: UInt64) throws -> Bool {
        guard skippedSequence < skipBelow else {
            if first < queuedEnd {
                throw StreamError.badRecord(sequence: encoder.progress.nextSequence,
                                            reason: "the resume token does not match this stream (block \(first) was already sent)")
            }
            return false
        }
        skippedSequence += 1
        return true
    }

    private func emit(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink.write($0) }
        written += UInt64(bytes.count)
        onProgress?(coveredBytes, written)
    }
}

/// One slot's compression job: started on the sender's thread, run on a worker, waited for
/// before its output is written or the slot reused. Its compressor is used by one job at a time.
private final class CompressionJob: @unchecked Sendable {
    let compressor: ZstdCompressor
    private var src = UnsafeRawBufferPointer(start: nil, count: 0)
    private var dst = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Store the bytes as they are (they look incompressible) instead of compressing them.
    private var store = false
    /// The virtual block of `src`'s first block, when its digest contributions are summed too.
    private var digestFrom: UInt64?
    private var blockSize = 0
    /// The sum of `src`'s blocks' contributions (after `wait`), nil when not asked.
    private(set) var sum: Digest128?
    private var result: Result<Int, ZstdError> = .success(0)
    private let done = DispatchSemaphore(value: 0)

    init(compressor: ZstdCompressor) { self.compressor = compressor }

    func start(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer, store: Bool, digestFrom: UInt64?, blockSize: Int) {
        self.src = src
        self.dst = dst
        self.store = store
        self.digestFrom = digestFrom
        self.blockSize = blockSize
        sum = nil
    }

    func run() {
        if store {
            result = .success(ZstdCompressor.store(src, into: dst))
        } else {
            do { result = .success(try compressor.compress(src, into: dst)) } catch { result = .failure(error) }
        }
        if let first = digestFrom { sum = ContentDigest.sum(blocks: src, from: first, blockSize: blockSize) }
        done.signal()
    }

    /// Waits for the job (the semaphore orders the worker's writes before this read).
    func wait() throws -> Int {
        done.wait()
        return try result.get()
    }
}

/// Sums of mapped blocks' digest contributions computed on workers: each mapping stays mapped until
/// its sum is in. At most `limit` sums run or wait at once (the caller waits for a free one).
private final class MappedSums: @unchecked Sendable {
    /// Serial: `sum` is read and written only on it.
    private let acc = DispatchQueue(label: "thin-backup.old-sums")
    private var sum = Digest128.zero
    private let group = DispatchGroup()
    private let room: DispatchSemaphore

    init(limit: Int = 4) { room = DispatchSemaphore(value: limit) }

    func add(_ m: FileMapping, from first: UInt64, blockSize: Int, on queue: DispatchQueue) {
        room.wait()
        group.enter()
        queue.async { [self] in
            let s = ContentDigest.sum(blocks: m.bytes, from: first, blockSize: blockSize)
            acc.sync {
                sum.high &+= s.high
                sum.low &+= s.low
            }
            withExtendedLifetime(m) {}
            room.signal()
            group.leave()
        }
    }

    /// Waits for every sum and returns their total.
    func total() -> Digest128 {
        group.wait()
        return acc.sync { sum }
    }
}
