import Delta
import Foundation
import PoolCore

/// What `merge --dm-pool P --dev N --into ORIGIN` (or `--lv`, `--pool`) is asked to do.
public struct OriginMergeRequest {
    public var pool: any PoolAccess
    public var dev: UInt64
    public var origin: String
    /// After the verified merge, delete the device and create it again, empty, over the origin.
    public var reset = false
    public var quiet = true
}

/// What an origin merge did (`--json`).
public struct OriginMergeReport: Codable {
    public var origin: String
    public var dev: UInt64
    /// Mapped blocks of the device written into the origin, and their bytes (clipped to the origin's end).
    public var mappedBlocks: UInt64
    public var bytesWritten: UInt64
    /// ContentDigest of the written blocks, as the check read them and as the origin reads them after.
    public var digest: String
    public var verifiedAgainst: String
    public var reset: Bool
    public var seconds: Double
}

/// Writes exactly the mapped blocks of a thin device made over an external origin back into that
/// origin, so the origin alone reads as the device did.
///
/// 1. The pool's rules (`beginOriginMerge`: a kernel device must be inactive — device-mapper
///    holds the origin while any device over it is active — a userspace pool is locked) and the
///    origin's (writable, nobody holds it or has it open for writing); the mappings are frozen
///    (a held metadata snapshot on a kernel pool).
/// 2. Check pass: every mapped block read from the data device (O_DIRECT) must equal the pool's
///    own read of the device (the kernel's, through a temporary read-only activation over the
///    origin); their digest is kept. A difference stops here, with nothing written.
/// 3. The origin is opened exclusively (O_EXCL, O_DIRECT on a block device), the blocks written,
///    flushed, read back and their digest compared with the check's.
/// 4. With `reset`, the device is deleted and created again, empty, over the origin.
public func runOriginMerge(_ req: OriginMergeRequest) throws -> OriginMergeReport {
    let t0 = ProgressMeter.now()
    guard let source = req.pool as? any OriginMergeSource else {
        throw JobError(.usage, "\(req.pool.name): merge --into an origin works on kernel pools (--dm-pool, --lv) and pool folders (--pool)")
    }
    let session = try source.beginOriginMerge(dev: req.dev)
    defer { session.close() }
    let origin = try OriginTarget.inspect(req.origin)
    try session.requireOrigin(origin)
    try origin.refuseUnsafe()
    let bs = UInt64(session.blockSize)
    let runs = try mappedRuns(session.view, dev: req.dev)
    if let last = runs.last, case let (at, over) = (last.virtual + last.count - 1).multipliedReportingOverflow(by: bs), over || at >= origin.size {
        throw JobError("thin device \(req.dev) maps block \(last.virtual + last.count - 1), past the end of \(req.origin) "
            + "(\(origin.size) bytes): the origin is too small to take it; nothing was written")
    }
    let pieces = mergePieces(runs, maxBlocks: max(1, UInt64(4 << 20) / bs))
    // Two aligned buffers (O_DIRECT): the data device's bytes and the check read's.
    let bufferBytes = max(4096, Int(min(pieces.map(\.count).max() ?? 1, max(1, UInt64(4 << 20) / bs)) * bs))
    let first = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 4096)
    let second = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferBytes, alignment: 4096)
    defer { first.deallocate(); second.deallocate() }
    func dataBuffer(_ n: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: first[0..<n]) }
    func checkBuffer(_ n: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: second[0..<n]) }
    func length(_ p: MappedRun) -> Int { Int(min(p.count * bs, origin.size - p.virtual * bs)) }

    // 2. Check pass.
    let meter = ProgressMeter(label: "merge", quiet: req.quiet)
    let total = runs.reduce(UInt64(0)) { $0 + $1.count } * bs
    var expected = ContentDigest()
    var done: UInt64 = 0
    let check = try session.openCheckReader(origin: origin)
    do {
        for p in pieces {
            let n = length(p)
            try session.data.read(dataBlock: p.data, into: dataBuffer(Int(p.count * bs)))
            try check.read(into: checkBuffer(n), at: p.virtual * bs)
            guard memcmp(dataBuffer(n).baseAddress!, checkBuffer(n).baseAddress!, n) == 0 else {
                throw JobError("thin device \(req.dev): \(session.checkName) differs from its mapping (virtual block \(p.virtual), "
                    + "data block \(p.data)) in the frozen metadata; nothing was written")
            }
            expected.add(blocks: UnsafeRawBufferPointer(dataBuffer(n)), from: p.virtual, blockSize: Int(bs))
            done += UInt64(n)
            meter.update(done: done, total: 2 * total, streamBytes: 0)
        }
        try check.close()
    } catch {
        try? check.close()
        throw error
    }
    try session.requireUnchanged("changed before the merge wrote anything; nothing was written")

    // 3. Write, flush, read back.
    try origin.refuseWriters()
    let out = try openOriginForWriting(req.origin)
    defer { out.close() }
    var written: UInt64 = 0
    for p in pieces {
        let n = length(p)
        try session.data.read(dataBlock: p.data, into: dataBuffer(Int(p.count * bs)))
        try out.write(UnsafeRawBufferPointer(dataBuffer(n)), at: p.virtual * bs)
        written += UInt64(n)
        meter.update(done: done + written, total: 2 * total, streamBytes: 0)
    }
    try out.sync()
    var readBack = ContentDigest()
    for p in pieces {
        let n = length(p)
        _ = try out.read(into: checkBuffer(n), at: p.virtual * bs)
        readBack.add(blocks: UnsafeRawBufferPointer(checkBuffer(n)), from: p.virtual, blockSize: Int(bs))
    }
    meter.finish()
    guard readBack == expected else {
        throw JobError("\(req.origin) reads back differently (digest \(readBack.value)) from \(session.checkName) "
            + "(digest \(expected.value)) after the merge: check the device; the thin device is unchanged")
    }
    try session.requireUnchanged("changed while the merge wrote its blocks: the origin holds its state from before")
    out.close()
    if req.reset { try session.reset() }
    return OriginMergeReport(origin: req.origin, dev: req.dev, mappedBlocks: runs.reduce(0) { $0 + $1.count },
                             bytesWritten: written, digest: expected.value.description, verifiedAgainst: session.checkName,
                             reset: req.reset, seconds: ProgressMeter.now() - t0)
}

/// The origin opened for writing (O_EXCL and O_DIRECT on a block device); a holder named in one line.
private func openOriginForWriting(_ path: String) throws -> RandomAccessFile {
    let opened: Result<RandomAccessFile, any Error> = Result { try RandomAccessFile(path: path, writable: true) }
    if case let .failure(e) = opened, let m = e as? MetadataError, case let .deviceInUse(_, holders) = m {
        throw JobError("\(path) is held by \(holders.isEmpty ? "another exclusive opener (a mount?)" : holders.joined(separator: ", ")); nothing was written")
    }
    return try opened.get()
}
