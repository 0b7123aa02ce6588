import Delta
import Foundation
import PoolCore

/// Kernel pools (raw dm and LVM): the thin device must be inactive — while any device over the
/// origin is active, device-mapper holds the origin and nothing else may write it (the kernel
/// refuses our O_EXCL open) — its mappings are frozen by a held metadata snapshot, and the check
/// read is the kernel's own: the device activated read-only over the origin for the check pass.
extension KernelPoolAccess: OriginMergeSource {
    public func beginOriginMerge(dev: UInt64) throws -> any OriginMergeSession {
        guard try deviceExists(dev) else { throw JobError("\(name) has no thin device \(dev)") }
        if let active = try pool.activeThins()[dev], let a = active.first {
            let over = a.table.externalOrigin.map { " over \(BlockDevices.path(of: $0) ?? $0)" } ?? " (with no external origin in its table)"
            throw JobError("thin device \(dev) is active as \(a.name)\(over): stop its users and deactivate it "
                + "(dmsetup remove \(a.name), or lvchange -an) before merging; nothing was written")
        }
        let session = try openMetadata(.reserve, command: "merge")
        do {
            return try KernelOriginMergeSession(access: self, session: session, dev: dev)
        } catch {
            session.close()
            throw error
        }
    }
}

final class KernelOriginMergeSession: OriginMergeSession {
    let access: KernelPoolAccess
    let session: MetadataSession
    let dev: UInt64
    let data: any DataBlockReader
    var view: MetadataView { session.view }
    var blockSize: Int { access.pool.blockSize }
    var checkName: String { "the kernel's read of thin device \(dev)" }

    init(access: KernelPoolAccess, session: MetadataSession, dev: UInt64) throws {
        self.access = access
        self.session = session
        self.dev = dev
        data = try access.dataReader(blockSize: access.pool.blockSize)
    }

    /// The kernel keeps no record of an inactive device's origin; an LVM volume's is in LVM's.
    func requireOrigin(_ origin: OriginTarget) throws {
        guard origin.isBlockDevice, origin.number != nil else {
            throw JobError("\(origin.path): a kernel thin device's external origin is a block device")
        }
        // The report the pool was opened with: nothing here changes the volume group.
        if let access = access as? LVMPoolAccess, let lv = try access.volumes()[dev] {
            guard !lv.origin.isEmpty else { throw JobError("\(lv.fullName) has no external origin: nothing to merge into") }
            if try access.lvm.report().contains(where: { $0.name == lv.origin && $0.isThin }) {
                throw JobError("\(lv.fullName) is a thin snapshot of the thin volume \(lv.vg)/\(lv.origin), not a volume over an external origin")
            }
            let path = "/dev/\(lv.vg)/\(lv.origin)"
            guard origin.isSame(as: path) else {
                throw JobError("\(lv.fullName) reads its unmapped blocks from \(path), not \(origin.path); nothing was written")
            }
        }
    }

    func openCheckReader(origin: OriginTarget) throws -> any OriginCheckReader {
        try KernelCheckReader(pool: access.pool, dev: dev, origin: origin)
    }

    func requireUnchanged(_ when: String) throws {
        let live = try access.readMetadata().live
        guard try live.mappingRoot(of: dev) == session.view.mappingRoot(of: dev) else {
            throw JobError("thin device \(dev) \(when)")
        }
    }

    /// `delete N` and `create_thin N` (raw dm only; LVM keeps its own record of its volumes).
    func reset() throws {
        if access is LVMPoolAccess {
            throw JobError(.usage, "--reset works on raw dm pools; with LVM remove and create the volume again (lvremove, lvcreate -s ORIGIN --thinpool POOL)")
        }
        session.close()
        try access.pool.requireWritable()
        try DeviceMapper.message(access.pool.dmName, "delete \(dev)")
        try DeviceMapper.message(access.pool.dmName, "create_thin \(dev)")
    }

    func close() { session.close() }
}

/// The device activated read-only over the origin under a name of ours, read with O_DIRECT, and
/// removed again by `close()` (or on SIGINT/SIGTERM).
final class KernelCheckReader: OriginCheckReader {
    let name: String
    private let file: RandomAccessFile
    private let cleanup: Interrupts.Cleanup
    private var closed = false

    init(pool: KernelThinPool, dev: UInt64, origin: OriginTarget) throws {
        name = "thin-backup-merge-\(getpid())-\(dev)"
        let sectors = origin.size / 512
        let table = DMTarget(start: 0, length: sectors, type: "thin", params: "\(pool.number) \(dev) \(origin.number!)")
        do {
            try DeviceMapper.create(name, table, readOnly: true)
        } catch {
            throw JobError("cannot activate thin device \(dev) read-only over \(origin.path) to check it: \(error)")
        }
        let n = name
        let c = Interrupts.shared.register("remove \(n)") { try? DeviceMapper.remove(n) }
        do {
            guard let info = try DeviceMapper.info(n), let path = BlockDevices.path(of: "\(info.major):\(info.minor)") else {
                throw JobError("\(n): no device node after activation")
            }
            file = try RandomAccessFile(path: path, writable: false)
        } catch {
            c.dismiss()
            try? DeviceMapper.remove(n)
            throw error
        }
        cleanup = c
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let got = try file.read(into: buffer, at: offset)
        guard got == buffer.count else { throw JobError("\(name): short read at byte \(offset)") }
    }

    /// Removes the device (retried briefly: udev may still be probing a new device).
    func close() throws {
        guard !closed else { return }
        closed = true
        file.close()
        cleanup.dismiss()
        var tries = 0
        while true {
            do {
                return try DeviceMapper.remove(name)
            } catch {
                tries += 1
                if tries >= 20 { throw JobError("cannot remove \(name), which holds the origin: \(error); remove it (dmsetup remove \(name))") }
                usleep(100_000)
            }
        }
    }
}
