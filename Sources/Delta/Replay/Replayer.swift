import PoolCore

/// What a receive did.
public struct ReceiveSummary: Sendable {
    public enum Outcome: String, Sendable { case received, alreadyReceived, resumed }
    public var outcome: Outcome
    public var device: UInt64
    public var header: StreamHeader
    public var trailer: StreamTrailer?
    public var contentDigest: Digest128
    public var streamBytes: UInt64
}

/// Replays a stream into a `ReceivingPool`: creates the target (a snapshot of
/// the local base for an incremental), applies every record, checks the
/// trailer and the content digest, and commits only then. Any error aborts the
/// open transaction, so the pool is as it was (or at its last checkpoint when
/// checkpoints were asked for).
public final class Replayer {
    public let pool: ReceivingPool
    /// Local id for the target; the sender's id when nil.
    public var targetID: UInt64?
    /// Commit a checkpoint (resumable with `resume`) after this many raw bytes; nil: never.
    public var checkpointBytes: UInt64?
    /// Called after each record with (raw bytes applied, stream bytes read, expected raw bytes).
    public var onProgress: ((UInt64, UInt64, UInt64) -> Void)?
    /// Called with the resume token after each checkpoint commit.
    public var onCheckpoint: ((String) -> Void)?
    /// Bytes read from the source per call.
    public var readSize = 1 << 20
    /// Frames decompressed at the same time (default: one per core).
    public var decompressionWorkers = FramePipeline.defaultWorkers
    /// The caller's name for the stream, kept with checkpoints (see `PartialReceive.label`).
    public var label: String?
    /// The key of an encrypted stream (nil: only clear streams are accepted).
    public var keyring: StreamKeyring?
    /// Creates a new device over the external origin whose bytes a full stream's unmapped blocks read as
    /// (a stream with `readsOrigin`): arguments device id and virtual size. Nil: such a stream is refused.
    public var createOverOrigin: ((UInt64, UInt64) throws -> Void)?

    public init(pool: ReceivingPool) { self.pool = pool }

    /// Stream blocks whose old content the last receive read back from the pool for the digest
    /// (none where the base's block digest map gave their contributions).
    public private(set) var replacedBlocksRead: UInt64 = 0
    /// Whether the last receive took replaced blocks' contributions from its base's digest map.
    public private(set) var usedDigestMap = false
    /// Whether the last receive wrote a block digest map for its device.
    public private(set) var wroteDigestMap = false
    /// Data records of the last receive that were placed and written by the worker that decompressed
    /// them (`PlacesWrites`), not by the receiving thread.
    public private(set) var recordsWrittenOnWorkers: UInt64 = 0
    /// Whether the last receive decoded its source mapped (`ByteSource.mapRest`), not read.
    public private(set) var decodedMapped = false
    /// Whether the last receive decompressed its frames without zstd's content checksums, its trailer's
    /// content digest checking their bytes instead (see `apply`).
    public private(set) var framesUnchecked = false

    /// Receives the stream `source` yields. With `resume`, continues the interrupted receive of the
    /// target (from a resumed stream or the whole stream again, skipping what was applied).
    public func receive(from source: ByteSource, resume: Bool = false) throws -> ReceiveSummary {
        do {
            return try run(source, resume: resume, continuing: false)
        } catch {
            try? pool.abortReceive()
            throw error
        }
    }

    /// Continues the interrupted receive of `targetID` with `source`, which yields the stream's
    /// bytes from the checkpoint's `streamOffset` on (a transport that restarts at a byte offset).
    public func receiveContinuing(from source: ByteSource) throws -> ReceiveSummary {
        do {
            return try run(source, resume: true, continuing: true)
        } catch {
            try? pool.abortReceive()
            throw error
        }
    }

    private var decoder = StreamDecoder()
    private var streamBytes: UInt64 = 0
    private var sourceDone = false
    private var triedMapping = false

