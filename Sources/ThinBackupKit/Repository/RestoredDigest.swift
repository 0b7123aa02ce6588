import Delta
import Foundation
import PoolCore

/// Whether `path` is a pool folder (a folder holding `metadata`).
func isPoolFolder(_ path: String) -> Bool {
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path + "/metadata", isDirectory: &isDir) && !isDir.boolValue
}

/// Reads a restored file or block device back and checks that its first `backup.virtualSize`
/// bytes have the content digest the catalog records for `backup` (blocks of the backup's block
/// size; the size is whole blocks). The end-to-end check of a restore into a file or device: the
/// streams' frames were decompressed once, by the merge that wrote them.
///
/// The holes of a sparse file are not read: they read as zeros, and all-zero blocks add nothing to
/// the digest. Reading them would have the kernel allocate and zero a page-cache page for every
/// byte of them (a tenth of a restore's CPU on a device with unwritten space). A block device is
/// read whole (`extent` reports it as data).
///
/// The digest is a sum over blocks, so `threads` readers (one per core) share the work: chunks of
/// `chunkBytes` (8 MiB, whole blocks) taken in turn, each reader with its own buffer, file and hole
/// finder; their sums are added. A reader reads 1 MiB (whole blocks) at a time: a buffer that stays
/// in the cache while it is hashed, and whose first touch costs 256 page faults, not 2048.
func checkRestoredDigest(_ path: String, _ backup: BackupRecord, quiet: Bool,
                         threads: Int = FramePipeline.defaultWorkers, chunkBytes: Int = 8 << 20) throws {
    let bs = Int(backup.blockSize)
    let total = backup.virtualSize
    do {
        let f = try RandomAccessFile(path: path, writable: false)
        defer { f.close() }
        let size = try f.size()
        if size < total { throw JobError("\(path): ends at \(size) bytes, the backup holds \(total)") }
    }
    let chunk = UInt64(max(1, chunkBytes / bs) * bs)
    let chunks = Int((total + chunk - 1) / chunk)
    let readers = max(1, min(threads, chunks))
    let piece = max(1, (1 << 20) / bs) * bs
    let shared = ReadBack(meter: ProgressMeter(label: "restore: check", quiet: quiet), total: total)
    DispatchQueue.concurrentPerform(iterations: readers) { r in
        do {
            let f = try RandomAccessFile(path: path, writable: false)
            defer { f.close() }
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: piece, alignment: 4096)
            defer { buf.deallocate() }
            // The send's reader of a data file: it knows where the holes are, asking the file system once per run.
            let extents = FileDataBlockReader(file: f, blockSize: bs)
            var d = ContentDigest()
            for k in stride(from: r, to: chunks, by: readers) where !shared.failed {
                let end = min(total, UInt64(k + 1) * chunk)
                var off = UInt64(k) * chunk
                while off < end {
                    let e = extents.extent(dataBlock: off / UInt64(bs), count: Int((end - off + UInt64(bs) - 1) / UInt64(bs)))
                    var n = Int(min(end - off, UInt64(e.blocks) * UInt64(bs)))
                    if !e.zeros {
                        n = min(n, piece)
                        let part = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
                        // `read` fills the part unless the file ends first.
                        let got = try f.read(into: part, at: off)
                        if got < n { throw JobError("\(path): ends at \(off + UInt64(got)) bytes, the backup holds \(total)") }
                        d.add(blocks: UnsafeRawBufferPointer(part), from: off / UInt64(bs), blockSize: bs)
                    }
                    off += UInt64(n)
                }
                shared.done(end - UInt64(k) * chunk)
            }
            shared.add(d.value)
        } catch {
            shared.fail(error)
        }
    }
    let digest = try shared.result()
    guard digest.description == backup.digest else {
        throw JobError("backup \(backup.id.map(String.init) ?? "?"): the restored content has digest \(digest), the catalog says \(backup.digest)")
    }
}

/// What the readers of `checkRestoredDigest` share: the digest's sum, the first error, the progress.
private final class ReadBack: @unchecked Sendable {
    private let lock = NSLock()
    private var sum = ContentDigest()
    private var error: (any Error)?
    private var bytes: UInt64 = 0
    private let meter: ProgressMeter
    private let total: UInt64

    init(meter: ProgressMeter, total: UInt64) {
        self.meter = meter
        self.total = total
    }

    var failed: Bool { lock.withLock { error != nil } }

    func done(_ n: UInt64) {
        lock.withLock {
            bytes += n
            meter.update(done: bytes, total: total, streamBytes: 0)
        }
    }

    func add(_ d: Digest128) { lock.withLock { sum.add(d) } }

    func fail(_ e: any Error) { lock.withLock { if error == nil { error = e } } }

    /// The digest of the whole, or the first error.
    func result() throws -> Digest128 {
        try lock.withLock {
            if let error { throw error }
            meter.finish()
            return sum.value
        }
    }
}
