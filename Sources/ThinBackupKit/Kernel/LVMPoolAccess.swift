import Delta
import Foundation
import PoolCore

/// An LVM thin pool behind the pool protocol: `--thin-pool VG/POOL`, or `--lv VG/LV` (the
/// pool of that thin volume; the volume's thin id is then the default device). Reads and
/// metadata snapshots as on a raw dm pool (`VG-POOL-tpool`); snapshots are `lvcreate -s`
/// (tagged `thin-backup`), deletes `lvremove` — of tagged snapshots only: LVM keeps its own
/// record of the pool's devices and transaction id, so the kernel is never messaged
/// directly for changes.
public final class LVMPoolAccess: KernelPoolAccess {
    public let poolLV: LogicalVolume
    /// The volume named with `--lv`, if any.
    public let volume: LogicalVolume?

    public override var name: String { "LVM thin pool \(poolLV.fullName)" }

    public init(lv: String) throws {
        let (v, p) = try LVM.thinVolume(lv)
        volume = v
        poolLV = p
        try super.init(dmName: p.poolTargetName)
    }

    public init(thinPool: String) throws {
        poolLV = try LVM.thinPool(thinPool)
        volume = nil
        try super.init(dmName: poolLV.poolTargetName)
    }

    /// The pool's thin volumes, by thin id.
    func volumes() throws -> [UInt64: LogicalVolume] {
        var out: [UInt64: LogicalVolume] = [:]
        for v in try LVM.volumes([poolLV.vg]) where v.isThin && v.pool == poolLV.name {
            if let id = v.thinID { out[id] = v }
        }
        return out
    }

    public override func virtualSize(of dev: UInt64) throws -> UInt64 {
        guard let v = try volumes()[dev] else { throw JobError("\(name) has no thin volume with thin id \(dev)") }
        return v.size
    }

    public override func identity(create: Bool) throws -> Digest128 {
        Self.digest(of: "lvm-pool:\(poolLV.uuid)")
    }

    public override func createSnapshot(of origin: UInt64, as dev: UInt64) throws {
        _ = try createSnapshot(of: origin, preferring: dev)
    }

    /// LVM picks the thin id: a tagged snapshot `ORIGIN-tb-YYYYmmddHHMMSS` (UTC; the workflow
    /// clock's time, so $THIN_BACKUP_NOW names it too; `-2`, `-3`, … for more in one second),
    /// its id returned.
    public override func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64 {
        guard let o = try volumes()[origin] else { throw JobError("\(name) has no thin volume with thin id \(origin)") }
        try pool.requireWritable()
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        f.locale = Locale(identifier: "en_US_POSIX")
        // Two in one second (migrate's rounds) get -2, -3, …: never an existing volume's name.
        let base = "\(o.name)-tb-\(f.string(from: try WorkflowClock.now(nil)))"
        let taken = Set(try LVM.volumes([o.vg]).map(\.name))
        let free = ([base] + (2 ... 99).map { "\(base)-\($0)" }).first { !taken.contains($0) } ?? base
        let snap = try LVM.snapshot(o, name: free, tags: [LVM.snapshotTag, "tb-origin-\(o.uuid)"])
        guard let id = snap.thinID else { throw JobError("lvcreate made \(snap.fullName) without a thin id") }
        return id
    }

    /// Removes a snapshot ThinBackup made (tagged); refuses any other volume.
    public override func deleteDevice(_ dev: UInt64) throws {
        guard let v = try volumes()[dev] else { return }
        guard v.tags.contains(LVM.snapshotTag) else {
            throw JobError("\(v.fullName) (thin id \(dev)) is not a snapshot thin-backup made; not removing it")
        }
        try LVM.remove(v)
    }

    /// Receiving into LVM goes through lvcreate (LVM keeps its own record of the pool's devices):
    /// not built yet.
    public override func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget {
        throw JobError(.usage, "\(name): receiving into LVM thin volumes is not built yet; receive into a raw dm pool (--dm-pool) or a pool folder")
    }

    public override func stateDirectory() throws -> String {
        try KernelPoolState.directory(for: "lvm-\(poolLV.uuid)")
    }
}
