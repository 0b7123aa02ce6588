import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Decompresses a stream's data records on several threads and hands every record back in
/// stream order, a data record together with its bytes: the next frames decompress on the other
/// cores while the caller writes or hashes this one. Memory: two slots per worker, each a raw buffer
/// of the largest record and a frame buffer (about 8 MiB for 4 MiB records), whatever the stream's
/// size, and never more slots than fit in `memoryBudget` (64 MiB: 7 such slots) beyond the two every
/// pipeline has: a 64-core receiver would otherwise hold 128 slots, 1 GiB.
///
/// A record whose frame has finished decompressing is handed back at the next `push`, without
/// waiting for the other slots to fill, and a new frame takes the slot freed last: while the caller
/// keeps up, a stream uses two slots, and the pages of the others are never touched (each slot's
/// 8 MiB cost first-touch page faults and their unmapping at exit: a quarter of a small receive's CPU).
public final class FramePipeline {
    /// A record handed back: for a data record, `raw` holds its decompressed bytes (valid until the
    /// handler returns) and the record's `frame` is empty (it was copied into the slot, so the record's
    /// array is freed at once, on this thread); for the others `raw` is empty.
    public struct Decoded {
        public let record: StreamRecord
        /// The record's sequence number in its stream (for errors).
        public let sequence: UInt64
        public let raw: UnsafeRawBufferPointer
        /// With `digestsBlocks`, for a data record: the content digest contributions of its blocks
        /// (`ContentDigest.sum` over `raw` from its first block), computed on the worker.
        public let blocksDigest: Digest128?
        /// With `digestsBlocks`, for a data record: each block's contribution (zero for an all-zero
        /// block), valid until the handler returns; their sum is `blocksDigest`.
        public let blockDigests: UnsafeBufferPointer<Digest128>?
        /// For a data record: `onWorker` ran for it (it was set when the record was pushed).
        public var ranOnWorker = false
    }

    /// Workers also sum each data record's content digest contributions (`Decoded.blocksDigest`),
    /// so the caller's thread does not hash the blocks itself. Set before the first push.
    public var digestsBlocks = false

    /// Frames' zstd content checksums are checked (the default). Off only for a caller that checks
    /// the decompressed bytes itself (a receive whose trailer digest covers them). Set before a push:
    /// each frame is decompressed with the setting it was pushed under.
    public var checksFrameChecksums = true

    /// Runs on the worker that decompressed a data record, once its frame decompressed whole to the
    /// size it declares: the record's first block and its bytes (valid during the call). For a caller
    /// whose records need no order there (a newest-first merge writes disjoint blocks), so that this
    /// work is spread over the workers instead of the caller's thread. An error it throws is thrown
    /// when that record is handed back. Set while no record is in flight (before the first push, or
    /// after `drain`): each record runs the one set when it was pushed.
    public var onWorker: (@Sendable (_ firstBlock: UInt64, _ raw: UnsafeRawBufferPointer) throws -> Void)?

    private let jobs: [DecompressionJob]
    /// Records pushed and not yet handed back, oldest first; a data record names its slot.
    private var queue: [(record: StreamRecord, sequence: UInt64, slot: Int?)] = []
    private var head = 0
    /// Slots not in use; the last one was freed last and is taken first (its pages are warm).
    private var free: [Int]
    private let work = DispatchQueue(label: "thin-backup.decompress", attributes: .concurrent)

    /// - Parameters:
    ///   - workers: frames decompressed at the same time (give the number of cores); two slots each,
    ///     within `memoryBudget`.
    ///   - maxRecordRaw: the largest record's raw bytes (`StreamHeader.maxRecordRaw`).
    public init(workers: Int, maxRecordRaw: Int) throws {
        jobs = try (0..<Self.slotCount(workers: workers, maxRecordRaw: maxRecordRaw)).map { _ in
            try DecompressionJob(capacity: maxRecordRaw)
        }
        free = Array(jobs.indices.reversed())
    }

    /// The slot of each data record pushed so far, in order (for tests: which slots were touched).
    public private(set) var slotsUsed: [Int] = []
    /// Whether `slotsUsed` is kept (tests).
    public var recordsSlots = false

    /// What all slots' buffers together may take, beyond the two slots every pipeline has.
    public static let memoryBudget = 64 << 20

    /// Slots for `workers` workers: two each, at least two, and no more than fit in `memoryBudget`.
    public static func slotCount(workers: Int, maxRecordRaw: Int) -> Int {
        let raw = max(maxRecordRaw, 1)
        let frame = ZstdCompressor.bound(raw)
        let (perSlot, o) = raw.addingReportingOverflow(frame)
        let fit = o || frame < raw ? 0 : memoryBudget / perSlot
        let (wanted, o2) = max(workers, 1).multipliedReportingOverflow(by: 2)
        return max(2, min(o2 ? Int.max : wanted, fit))
    }

