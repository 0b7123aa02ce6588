import Delta
import PoolCore

/// Merges a chain of streams into a NEW file, newest stream first: a block takes the content of
/// the newest stream that names it, so once a stream is merged the blocks it names are final
/// ("covered") and the older streams' records are written only where nothing newer was.
///
/// - A data record whose blocks are all covered is not decompressed; a partly covered one is, and
///   only its uncovered blocks are written.
/// - Zero and discard records write nothing (the new file reads zeros until written) but cover
///   their blocks, so older data under them is not written either.
/// - Every stream is still read and checked whole: the decoder checks every record's bytes (the
///   CRC chain over the frame too, an encrypted record's authentication, the frame's declared size,
///   the trailer's counts and stream digest) whether or not its frame is decompressed. The frames
///   it does not decompress hold no byte of the result, whose content the caller checks.
///
/// The file must read zeros wherever it is not written (a new, empty file grown to the device's
/// size, `init`), the streams' blocks must be whole (no partial last block), and no stream may
/// read an external origin: for anything else merge oldest first (`runMerge`).
/// Memory: the covered blocks as ranges (`BlockRangeSet`), one frame pipeline for the chain.
/// After a `merge` throws, the object is not used again (its pipeline may hold records).
final class NewestFirstMerge {
    private let out: RandomAccessFile
    private let blockSize: UInt32
    /// The restored device's blocks; an older stream's blocks past them are dropped.
    private let blockCount: UInt64
    private var covered = BlockRangeSet()
    /// One frame pipeline for the whole chain (its slots' pages are touched once, not once a stream),
    /// and the largest record it takes.
    private var pipeline: (frames: FramePipeline, maxRecordRaw: Int)?
    /// Data records merged so far that were not decompressed (every block covered).
    private(set) var skippedRecords: UInt64 = 0
    private(set) var decompressedRecords: UInt64 = 0

    /// `file` is empty; it is grown to `virtualSize` (whole blocks of `blockSize`), reading zeros.
    init(file: RandomAccessFile, blockSize: UInt32, virtualSize: UInt64) throws {
        precondition(blockSize > 0 && virtualSize % UInt64(blockSize) == 0, "whole blocks only")
        out = file
        self.blockSize = blockSize
        blockCount = virtualSize / UInt64(blockSize)
        try file.truncate(to: virtualSize)
    }

    /// Merges the next stream (each one older than the one before). `label` names it in progress
    /// lines. The report's `dataBlocks` are the blocks written, `zeroedBlocks` the blocks of zero and
    /// discard records (left as holes), `streamBytes` every byte read.
    func merge(_ source: any ByteSource, keyring: StreamKeyring?, label: String, quiet: Bool,
               expect: MergeExpectation?) throws -> MergeReport {
        let meter = ProgressMeter(label: label, quiet: quiet)
        var d = StreamDecoder(keyring: keyring)
        d.framesInPlace = true
        var frames: FramePipeline?
        var header: StreamHeader?
        var report = MergeReport(target: "", dataBlocks: 0, zeroedBlocks: 0, streamBytes: 0, seconds: 0)
        // Progress: the bytes of the data and zero records read so far, written or not (the header's
        // `expectedBlocks` counts those), so a stream mostly covered by newer ones still ends at 100 %.
        var passed: UInt64 = 0
        // This stream's blocks: covered once it has ended, not before (the set the workers read
        // stays as it is while they write; the decoder refuses records that overlap or go back).
        var mine = BlockRangeSet()
        let bs = UInt64(blockSize)
        let blockCount = blockCount
        /// The blocks of a record that lie in the restored device.
        func live(_ first: UInt64, _ count: UInt64) -> Range<UInt64> { min(first, blockCount)..<min(first + count, blockCount) }
        // The workers write what they decompressed (`onWorker`: the blocks of a stream never overlap,
        // and the covered set does not change until the stream has ended); this thread counts.
        func apply(_ r: FramePipeline.Decoded) throws {
            guard case let .data(first, count, _) = r.record else { return }
            covered.gaps(in: live(first, UInt64(count))) { g in report.dataBlocks += UInt64(g.count) }
        }
        while true {
            let n = try d.fill(upTo: 1 << 20) { try source.read(into: $0) }
            if n == 0 { break }
            report.streamBytes += UInt64(n)
            while let rec = try d.next() {
                switch rec {
                case .header(let h):
                    try expect?.header(h)
                    guard h.blockSize == blockSize else {
                        throw StreamError.badRecord(sequence: 0, reason: "its blocks are \(h.blockSize) bytes, the restored device's \(blockSize)")
                    }
                    header = h
                    if pipeline == nil || pipeline!.maxRecordRaw < Int(h.maxRecordRaw) {
                        pipeline = (try FramePipeline(workers: FramePipeline.defaultWorkers, maxRecordRaw: Int(h.maxRecordRaw)),
                                    Int(h.maxRecordRaw))
                    }
                    frames = pipeline!.frames
                    frames!.onWorker = Self.writer(out, covered: covered, blockSize: bs, blockCount: blockCount)
                case let .data(first, count, _):
                    mine.insert(first..<first + UInt64(count))
                    passed += UInt64(count) * bs
                    if covered.contains(live(first, UInt64(count))) {
                        skippedRecords += 1
                    } else {
                        decompressedRecords += 1
                        try frames!.push(rec, from: d, sequence: d.progress.nextSequence - 1, blockSize: Int(blockSize), apply)
                    }
                case let .zero(first, count), let .discard(first, count):
                    mine.insert(first..<first + count)
                    report.zeroedBlocks += count
                    if case .zero = rec { passed += count * bs }
                case .trailer, .sealed:
                    break
                }
                meter.update(done: passed, total: (header?.expectedBlocks ?? 0).saturatingMultiplied(by: bs),
                             streamBytes: report.streamBytes)
            }
        }
        try frames?.drain(apply)
        try d.finish()
        try expect?.trailer(d.trailer)
        covered.formUnion(mine)
        meter.finish()
        report.seconds = meter.elapsed
        return report
    }

    /// What a worker does with a decompressed record: writes its blocks that `covered` leaves
    /// out (and lie in the device) and starts their writeback, so that the final sync waits for little.
    private static func writer(_ out: RandomAccessFile, covered: BlockRangeSet, blockSize bs: UInt64, blockCount: UInt64)
        -> @Sendable (UInt64, UnsafeRawBufferPointer) throws -> Void {
        { first, raw in
            let end = first + UInt64(raw.count) / bs
            try covered.gaps(in: min(first, blockCount)..<min(end, blockCount)) { g in
                let from = Int((g.lowerBound - first) * bs), to = Int((g.upperBound - first) * bs)
                try out.write(UnsafeRawBufferPointer(rebasing: raw[from..<to]), at: g.lowerBound * bs)
                out.startWriteback(offset: g.lowerBound * bs, length: UInt64(to - from))
            }
        }
    }
}

/// What a caller requires of a stream it merges, checked as the stream is read: `header` before
/// anything is written, `trailer` once the stream has ended (a restore's catalog says what each
/// stream of its chain holds). Either throws to stop the merge.
public struct MergeExpectation {
    public var header: (StreamHeader) throws -> Void
    public var trailer: (StreamTrailer?) throws -> Void
    public init(header: @escaping (StreamHeader) throws -> Void, trailer: @escaping (StreamTrailer?) throws -> Void) {
        self.header = header
        self.trailer = trailer
    }
}
