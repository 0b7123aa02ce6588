import Foundation
import PoolCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetadataEntry(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 { fuzzMetadata(data, size) }

/// Input: byte 0 picks the mode (bit 0: reseal every block's checksum and location for the kind
/// its header suggests, so mutations reach the structure checks; bit 1: then change the image
/// through the write path, `changeThroughTheWritePath`), the rest is a metadata image
/// (4096-byte blocks; the last one zero-padded; at least 64 and at most 1024 blocks).
func fuzzMetadata(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 1 else { return 0 }
    let body = UnsafeBufferPointer(start: data + 1, count: min(size - 1, 1024 * 4096))
    let count = (body.count + 4095) / 4096
    // Seeds drop their trailing zero blocks: every image has at least 64 blocks (256 KiB).
    let dev = MemoryMetadataDevice(blockCount: UInt64(max(count, 64)))
    for i in 0..<count {
        var block = [UInt8](repeating: 0, count: 4096)
        let n = min(4096, body.count - i * 4096)
        for k in 0..<n { block[k] = body[i * 4096 + k] }
        if data[0] & 1 != 0 { Checksum.seal(&block, kind: guessKind(block, i), location: UInt64(i)) }
        try? dev.writeBlock(UInt64(i), block)
    }
    if let r = try? MetadataReader(source: dev) {
        var views = [r.live]
        if let held = try? r.metadataSnapshot() { views.append(held) }
        for view in views {
            guard let devs = try? view.devices() else { continue }
            for (id, _) in devs.prefix(8) {
                var n = 0
                try? view.forEachMapping(of: id) { _, _ in
                    n += 1
                    if n > 100_000 { throw CancellationError() }
                }
            }
        }
    }
    _ = try? MetadataChecker(source: dev).check()
    if data[0] & 2 != 0 { changeThroughTheWritePath(dev) }
    return 0
}

/// Scratch files for the write-path mode (one process, one input at a time).
let scratch: String = {
    let d = NSTemporaryDirectory() + "/fuzz-metadata-\(getpid())"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}()

/// Mode bit 1: opens the image as a pool (`ThinPool` over a metadata file and an empty sparse
/// data file: the write path — space maps loaded, nodes shadowed, counts changed, data written)
/// and makes one change of every kind on the devices found, then commits. Any step may fail
/// on damaged metadata; none may trap.
func changeThroughTheWritePath(_ dev: MemoryMetadataDevice) {
    var image = Data(capacity: Int(dev.blockCount) * 4096)
    for b in 0..<dev.blockCount { image.append(contentsOf: dev.blocks[b] ?? [UInt8](repeating: 0, count: 4096)) }
    let meta = scratch + "/metadata", data = scratch + "/data"
    guard FileManager.default.createFile(atPath: meta, contents: image),
          FileManager.default.createFile(atPath: data, contents: nil) else { return }
    guard let pool = try? ThinPool(metadataPath: meta, dataPath: data, sidecarPath: nil) else { return }
    defer { pool.close() }
    guard let ids = try? pool.devices() else { return }
    // Data steps only for blocks up to 1 MiB (a valid 1 GiB block would cost a second per input).
    let block = [UInt8](repeating: 0x5A, count: Int(min(pool.dataBlockSize, 1 << 20)))
    var steps: [(ThinPool) throws -> Void] = []
    for id in ids.prefix(4) where pool.dataBlockSize <= 1 << 20 {
        for v in UInt64(0)..<2 { _ = try? pool.readBlock(id, v) }
        steps.append { p in try p.writeBlock(id, 0, block) }
        steps.append { p in try p.write(id, offset: 1, [1, 2, 3]) }
        steps.append { p in try p.discard(id, blocks: 1..<3) }
    }
    if let first = ids.first { steps.append { p in try p.snapshot(origin: first, as: (ids.last ?? 0) + 1) } }
    if ids.count > 1, let last = ids.last { steps.append { p in try p.delete(last) } }
    steps.append { p in try p.createThin((ids.last ?? 0) + 2, virtualSize: 1 << 20) }
    steps.append { p in
        if p.heldMetadataSnapshot != nil { try p.releaseMetadataSnapshot() } else { try p.reserveMetadataSnapshot() }
    }
    steps.append { p in try p.commit() }
    for step in steps {
        do { try step(pool) } catch { return }
    }
}

/// Block 0 is the superblock; a B-tree node has flags 1 (internal) or 2 (leaf) at byte 4;
/// an index block's first entry names a plausible bitmap block; anything else is a bitmap.
func guessKind(_ b: [UInt8], _ i: Int) -> BlockKind {
    if i == 0 { return .superblock }
    if b[4] == 1 || b[4] == 2, b[5] == 0, b[6] == 0, b[7] == 0 { return .node }
    let first = (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[16 + $1]) << (8 * UInt64($1)) }
    return first > 0 && first < 1 << 20 ? .index : .bitmap
}
