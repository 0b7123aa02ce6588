import Delta
import Foundation
import PoolCore

/// A pool as `send` and `verify` read it: the metadata (live or through the held metadata
/// snapshot), the data device, and the sidecar when the pool is a folder.
struct PoolSource {
    let metadataPath: String
    let dataPath: String
    let sidecarPath: String?

    init(pool: String?, metadata: String?, data: String?) throws {
        if let pool {
            metadataPath = "\(pool)/metadata"
            dataPath = "\(pool)/data"
            sidecarPath = "\(pool)/pool.json"
        } else if let metadata, let data {
            metadataPath = metadata
            dataPath = data
            sidecarPath = nil
        } else {
            throw CommandFailure("give the pool as --pool DIR or as --metadata FILE --data FILE", exitCode: 64)
        }
    }

    var sidecar: PoolSidecar {
        get throws { try sidecarPath.map(PoolSidecar.load) ?? PoolSidecar() }
    }

    /// Virtual size of `dev`: `override`, else the sidecar's, else the data device's size.
    func virtualSize(of dev: UInt64, data: RandomAccessFile, override: UInt64?) throws -> UInt64 {
        if let override { return override }
        if let s = try sidecar.devices[String(dev)]?.size { return s }
        return try data.size()
    }

    /// The sending pool's identity: its superblock UUID, or the id kept in its sidecar.
    func identity(_ sb: Superblock) throws -> Digest128 {
        if sb.uuid.contains(where: { $0 != 0 }) {
            let u = sb.uuid
            let hi = u[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let lo = u[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            return Digest128(high: hi, low: lo)
        }
        if let s = try sidecar.annotations?["pool.id"], let d = Digest128(hex: s) { return d }
        return .zero
    }
}

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

func randomDigest() -> Digest128 { Digest128(high: UInt64.random(in: 1 ... .max), low: UInt64.random(in: 0 ... .max)) }