    /// The next record; nil when the source ended (the decoder then says whether that was the end).
    private func nextRecord(_ source: ByteSource) throws -> StreamRecord? {
        while true {
            if let r = try decoder.next() { return r }
            if sourceDone { try decoder.finish(); return nil }
            // Read straight into the decoder's buffer; data records' frames stay there until pushed.
            decoder.framesInPlace = true
            if !triedMapping {
                // A regular file is decoded where it lies, mapped: nothing is read or copied.
                triedMapping = true
                if let m = source.mapRest() {
                    if decoder.feed(mapping: m) { decodedMapped = true } else { decoder.feed(m.bytes) }
                    streamBytes += UInt64(m.bytes.count)
                    sourceDone = true
                    continue
                }
            }
            let n = try decoder.fill(upTo: max(readSize, 1)) { try source.read(into: $0) }
            if n == 0 { sourceDone = true; continue }
            streamBytes += UInt64(n)
        }
    }

    /// What `resolve` decided: where the stream goes and how it continues.
    private struct Plan {
        let header: StreamHeader
        let dev: UInt64
        var digest: ContentDigest
        /// Records below this sequence were applied before (a whole stream sent again to resume).
        let skipBelow: UInt64
        /// The interrupted receive being resumed.
        let checkpoint: PartialReceive?
        let resume: Bool
        /// The base's valid block digest map (an incremental onto a base that has one).
        var baseMap: BlockDigestMap.Reader? = nil
        /// The target's new map, when this receive writes one.
        var mapWriter: BlockDigestMap.Writer? = nil
    }

    private enum Resolution {
        case apply(Plan)
        case alreadyReceived(ReceiveSummary)
    }

    private func run(_ source: ByteSource, resume: Bool, continuing: Bool) throws -> ReceiveSummary {
        decoder = StreamDecoder(keyring: keyring)
        streamBytes = 0
        sourceDone = false
        triedMapping = false
        replacedBlocksRead = 0
        usedDigestMap = false
        wroteDigestMap = false
        recordsWrittenOnWorkers = 0
        decodedMapped = false
        framesUnchecked = false
        switch try resolve(source, resume: resume, continuing: continuing) {
        case let .alreadyReceived(summary):
            return summary
        case var .apply(plan):
            let trailer = try apply(&plan, source, freshDevice: !plan.header.isIncremental)
            return try finish(plan, trailer, source)
        }
    }