    /// One worker per online core.
    public static var defaultWorkers: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    deinit {
        // Jobs still running (after an error) write into the buffers: wait for them first.
        for item in queue[head...] { if let s = item.slot { jobs[s].wait() } }
    }

    /// Queues `record` (`sequence` in its stream); hands the records at the head whose frames are
    /// decompressed to `body` (in order), and while every slot is busy, waits for the oldest.
    /// A data record's frame is `frame` when given (bytes valid during the call, e.g. in the stream
    /// decoder's buffer: `StreamDecoder.withPlacedFrame`), else the record's own array.
    /// With `stable`, the frame's bytes stay valid until the record is handed back: they are read
    /// where they lie (a mapped stream's, `StreamDecoder.framesAreStable`), not copied into the slot.
    public func push(_ record: StreamRecord, sequence: UInt64, blockSize: Int, frame placed: UnsafeRawBufferPointer? = nil,
                     stable: Bool = false, _ body: (Decoded) throws -> Void) throws {
        guard case let .data(first, count, frame) = record else {
            queue.append((record, sequence, nil))
            try deliverReady(body)
            return
        }
        let raw = Int(count) * blockSize
        let frameCount = placed?.count ?? frame.count
        guard raw <= jobs[0].capacity, frameCount <= jobs[0].input.count else {
            throw StreamError.payload(sequence: sequence, reason: "holds \(raw) bytes in a frame of \(frameCount), more than a record may")
        }
        while free.isEmpty { try deliverOne(body) }
        let slot = free.removeLast()
        if recordsSlots { slotsUsed.append(slot) }
        let job = jobs[slot]
        let digest = digestsBlocks ? (first: first, blockSize: blockSize) : nil
        let hook = onWorker.map { h in { @Sendable (raw: UnsafeRawBufferPointer) throws in try h(first, raw) } }
        try job.checkChecksums(checksFrameChecksums)
        if let placed { job.start(placed, stable: stable, expected: raw, digest: digest, hook: hook) } else {
            frame.withUnsafeBytes { job.start($0, expected: raw, digest: digest, hook: hook) }
        }
        queue.append((.data(firstBlock: first, blockCount: count, frame: []), sequence, slot))
        work.async { job.run() }
        // The frame just started decompresses while the caller applies the finished ones.
        try deliverReady(body)
    }

    /// `push`, with a data record's frame read where it lies in `decoder`'s buffer when it stayed
    /// there (`StreamDecoder.framesInPlace`), else from the record's own array.
    public func push(_ record: StreamRecord, from decoder: borrowing StreamDecoder, sequence: UInt64, blockSize: Int,
                     _ body: (Decoded) throws -> Void) throws {
        let stable = decoder.framesAreStable
        if try decoder.withPlacedFrame({ try push(record, sequence: sequence, blockSize: blockSize, frame: $0, stable: stable, body) }) == nil {
            try push(record, sequence: sequence, blockSize: blockSize, body)
        }
    }

    /// Hands `body` the records at the head of the queue that need no waiting.
    private func deliverReady(_ body: (Decoded) throws -> Void) throws {
        while head < queue.count {
            if let s = queue[head].slot, !jobs[s].isDone() { return }
            try deliverOne(body)
        }
    }

    /// Hands every queued record to `body`, in order.
    public func drain(_ body: (Decoded) throws -> Void) throws {
        while head < queue.count { try deliverOne(body) }
    }

    private func deliverOne(_ body: (Decoded) throws -> Void) throws {
        let item = queue[head]
        head += 1
        if head == queue.count || head > 64 {
            queue.removeFirst(head)
            head = 0
        }
        guard let s = item.slot else {
            return try body(Decoded(record: item.record, sequence: item.sequence, raw: UnsafeRawBufferPointer(start: nil, count: 0),
                                    blocksDigest: nil, blockDigests: nil))
        }
        let job = jobs[s]
        job.wait()
        free.append(s)
        let got: Int
        switch job.result {
        case let .success(n): got = n
        case let .failure(e): throw StreamError.payload(sequence: item.sequence, reason: "does not decompress: \(e)")
        }
        guard got == job.expected else {
            throw StreamError.payload(sequence: item.sequence, reason: "decompressed to \(got) bytes, expected \(job.expected)")
        }
        if let e = job.hookError { throw e }
        try body(Decoded(record: item.record, sequence: item.sequence, raw: UnsafeRawBufferPointer(rebasing: job.buffer[0..<got]),
                         blocksDigest: job.digest, blockDigests: job.digest == nil ? nil : job.blockDigests, ranOnWorker: job.hasHook))
    }
}

