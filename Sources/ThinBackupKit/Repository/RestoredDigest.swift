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
func checkRestoredDigest(_ path: String, _ backup: BackupRecord, quiet: Bool) throws {
    let bs = Int(backup.blockSize)
    let f = try RandomAccessFile(path: path, writable: false)
    defer { f.close() }
    let size = try f.size()
    if size < backup.virtualSize { throw JobError("\(path): ends at \(size) bytes, the backup holds \(backup.virtualSize)") }
    let per = max(1, (8 << 20) / bs)
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: per * bs, alignment: 4096)
    defer { buf.deallocate() }
    let meter = ProgressMeter(label: "restore: check", quiet: quiet)
    // The send's reader of a data file: it knows where the holes are, asking the file system once per run.
    let extents = FileDataBlockReader(file: f, blockSize: bs)
    var d = ContentDigest()
    var off: UInt64 = 0
    while off < backup.virtualSize {
        var n = Int(min(UInt64(buf.count), backup.virtualSize - off))
        let e = extents.extent(dataBlock: off / UInt64(bs), count: (n + bs - 1) / bs)
        if e.zeros {
            off = min(backup.virtualSize, off + UInt64(e.blocks) * UInt64(bs))
            meter.update(done: off, total: backup.virtualSize, streamBytes: 0)
            continue
        }
        n = min(n, e.blocks * bs)
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
        // `read` fills the chunk unless the file ends first.
        let got = try f.read(into: chunk, at: off)
        if got < n { throw JobError("\(path): ends at \(off + UInt64(got)) bytes, the backup holds \(backup.virtualSize)") }
        d.add(blocks: UnsafeRawBufferPointer(chunk), from: off / UInt64(bs), blockSize: bs)
        off += UInt64(n)
        meter.update(done: off, total: backup.virtualSize, streamBytes: 0)
    }
    meter.finish()
    guard d.value.description == backup.digest else {
        throw JobError("backup \(backup.id.map(String.init) ?? "?"): the restored content has digest \(d.value), the catalog says \(backup.digest)")
    }
}
