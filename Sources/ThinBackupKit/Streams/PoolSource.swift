import Delta
import Foundation
import PoolCore

/// Every mapping of `dev`, coalesced into runs contiguous in virtual and data blocks (a full send's "diff").
func mappingRuns(_ view: MetadataView, _ dev: UInt64, _ body: (DeltaRun) throws -> Void) throws {
    var cur: DeltaRun?
    try view.forEachMapping(of: dev) { v, m in
        if var c = cur, c.end == v, c.rightData! + c.length == m.dataBlock {
            c.length += 1
            cur = c
        } else {
            if let c = cur { try body(c) }
            cur = DeltaRun(kind: .rightOnly, begin: v, length: 1, leftData: nil, rightData: m.dataBlock)
        }
    }
    if let c = cur { try body(c) }
}

/// The content digest of `dev` (reads every mapped block once).
func deviceDigest(_ view: MetadataView, _ dev: UInt64, reader: DataBlockReader, onBytes: ((UInt64) -> Void)? = nil) throws -> Digest128 {
    let bs = reader.blockSize
    let per = max(1, (8 << 20) / bs)
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: per * bs, alignment: 4096)
    defer { buf.deallocate() }
    var d = ContentDigest()
    var done: UInt64 = 0
    try mappingRuns(view, dev) { run in
        var i: UInt64 = 0
        while i < run.length {
            let n = Int(min(UInt64(per), run.length - i))
            let b = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n * bs])
            try reader.read(dataBlock: run.rightData! + i, into: b)
            d.add(blocks: UnsafeRawBufferPointer(b), from: run.begin + i, blockSize: bs)
            i += UInt64(n)
            done += UInt64(n * bs)
            onBytes?(done)
        }
    }
    return d.value
}

extension SnapshotIdentity {
    init(_ dev: UInt64, _ d: DeviceDetails) {
        self.init(device: dev, creationTime: d.creationTime, snapshottedTime: d.snapshottedTime, transactionID: d.transactionID)
    }
}
