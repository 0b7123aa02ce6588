import Delta
import PoolCore

/// What an origin merge needs from a kind of pool: a frozen view of the device's mappings, its
/// data blocks, a second read of the device as the pool itself serves it (the check), and the
/// reset. Kernel pools (`--dm-pool`, `--lv`) and the userspace pool (`--pool`) conform.
public protocol OriginMergeSource: PoolAccess {
    /// Checks that `dev` may be merged now (the kind's rules: it exists, nothing writes it) and
    /// freezes its mappings for the merge.
    func beginOriginMerge(dev: UInt64) throws -> any OriginMergeSession
}

public protocol OriginMergeSession: AnyObject {
    /// The device's mappings as the merge writes them (unchanged until `close`).
    var view: MetadataView { get }
    /// The pool's data blocks (O_DIRECT on a block device).
    var data: any DataBlockReader { get }
    var blockSize: Int { get }
    /// How the check read is named in messages and the report ("the kernel's read of thin device 1").
    var checkName: String { get }
    /// Fails unless `origin` is the device's external origin as far as the pool knows it.
    func requireOrigin(_ origin: OriginTarget) throws
    /// Opens the check read of the device over `origin`; it is closed before the origin is
    /// opened for writing (a kernel thin device over the origin holds it).
    func openCheckReader(origin: OriginTarget) throws -> any OriginCheckReader
    /// Fails when the device's mappings changed since the view was taken.
    func requireUnchanged(_ when: String) throws
    /// After a verified merge: the device deleted and created again, empty, over the origin.
    func reset() throws
    /// Releases what the session holds (the metadata snapshot, the pool).
    func close()
}

/// Reads a thin device's bytes as its pool serves them.
public protocol OriginCheckReader: AnyObject {
    /// Fills `buffer` from byte `offset` of the device.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    /// Ends the read (idempotent); the origin is free to be written after.
    func close() throws
}

/// A mapped run of a thin device: `count` virtual blocks from `virtual`, on data blocks from `data`.
public struct MappedRun: Equatable, Sendable {
    public var virtual: UInt64
    public var data: UInt64
    public var count: UInt64
}

/// The device's mappings as runs contiguous in both virtual and data blocks, ascending.
public func mappedRuns(_ view: MetadataView, dev: UInt64) throws -> [MappedRun] {
    var runs: [MappedRun] = []
    try view.forEachMapping(of: dev) { v, m in
        if var last = runs.last, last.virtual + last.count == v, last.data + last.count == m.dataBlock {
            last.count += 1
            runs[runs.count - 1] = last
        } else {
            runs.append(MappedRun(virtual: v, data: m.dataBlock, count: 1))
        }
    }
    return runs
}

/// Pieces of at most `maxBlocks` blocks of each run, in order (the merge's unit of I/O).
public func mergePieces(_ runs: [MappedRun], maxBlocks: UInt64) -> [MappedRun] {
    var out: [MappedRun] = []
    let step = max(1, maxBlocks)
    for r in runs {
        var done: UInt64 = 0
        while done < r.count {
            let n = min(step, r.count - done)
            out.append(MappedRun(virtual: r.virtual + done, data: r.data + done, count: n))
            done += n
        }
    }
    return out
}