    /// Reads the header and decides the target: a resumed receive, a stream received before
    /// (checked through, nothing changed), a snapshot of the local copy of the base, or a new device.
    private func resolve(_ source: ByteSource, resume: Bool, continuing: Bool) throws -> Resolution {
        let receipts = try pool.receipts()
        let header: StreamHeader
        if continuing {
            guard let dev = targetID, let p = receipts[dev]?.partial else { throw ReplayError.nothingToResume(targetID ?? 0) }
            decoder = StreamDecoder(continuing: p.header, at: p.progress, offset: p.streamOffset, keyring: keyring)
            streamBytes = p.streamOffset
            header = p.header
        } else {
            // Peek at the header first: it decides which decoder and which device.
            guard case .header(let h)? = try peekHeader(source, resume: resume, receipts: receipts) else {
                throw StreamError.truncated(offset: streamBytes)
            }
            header = h
        }
        try pool.accept(streamBlockSize: Int(header.blockSize))
        let dev = targetID ?? header.target.device
        let existing = receipts[dev]

        if resume {
            guard let r = existing, let p = r.partial else { throw ReplayError.nothingToResume(dev) }
            var expectHeader = p.header
            expectHeader.resumeSequence = header.resumeSequence
            expectHeader.encryption?.nonceSalt = header.encryption?.nonceSalt ?? .zero  // each sender run has its own
            guard expectHeader == header else {
                throw ReplayError.notTheInterruptedStream("its header differs from the interrupted stream's")
            }
            let skip = header.resumeSequence == 0 && !continuing ? p.progress.nextSequence : 0
            var plan = Plan(header: header, dev: dev, digest: ContentDigest(p.digest), skipBelow: skip, checkpoint: p, resume: true)
            digestMaps(&plan, base: nil, write: false)
            return .apply(plan)
        } else if let r = existing, r.partial == nil, r.sourcePool == header.sourcePool, r.source == header.target,
                  try pool.deviceExists(dev) {
            // Already received: check the stream through to its end, change nothing.
            while let rec = try nextRecord(source) { if case .trailer = rec { break } }
            try drain(source)
            return .alreadyReceived(ReceiveSummary(outcome: .alreadyReceived, device: dev, header: header, trailer: decoder.trailer,
                                                   contentDigest: r.contentDigest, streamBytes: streamBytes))
        } else if try pool.deviceExists(dev), !(pool.keepsVersions && header.base != nil && existing != nil && existing?.partial == nil) {
            // A versioned volume takes an increment onto the version it holds (checked below).
            throw ReplayError.deviceExists(dev)
        } else if let base = header.base {
            let holders = receipts.filter { $0.value.partial == nil && $0.value.source == base && $0.value.sourcePool == header.sourcePool }
            // The target itself first when it holds the base (a versioned volume's next version).
            guard let (local, r) = holders[dev].map({ (dev, $0) }) ?? holders.first.map({ ($0.key, $0.value) }),
                  try pool.deviceExists(local) else {
                throw ReplayError.baseNotFound(base: base, target: header.target)
            }
            guard r.contentDigest == header.baseFingerprint else {
                throw ReplayError.baseFingerprintMismatch(local: local, base: base, recorded: r.contentDigest,
                                                          stream: header.baseFingerprint)
            }
            guard try pool.mappingDigest(of: local) == r.mappingDigest else {
                throw ReplayError.baseModified(local: local, base: base)
            }
            let sameSize = try pool.virtualSize(of: local) == header.virtualSize
            try pool.createSnapshot(dev, of: local, virtualSize: header.virtualSize)
            var plan = Plan(header: header, dev: dev, digest: ContentDigest(r.contentDigest), skipBelow: 0, checkpoint: nil, resume: false)
            digestMaps(&plan, base: sameSize ? local : nil, write: sameSize)
            return .apply(plan)
        } else if header.readsOrigin {
            guard let make = createOverOrigin else { throw ReplayError.needsOrigin(header.target) }
            try make(dev, header.virtualSize)
            var plan = Plan(header: header, dev: dev, digest: ContentDigest(), skipBelow: 0, checkpoint: nil, resume: false)
            digestMaps(&plan, base: nil, write: false)
            return .apply(plan)
        } else {
            try pool.createThin(dev, virtualSize: header.virtualSize)
            var plan = Plan(header: header, dev: dev, digest: ContentDigest(), skipBelow: 0, checkpoint: nil, resume: false)
            digestMaps(&plan, base: nil, write: true)
            return .apply(plan)
        }
    }

    /// Block digest maps (a pool that keeps them, `KeepsBlockDigestMaps`): drops any map left at the
    /// target's id, opens the base's map when it is valid (`base`: the local base of an incremental
    /// of the same size), and starts the target's map when `write` and the receive can write one: not
    /// with checkpoints (they commit before the map could be complete), not over an external origin,
    /// and for an incremental only from a valid base map. A map is an optimisation: anything that
    /// fails here only means the receive reads replaced blocks back, as without one.
    private func digestMaps(_ plan: inout Plan, base: UInt64?, write: Bool) {
        guard let host = pool as? KeepsBlockDigestMaps, let path = host.digestMapPath(of: plan.dev) else { return }
        BlockDigestMap.remove(path)
        let bs = Int(plan.header.blockSize)
        if let base, let bp = host.digestMapPath(of: base), let b = try? host.digestMapBinding(of: base) {
            plan.baseMap = BlockDigestMap.open(bp, blockSize: bs, binding: b)
        }
        guard write, checkpointBytes == nil, !plan.header.readsOrigin, base == nil || plan.baseMap != nil else { return }
        plan.mapWriter = try? BlockDigestMap.Writer(path: path, copying: plan.baseMap)
    }

