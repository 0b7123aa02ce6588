import Delta
import Foundation
import PoolCore

/// A pool folder: the device's origin is the `--origin-file` recorded in pool.json; the pool is
/// held open (locked) for the whole merge, so nothing changes the device meanwhile; the check
/// read is PoolCore's read of the device.
extension UserspacePool: OriginMergeSource {
    public func beginOriginMerge(dev: UInt64) throws -> any OriginMergeSession {
        let p = try userspacePool(readOnly: false)
        do {
            guard try p.devices().contains(dev) else { throw JobError("\(name) has no thin device \(dev)") }
            return try UserspaceOriginMergeSession(access: self, pool: p, dev: dev)
        } catch {
            p.close()
            throw error
        }
    }
}

final class UserspaceOriginMergeSession: OriginMergeSession {
    let pool: ThinPool
    let dev: UInt64
    let view: MetadataView
    let data: any DataBlockReader
    let blockSize: Int
    var checkName: String { "the pool's read of thin device \(dev)" }

    init(access: UserspacePool, pool: ThinPool, dev: UInt64) throws {
        self.pool = pool
        self.dev = dev
        view = try pool.currentView().live
        blockSize = Int(pool.dataBlockSize)
        data = try access.dataReader(blockSize: blockSize)
    }

    /// pool.json must name `origin` as the device's origin file, and no other device may read it
    /// (a snapshot of the device, another clone: merging would change what they read).
    func requireOrigin(_ origin: OriginTarget) throws {
        guard let path = pool.originFile(of: dev) else {
            throw JobError("thin device \(dev) has no external origin (pool create-thin --origin-file): nothing to merge into")
        }
        guard origin.isSame(as: path) else {
            throw JobError("thin device \(dev) reads its unmapped blocks from \(path), not \(origin.path); nothing was written")
        }
        let others = try pool.devices().filter { $0 != dev && pool.originFile(of: $0).map(origin.isSame) == true }
        if !others.isEmpty {
            throw JobError("thin devices \(others.map(String.init).joined(separator: ", ")) also read \(origin.path) where they have "
                + "no mapping: merging would change them; delete them first; nothing was written")
        }
    }

    func openCheckReader(origin: OriginTarget) throws -> any OriginCheckReader { PoolCheckReader(pool: pool, dev: dev) }

    /// The pool stays locked for the whole merge; this still compares the mapping roots.
    func requireUnchanged(_ when: String) throws {
        guard try pool.currentView().live.mappingRoot(of: dev) == view.mappingRoot(of: dev) else {
            throw JobError("thin device \(dev) \(when)")
        }
    }

    func reset() throws {
        let size = try pool.virtualSize(of: dev)
        let origin = pool.originFile(of: dev)
        try pool.delete(dev)
        try pool.createThin(dev, virtualSize: size, originFile: origin)
        try pool.commit()
    }

    func close() { pool.close() }
}

final class PoolCheckReader: OriginCheckReader {
    let pool: ThinPool
    let dev: UInt64

    init(pool: ThinPool, dev: UInt64) {
        self.pool = pool
        self.dev = dev
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let bytes = try pool.read(dev, offset: offset, count: buffer.count)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    }

    func close() {}
}
