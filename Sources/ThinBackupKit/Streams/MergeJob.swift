import Delta
import Foundation
import PoolCore

/// What `merge` did (`--json`).
public struct MergeReport: Codable {
    public var target: String
    public var dataBlocks: UInt64
    /// Blocks of zero and discard runs made to read zeros (holes in a file, discards on a device).
    public var zeroedBlocks: UInt64
    /// Of those, bytes left unallocated (holes punched, whole receiver blocks discarded) and bytes
    /// that had to be written as zeros (unaligned edges, a device without discards).
    public var unmappedBytes: UInt64 = 0
    public var zeroWrittenBytes: UInt64 = 0
    /// Discarded blocks given the external origin's bytes (a stream with `readsOrigin`).
    public var originBlocks: UInt64 = 0
    public var streamBytes: UInt64
    public var seconds: Double
}

/// Applies a stream onto a file or block device: data records are written, zero runs made to read
/// zeros without allocating (holes in a file, discards on a block device: `ZeroingTarget`),
/// discarded runs made to read what the device reads there — zeros, or for a stream whose unmapped
/// blocks read its external origin (`readsOrigin`), the bytes of `origin` at the same offset.
/// Blocks a stream does not name are left as they are (a full stream over an origin is merged onto
/// a copy of that origin). A regular-file stream is verified completely before the first write;
/// a pipe is applied as it arrives (a bad record stops it there). A missing target file is created
/// at the stream's virtual size; a block device smaller than that is refused before any write.
/// `sync: false` leaves the final fsync to the caller (a restore merging a chain syncs once, at its end).
public func runMerge(stream: String, into target: String, quiet: Bool, source givenSource: ByteSource? = nil,
                     origin: String? = nil, keyring: StreamKeyring? = nil, sync: Bool = true) throws -> MergeReport {
    if givenSource == nil, case .file? = try? Endpoint(parsing: stream) {
        try requireOrigin(try verifyStream(source: try Transport.source(for: stream), quiet: quiet, keyring: keyring), origin: origin, stream: stream)
    }
    let source = try givenSource ?? Transport.source(for: stream)
    let originFile = try origin.map { try RandomAccessFile(path: $0, writable: false) }
    defer { originFile?.close() }
    let out = try openMergeTarget(target)
    defer { out.close() }
    let zeroing = ZeroingTarget(out)
    let meter = ProgressMeter(label: "merge", quiet: quiet)
    var d = StreamDecoder(keyring: keyring)
    // Bytes are read straight into the decoder's buffer, and a data record's frame stays there until
    // it is copied into its pipeline slot: one copy of each frame, as in a receive.
    d.framesInPlace = true
    // Frames decompress on every core while this thread writes; records are applied in stream order.
    var frames: FramePipeline?
    let originBuf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { originBuf.deallocate() }
    var header: StreamHeader?
    var report = MergeReport(target: target, dataBlocks: 0, zeroedBlocks: 0, streamBytes: 0, seconds: 0)
    var applied: UInt64 = 0
    let regular = !out.isBlockDevice
    func apply(_ r: FramePipeline.Decoded) throws {
        let h = header!
        switch r.record {
        case let .data(first, count, _):
            // The last block of a device whose size is not whole blocks ends at the device's end (the
            // decoder keeps every record inside the device's blocks, so `off` is below the size).
            let off = first * UInt64(h.blockSize)
            try out.write(UnsafeRawBufferPointer(rebasing: r.raw[0..<Int(min(UInt64(r.raw.count), h.virtualSize - off))]), at: off)
            report.dataBlocks += UInt64(count)
            applied += UInt64(r.raw.count)
        case let .discard(first, count) where h.readsOrigin:
            guard let originFile else { throw JobError(originNeeded(stream)) }
            let bs = UInt64(h.blockSize)
            var off = first * bs
            let end = min((first + count) * bs, max(h.virtualSize, off))
            while off < end {
                let k = Int(min(UInt64(originBuf.count), end - off))
                let chunk = UnsafeMutableRawBufferPointer(rebasing: originBuf[0..<k])
                let got = try originFile.read(into: chunk, at: off)
                if got < k { UnsafeMutableRawBufferPointer(rebasing: chunk[got...]).initializeMemory(as: UInt8.self, repeating: 0) }
                try out.write(UnsafeRawBufferPointer(chunk), at: off)
                off += UInt64(k)
            }
            report.originBlocks += count
        case let .zero(first, count), let .discard(first, count):
            let bs = UInt64(h.blockSize)
            let off = first * bs
            let end = min((first + count) * bs, max(h.virtualSize, off))
            try zeroing.zero(offset: off, length: end - off)
            report.zeroedBlocks += count
        case .header, .trailer, .sealed:
            break
        }
    }
    while true {
        let n = try d.fill(upTo: 1 << 20) { try source.read(into: $0) }
        if n == 0 { break }
        report.streamBytes += UInt64(n)
        while let rec = try d.next() {
            if case .header(let h) = rec {
                header = h
                frames = try FramePipeline(workers: FramePipeline.defaultWorkers, maxRecordRaw: Int(h.maxRecordRaw))
                if regular, try out.size() < h.virtualSize { try out.truncate(to: h.virtualSize) }
                if !regular, try out.size() < h.virtualSize {
                    throw JobError("\(target): the device holds \(try out.size()) bytes, the stream's device \(h.virtualSize): too small")
                }
            } else if let frames, let h = header {
                try frames.push(rec, from: d, sequence: d.progress.nextSequence - 1, blockSize: Int(h.blockSize), apply)
            }
            meter.update(done: applied, total: (header?.expectedBlocks ?? 0).saturatingMultiplied(by: UInt64(header?.blockSize ?? 0)), streamBytes: report.streamBytes)
        }
    }
    try frames?.drain(apply)
    try d.finish()
    if sync { try out.sync() }
    meter.finish()
    report.unmappedBytes = zeroing.unmappedBytes
    report.zeroWrittenBytes = zeroing.zeroWrittenBytes
    report.seconds = meter.elapsed
    return report
}

/// Opens a merge target for writing; a missing one is created as a regular file (never under /dev).
func openMergeTarget(_ target: String) throws -> RandomAccessFile {
    let create = !FileManager.default.fileExists(atPath: target) && !target.hasPrefix("/dev/")
    return try RandomAccessFile(path: target, writable: true, create: create)
}

private func originNeeded(_ stream: String) -> String {
    "\(stream): its device reads discarded blocks from an external origin: name that file with --origin FILE"
}

/// Refuses, before anything is written, a stream whose discards need the origin's bytes when none is given.
func requireOrigin(_ r: StreamVerifyReport, origin: String?, stream: String) throws {
    if r.readsOrigin, r.discardBlocks > 0, origin == nil { throw JobError(originNeeded(stream)) }
}