/// One slot: a decompressor and its output buffer, used by one frame at a time.
private final class DecompressionJob: @unchecked Sendable {
    let z: ZstdDecompressor
    let buffer: UnsafeMutableRawBufferPointer
    /// The frame being decompressed (a copy: frames of every size allocated and freed across threads
    /// fragmented the heap to 140 MiB on a 0.5 GiB stream).
    let input: UnsafeMutableRawBufferPointer
    /// The frame being decompressed: in `input`, or where the caller keeps it (a stable frame).
    private var source = UnsafeRawBufferPointer(start: nil, count: 0)
    var capacity: Int { buffer.count }
    private(set) var expected = 0
    private(set) var result: Result<Int, ZstdError> = .success(0)
    /// Where the record's blocks start and their size, when the worker sums their digest contributions.
    private var digestOf: (first: UInt64, blockSize: Int)?
    private(set) var digest: Digest128?
    /// The contribution of each block of the record (`digest` is their sum).
    private var perBlock: UnsafeMutableBufferPointer<Digest128>?
    private(set) var blockDigests = UnsafeBufferPointer<Digest128>(start: nil, count: 0)
    /// Run on the worker over the decompressed bytes (`FramePipeline.onWorker`), and what it threw.
    private var hook: (@Sendable (UnsafeRawBufferPointer) throws -> Void)?
    private(set) var hookError: (any Error)?
    var hasHook: Bool { hook != nil }
    private let done = DispatchSemaphore(value: 0)
    /// Set by the worker when it signals `done`: `isDone` reads it without a system call (a semaphore
    /// probed with a timeout of now sleeps in futex and switches the caller's thread out, many times a frame).
    private let signalled = Atomic<Bool>(false)

    init(capacity: Int) throws {
        z = try ZstdDecompressor()
        buffer = PageBuffer.allocate(max(capacity, 1))
        input = PageBuffer.allocate(ZstdCompressor.bound(max(capacity, 1)))
    }

    deinit { PageBuffer.release(buffer); PageBuffer.release(input); perBlock?.deallocate() }

    /// Finished and not yet waited for (read and written by the caller's thread only).
    private var finished = false
    /// The decompressor's content checksum setting (zstd's default: checked).
    private var checksums = true

    /// Sets whether the next frame's content checksum is checked (caller's thread, no frame running).
    func checkChecksums(_ on: Bool) throws {
        if on != checksums {
            try z.checkContentChecksums(on)
            checksums = on
        }
    }

    /// Copies the frame in (the caller checked it fits), or with `stable` reads it where it lies.
    func start(_ frame: UnsafeRawBufferPointer, stable: Bool = false, expected: Int, digest: (first: UInt64, blockSize: Int)?,
               hook: (@Sendable (UnsafeRawBufferPointer) throws -> Void)? = nil) {
        digestOf = digest
        self.digest = nil
        self.hook = hook
        hookError = nil
        if stable {
            source = frame
        } else {
            if frame.count > 0 { UnsafeMutableRawBufferPointer(rebasing: input[0..<frame.count]).copyMemory(from: frame) }
            source = UnsafeRawBufferPointer(rebasing: input[0..<frame.count])
        }
        self.expected = expected
        finished = false
    }

    func run() {
        let out = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<expected])
        do {
            let n = try z.decompress(source, into: out)
            if let d = digestOf, n == expected, d.blockSize > 0 {
                let count = (n + d.blockSize - 1) / d.blockSize
                if (perBlock?.count ?? 0) < count {
                    perBlock?.deallocate()
                    perBlock = .allocate(capacity: count)
                }
                let vals = perBlock!
                digest = ContentDigest.contributions(blocks: UnsafeRawBufferPointer(rebasing: out[0..<n]), from: d.first,
                                                     blockSize: d.blockSize, into: vals)
                blockDigests = UnsafeBufferPointer(rebasing: vals[0..<count])
            }
            if let hook, n == expected {
                do { try hook(UnsafeRawBufferPointer(out)) } catch { hookError = error }
            }
            result = .success(n)
        } catch {
            result = .failure(error)
        }
        signalled.store(true, ordering: .releasing)
        done.signal()
    }

    /// Waits for the job (the semaphore orders the worker's writes before the caller's reads).
    func wait() {
        if !finished { done.wait() }
        finished = false
        signalled.store(false, ordering: .relaxed)
    }

    /// True when the job has finished (then `wait` returns at once), without blocking.
    func isDone() -> Bool {
        if !finished, signalled.load(ordering: .acquiring) {
            // Signalled: the semaphore's count is taken at once (no sleep).
            done.wait()
            finished = true
        }
        return finished
    }
}