    /// Applies every record up to the trailer (returned), keeping the content digest and
    /// committing checkpoints as asked. `freshDevice`: a full stream writes a new, empty device
    /// in ascending order, so no old content has to be read for the digest.
    private func apply(_ plan: inout Plan, _ source: ByteSource, freshDevice: Bool) throws -> StreamTrailer {
        let bs = Int(plan.header.blockSize)  // the stream's; the pool's may differ
        let dev = plan.dev
        let size = plan.header.virtualSize
        let maxRaw = Int(plan.header.maxRecordRaw)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: maxRaw, alignment: 4096)
        defer { raw.deallocate() }
        // Replaced blocks are read back here and hashed on another thread.
        let replaced = ReplacedBlocks(blockSize: bs)
        // Frames decompress on every core while this thread applies records, in stream order; the
        // workers also sum the new blocks' digest contributions.
        let frames = try FramePipeline(workers: decompressionWorkers, maxRecordRaw: maxRaw)
        frames.digestsBlocks = true
        // zstd's own content checksums are skipped where the digest check at the trailer covers every
        // decompressed byte before anything commits: an incremental stream from a base of known digest
        // (its sender always closes it with the target's digest; `finish` refuses one that does not),
        // received in one transaction. Elsewhere (full streams, checkpoints, resumes) they are checked.
        framesUnchecked = plan.header.isIncremental && plan.header.baseFingerprint != .zero && checkpointBytes == nil && !plan.resume
        frames.checksFrameChecksums = !framesUnchecked
        // The header's estimate, any number a stream carries: saturated, never a trap.
        let expected = plan.header.expectedBlocks.saturatingMultiplied(by: UInt64(bs))
        var applied: UInt64 = 0
        var sinceCheckpoint: UInt64 = 0
        // Where no old content is read back first (a new device, or a base with a digest map), a data
        // record of whole receiver blocks is placed as it is read, and the worker that decompressed it
        // writes it: this thread neither copies nor waits for its bytes.
        let placer = freshDevice || plan.baseMap != nil ? pool as? PlacesWrites : nil
        let poolBlock = UInt64(max(pool.blockSize, 1))

        /// What writes a data record on its worker, once placed; nil: `applyRecord` writes it.
        func placement(_ rec: StreamRecord) throws -> (@Sendable (UInt64, UnsafeRawBufferPointer) throws -> Void)? {
            guard let placer, case let .data(first, count, _) = rec else { return nil }
            let r = try byteRange(dev, first, UInt64(count), bs, size)
            guard r.lowerBound % poolBlock == 0, UInt64(r.count) % poolBlock == 0 else { return nil }
            let n = r.count
            let write = try placer.placeWrite(dev, offset: r.lowerBound, count: n)
            return { _, raw in try write(UnsafeRawBufferPointer(rebasing: raw[0..<n])) }
        }

        /// Removes the old content of blocks about to change from the digest (reads them from the device;
        /// their sum leaves the digest at `settle`).
        func forget(_ first: UInt64, _ count: UInt64) throws {
            if freshDevice { return }
            if let m = plan.baseMap {
                plan.digest.remove(try m.sum(first, count))
                usedDigestMap = true
                return
            }
            replacedBlocksRead += count
            var i: UInt64 = 0
            let per = UInt64(replaced.blocksPerChunk(bs))
            while i < count {
                let n = min(per, count - i)
                let at = first + i
                try replaced.add(Int(n) * bs, first: at, blockSize: bs) { buf in
                    try pool.readBlocks(dev, size: size, first: at, blockSize: bs, into: buf)
                }
                i += n
            }
        }

        /// The new map's entries of blocks made zero.
        func clearMap(_ first: UInt64, _ count: UInt64) {
            do { try plan.mapWriter?.clear(first, count) } catch { plan.mapWriter = nil }
        }

        /// Takes the replaced blocks hashed so far out of the digest (before it is read).
        func settle() { plan.digest.remove(replaced.take()) }

        // Stream offsets where the records pushed and not yet applied start, oldest first: a mapped
        // stream's pages before the oldest are let go (`StreamDecoder.releaseMapped`).
        var inFlight: [UInt64] = []
        var inFlightHead = 0
        var recordStart = decoder.consumedBytes

