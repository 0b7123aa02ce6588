import Delta
#if canImport(Glibc)
import Glibc
#endif
import Testing
import TestSupport

/// Frames decompressed on several threads come back in stream order, each with its own bytes.
@Suite struct FramePipelineTests {
    @Test(arguments: [1, 3])
    func recordsComeBackInOrderWithTheirBytes(workers: Int) throws {
        let s = Scenario(seed: 17, blocks: 300)
        let (bytes, _) = try s.send(parallel: 2)
        let records = try decodeAll(bytes, pieces: [bytes.count])
        #expect(records.filter { if case .data = $0 { return true } else { return false } }.count > 2 * 2 * workers,
                "more data records than slots, so slots are reused")
        let pipe = try FramePipeline(workers: workers, maxRecordRaw: 4 << 20)
        var got: [StreamRecord] = []
        var image = [UInt8](repeating: 0, count: Int(s.virtualBlocks) * s.blockSize)
        let take: (FramePipeline.Decoded) -> Void = { r in
            got.append(r.record)
            if case let .data(first, count, _) = r.record {
                #expect(r.raw.count == Int(count) * s.blockSize)
                image.replaceSubrange(Int(first) * s.blockSize..<Int(first) * s.blockSize + r.raw.count, with: r.raw)
            }
        }
        for (i, r) in records.enumerated() { try pipe.push(r, sequence: UInt64(i), blockSize: s.blockSize, take) }
        try pipe.drain(take)
        // Data records come back with their frame emptied (their bytes are in `raw`).
        let want = records.map { r -> StreamRecord in
            if case let .data(first, count, _) = r { return .data(firstBlock: first, blockCount: count, frame: []) }
            return r
        }
        #expect(got == want)
        #expect(image == s.model())
    }

    /// A new frame takes the slot freed last: a caller that keeps up (here: everything handed back
    /// before the next push) uses one slot, not all of them in turn (their pages stay untouched).
    @Test func theSlotFreedLastIsTakenFirst() throws {
        let s = Scenario(seed: 19, blocks: 200)
        let (bytes, _) = try s.send()
        let records = try decodeAll(bytes, pieces: [bytes.count])
        let data = records.filter { if case .data = $0 { return true } else { return false } }.count
        #expect(data > 6)
        let pipe = try FramePipeline(workers: 3, maxRecordRaw: 4 << 20)
        pipe.recordsSlots = true
        var image = [UInt8](repeating: 0, count: Int(s.virtualBlocks) * s.blockSize)
        let take: (FramePipeline.Decoded) -> Void = { r in
            if case let .data(first, _, _) = r.record {
                image.replaceSubrange(Int(first) * s.blockSize..<Int(first) * s.blockSize + r.raw.count, with: r.raw)
            }
        }
        for (i, r) in records.enumerated() {
            try pipe.push(r, sequence: UInt64(i), blockSize: s.blockSize, take)
            try pipe.drain(take)
        }
        #expect(pipe.slotsUsed == [Int](repeating: 0, count: data))
        #expect(image == s.model())
        // Without draining, every slot is taken (lowest first) before one is waited for.
        let busy = try FramePipeline(workers: 3, maxRecordRaw: 4 << 20)
        busy.recordsSlots = true
        var delivered = 0
        for (i, r) in records.enumerated() { try busy.push(r, sequence: UInt64(i), blockSize: s.blockSize) { _ in delivered += 1 } }
        try busy.drain { _ in delivered += 1 }
        #expect(delivered == records.count)
        #expect(busy.slotsUsed.count == data && busy.slotsUsed.first == 0 && busy.slotsUsed.allSatisfy { (0..<6).contains($0) })
    }

    /// A record whose frame has finished is handed back by a later push, before the slots fill up.
    @Test func aFinishedRecordIsHandedBackWithoutWaitingForTheSlotsToFill() throws {
        let s = Scenario(seed: 20, blocks: 64)
        let (bytes, _) = try s.send()
        let records = try decodeAll(bytes, pieces: [bytes.count])
        let k = try #require(records.firstIndex { if case .data = $0 { return true } else { return false } })
        let pipe = try FramePipeline(workers: 3, maxRecordRaw: 4 << 20)
        var delivered: [UInt64] = []
        try pipe.push(records[k], sequence: 1, blockSize: s.blockSize) { delivered.append($0.sequence) }
        // Records without a frame pushed behind it: each push hands back what is finished, in order.
        var seq: UInt64 = 2
        for _ in 0..<10_000 where delivered.isEmpty {
            usleep(1000)
            try pipe.push(.zero(firstBlock: 0, blockCount: 1), sequence: seq, blockSize: s.blockSize) { delivered.append($0.sequence) }
            seq += 1
        }
        #expect(delivered.first == 1, "the data record came back before drain (6 slots, 1 used)")
        #expect(delivered == Array(1..<UInt64(delivered.count + 1)))
        try pipe.drain { delivered.append($0.sequence) }
        #expect(delivered == Array(1..<seq))
    }

    /// With `digestsBlocks` the workers hand back each data record's content digest contributions:
    /// summed over the stream, the model's digest; without it, none.
    @Test(arguments: [false, true])
    func workersSumTheBlocksDigest(digests: Bool) throws {
        let s = Scenario(seed: 22, blocks: 300)
        let (bytes, _) = try s.send(parallel: 2)
        let records = try decodeAll(bytes, pieces: [bytes.count])
        let pipe = try FramePipeline(workers: 2, maxRecordRaw: 4 << 20)
        pipe.digestsBlocks = digests
        let model = s.model()
        var total = ContentDigest()
        var sums = 0
        let take: (FramePipeline.Decoded) -> Void = { r in
            guard case let .data(first, count, _) = r.record else {
                #expect(r.blocksDigest == nil)
                return
            }
            guard let d = r.blocksDigest else { return }
            sums += 1
            total.add(d)
            // The record's own blocks, hashed here one by one from the model's bytes.
            var want = ContentDigest()
            for k in 0..<Int(count) {
                let at = (Int(first) + k) * s.blockSize
                model.withUnsafeBytes { want.add(block: first + UInt64(k), UnsafeRawBufferPointer(rebasing: $0[at..<at + s.blockSize])) }
            }
            #expect(d == want.value, "record at block \(first)")
        }
        for (i, r) in records.enumerated() { try pipe.push(r, sequence: UInt64(i), blockSize: s.blockSize, take) }
        try pipe.drain(take)
        let data = records.filter { if case .data = $0 { return true } else { return false } }.count
        #expect(sums == (digests ? data : 0))
        if digests {
            var whole = ContentDigest()
            model.withUnsafeBytes { whole.add(blocks: $0, from: 0, blockSize: s.blockSize) }
            #expect(total == whole, "only data records carry blocks that are not zeros")
        }
    }

    @Test func aFrameThatDoesNotDecompressNamesItsRecord() throws {
        let s = Scenario(seed: 18, blocks: 64)
        let (bytes, _) = try s.send()
        var records = try decodeAll(bytes, pieces: [bytes.count])
        let k = try #require(records.lastIndex { if case .data = $0 { return true } else { return false } })
        guard case let .data(first, count, frame) = records[k] else { return }
        records[k] = .data(firstBlock: first, blockCount: count, frame: Array(frame.prefix(frame.count / 2)))
        let pipe = try FramePipeline(workers: 2, maxRecordRaw: 4 << 20)
        var delivered = 0
        var failure: StreamError?
        do {
            for (i, r) in records.enumerated() { try pipe.push(r, sequence: UInt64(i), blockSize: s.blockSize) { _ in delivered += 1 } }
            try pipe.drain { _ in delivered += 1 }
        } catch let e as StreamError {
            failure = e
        }
        guard case let .payload(seq, _)? = failure else {
            Issue.record("expected a payload error, got \(String(describing: failure))")
            return
        }
        #expect(seq == UInt64(k))
        #expect(delivered == k, "every record before the bad one was handed back")
    }

    /// `onWorker` sees every data record's first block and bytes, on a worker thread, before the
    /// record is handed back; what it throws is thrown when that record is handed back, in order.
    @Test func theWorkerHookSeesEveryRecordAndItsErrorSurfacesInOrder() throws {
        let s = Scenario(seed: 21, blocks: 200)
        let (bytes, _) = try s.send(parallel: 2)
        let records = try decodeAll(bytes, pieces: [bytes.count])
        let dataFirsts = records.compactMap { r -> UInt64? in if case let .data(f, _, _) = r { return f } else { return nil } }
        #expect(dataFirsts.count > 4)
        final class Image: @unchecked Sendable {
            let lock = NSLockish()
            var bytes: [UInt8]
            var threads: Set<Int> = []
            init(_ n: Int) { bytes = [UInt8](repeating: 0, count: n) }
        }
        let image = Image(Int(s.virtualBlocks) * s.blockSize)
        let bs = s.blockSize
        let failAt = dataFirsts[dataFirsts.count / 2]
        struct Boom: Error {}
        let caller = threadID()
        let pipe = try FramePipeline(workers: 2, maxRecordRaw: 4 << 20)
        pipe.onWorker = { first, raw in
            image.lock.locked {
                image.threads.insert(threadID())
                image.bytes.replaceSubrange(Int(first) * bs..<Int(first) * bs + raw.count, with: raw)
            }
            if first == failAt { throw Boom() }
        }
        var handed: [UInt64] = []
        let take: (FramePipeline.Decoded) -> Void = { r in if case let .data(f, _, _) = r.record { handed.append(f) } }
        #expect(throws: Boom.self) {
            for (i, r) in records.enumerated() { try pipe.push(r, sequence: UInt64(i), blockSize: bs, take) }
            try pipe.drain(take)
        }
        #expect(handed == Array(dataFirsts.prefix { $0 != failAt }), "the records before the failing one, in order")
        #expect(!image.threads.isEmpty && !image.threads.contains(caller), "run on workers only")
        // A second pipeline without errors: the hook's bytes make the device's image.
        let image2 = Image(Int(s.virtualBlocks) * s.blockSize)
        let pipe2 = try FramePipeline(workers: 2, maxRecordRaw: 4 << 20)
        pipe2.onWorker = { first, raw in
            image2.lock.locked { image2.bytes.replaceSubrange(Int(first) * bs..<Int(first) * bs + raw.count, with: raw) }
        }
        for (i, r) in records.enumerated() { try pipe2.push(r, sequence: UInt64(i), blockSize: bs) { _ in } }
        try pipe2.drain { _ in }
        #expect(image2.bytes == s.model())
    }

    /// Two slots per worker while they fit in 64 MiB (a raw buffer and a frame buffer each), never
    /// fewer than two: memory stays flat on a many-core receiver.
    @Test func slotsGrowWithTheCoresUpToTheMemoryBudget() {
        let mib = 1 << 20
        // 64 KiB records: about 128 KiB a slot, so 2 per worker up to 500 slots.
        for w in [1, 2, 3, 8, 64] { #expect(FramePipeline.slotCount(workers: w, maxRecordRaw: 64 << 10) == 2 * w) }
        // 4 MiB records (the format's largest): a slot takes more than 8 MiB, so 7 fit in 64 MiB.
        #expect(FramePipeline.slotCount(workers: 1, maxRecordRaw: 4 * mib) == 2)
        #expect(FramePipeline.slotCount(workers: 3, maxRecordRaw: 4 * mib) == 6)
        for w in [4, 16, 64, 1 << 20] { #expect(FramePipeline.slotCount(workers: w, maxRecordRaw: 4 * mib) == 7) }
        // Records too large for the budget, or sizes that would overflow: the two every pipeline has.
        #expect(FramePipeline.slotCount(workers: 64, maxRecordRaw: 64 * mib) == 2)
        #expect(FramePipeline.slotCount(workers: Int.max, maxRecordRaw: Int.max) == 2)
        #expect(FramePipeline.slotCount(workers: 0, maxRecordRaw: 0) == 2)
    }
}

/// A pthread mutex (Foundation is not imported here).
final class NSLockish: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// The calling thread (pthread id).
func threadID() -> Int { Int(pthread_self()) }