        func applyRecord(_ item: FramePipeline.Decoded) throws {
            inFlightHead += 1
            if inFlightHead >= 1024 { inFlight.removeFirst(inFlightHead); inFlightHead = 0 }
            switch item.record {
            case let .data(first, count, _):
                try forget(first, UInt64(count))
                if let sum = item.blocksDigest { plan.digest.add(sum) } else { plan.digest.add(blocks: item.raw, from: first, blockSize: bs) }
                if let w = plan.mapWriter {
                    do {
                        if let vals = item.blockDigests { try w.set(first, vals) } else {
                            var vals = [Digest128](repeating: .zero, count: Int(count))
                            _ = vals.withUnsafeMutableBufferPointer {
                                ContentDigest.contributions(blocks: item.raw, from: first, blockSize: bs, into: $0)
                            }
                            try vals.withUnsafeBufferPointer { try w.set(first, $0) }
                        }
                    } catch { plan.mapWriter = nil }
                }
                if item.ranOnWorker {
                    recordsWrittenOnWorkers += 1
                } else {
                    let r = try byteRange(dev, first, UInt64(count), bs, size)
                    try pool.write(dev, offset: r.lowerBound, UnsafeRawBufferPointer(rebasing: item.raw[0..<r.count]))
                }
                applied += UInt64(item.raw.count)
                sinceCheckpoint += UInt64(item.raw.count)
            case let .zero(first, count):
                try forget(first, count)
                clearMap(first, count)
                let r = try byteRange(dev, first, count, bs, size)
                if plan.header.readsOrigin {
                    // Unmapped would read the origin's bytes: these blocks read zeros, so they are written.
                    try writeZeros(dev, r, buffer: raw)
                } else {
                    try pool.zero(dev, bytes: r)
                }
                applied += count * UInt64(bs)
            case let .discard(first, count):
                try forget(first, count)
                clearMap(first, count)
                try pool.discard(dev, bytes: try byteRange(dev, first, count, bs, size))
            case .header, .trailer, .sealed:
                throw StreamError.badRecord(sequence: item.sequence, reason: "unexpected record")
            }
            onProgress?(applied, decoder.consumedBytes, expected)
        }

        while let rec = try nextRecord(source) {
            let seq = decoder.progress.nextSequence &- 1
            let at = recordStart
            recordStart = decoder.consumedBytes
            if case .trailer(let t) = rec {
                try frames.drain(applyRecord)
                settle()
                return t
            }
            if seq < plan.skipBelow {
                if decoder.progress.nextSequence == plan.skipBelow, let c = plan.checkpoint, decoder.progress != c.progress {
                    throw ReplayError.notTheInterruptedStream("its records differ from those already applied")
                }
                continue
            }
            frames.onWorker = try placement(rec)
            inFlight.append(at)
            // A frame left in the decoder's buffer is copied once, into its slot (read where it lies
            // in a mapped stream).
            try frames.push(rec, from: decoder, sequence: seq, blockSize: bs, applyRecord)
            decoder.releaseMapped(before: inFlightHead < inFlight.count ? inFlight[inFlightHead] : recordStart)
            if let every = checkpointBytes {
                // A checkpoint names the decoder's position: everything decoded so far is applied first.
                try frames.drain(applyRecord)
                if sinceCheckpoint >= every {
                    settle()
                    try checkpoint(plan)
                    sinceCheckpoint = 0
                }
            }
        }
        throw StreamError.truncated(offset: streamBytes)
    }

    /// The bytes of stream blocks `first..<first+count` (of `bs` bytes) inside a device of `size`
    /// bytes: the last block of a device whose size is not whole blocks is cut at the end.
    private func byteRange(_ dev: UInt64, _ first: UInt64, _ count: UInt64, _ bs: Int, _ size: UInt64) throws -> Range<UInt64> {
        let (start, o1) = first.multipliedReportingOverflow(by: UInt64(bs))
        let (len, o2) = count.multipliedReportingOverflow(by: UInt64(bs))
        let (end, o3) = start.addingReportingOverflow(len)
        guard !o1, !o2, !o3, count == 0 || start < size, end <= size || end - size < UInt64(bs) else {
            throw ReplayError.beyondDevice(dev)
        }
        return start..<min(end, size)
    }

    /// Commits what was applied so far as a resumable checkpoint.
    private func checkpoint(_ plan: Plan) throws {
        let p = PartialReceive(header: plan.header, progress: decoder.progress, digest: plan.digest.value,
                               streamOffset: decoder.consumedBytes, label: label)
        try pool.setReceipt(Receipt(sourcePool: plan.header.sourcePool, source: plan.header.target, streamID: plan.header.streamID,
                                    contentDigest: .zero, mappingDigest: .zero, partial: p), for: plan.dev)
        try pool.commitReceive()
        onCheckpoint?(p.progress.token)
    }

    /// After the trailer: the source must end, the content digest match the trailer's; then the
    /// receipt is recorded and everything committed.
    private func finish(_ plan: Plan, _ trailer: StreamTrailer, _ source: ByteSource) throws -> ReceiveSummary {
        try drain(source)
        // A resumed receive is checked against the device as built, not against a running
        // digest that trusts the checkpoint it started from.
        let digest = plan.resume ? try pool.contentDigest(of: plan.dev, blockSize: Int(plan.header.blockSize)) : plan.digest.value
        if framesUnchecked && trailer.targetDigest == nil { throw ReplayError.unverifiedContent(plan.header.target) }
        if let want = trailer.targetDigest, want != digest {
            throw ReplayError.targetDigestMismatch(expected: want, computed: digest)
        }
        let receipt = Receipt(sourcePool: plan.header.sourcePool, source: plan.header.target, streamID: plan.header.streamID,
                              contentDigest: digest, mappingDigest: try pool.mappingDigest(of: plan.dev))
        try pool.setReceipt(receipt, for: plan.dev)
        // The map is synced and put in place after the commit: a crash before that leaves none (or
        // an older one, whose binding names an older receipt).
        var map = plan.mapWriter
        if let w = map {
            let binding = try? (pool as? KeepsBlockDigestMaps)?.digestMapBinding(of: plan.dev)
            if let b = binding ?? nil, (try? w.finish(blockSize: Int(plan.header.blockSize), binding: b)) != nil {} else { map = nil }
        }
        try pool.commitReceive()
        if let w = map { wroteDigestMap = w.install() }
        return ReceiveSummary(outcome: plan.resume ? .resumed : .received, device: plan.dev, header: plan.header, trailer: trailer,
                              contentDigest: digest, streamBytes: streamBytes)
    }

    /// Writes zeros over the byte range `r`, a buffer at a time.
    private func writeZeros(_ dev: UInt64, _ r: Range<UInt64>, buffer: UnsafeMutableRawBufferPointer) throws {
        var at = r.lowerBound
        while at < r.upperBound {
            let n = Int(min(UInt64(buffer.count), r.upperBound - at))
            let b = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            b.initializeMemory(as: UInt8.self, repeating: 0)
            try pool.write(dev, offset: at, UnsafeRawBufferPointer(b))
            at += UInt64(n)
        }
    }

    /// Reads until the header is decoded, choosing the decoder: a resuming one when asked to resume.
    private func peekHeader(_ source: ByteSource, resume: Bool, receipts: [UInt64: Receipt]) throws -> StreamRecord? {
        if resume {
            // The target id may come from --as; otherwise from the interrupted receive that is partial.
            let dev = targetID ?? receipts.first(where: { $0.value.partial != nil })?.key
            if let d = dev, let p = receipts[d]?.partial {
                decoder = StreamDecoder(resumingAt: p.progress, keyring: keyring)
                if targetID == nil { targetID = d }
            }
        }
        return try nextRecord(source)
    }

    /// After the trailer: the source must end (the decoder refuses extra bytes).
    private func drain(_ source: ByteSource) throws {
        while try nextRecord(source) != nil {}
    }
}
