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
    /// The LVM side: the pool LV, the volume named, and the volume group's one report (`LVMPoolVolumes`
    /// says when another is read).
    public let lvm: LVMPoolVolumes
    public var poolLV: LogicalVolume { lvm.poolLV }
    /// The volume named with `--lv`, if any (nil also when it does not exist yet: `receive --lv VG/NEW --thin-pool VG/POOL`).
    public var volume: LogicalVolume? { lvm.volume }
    /// The volume name `--lv` gave (without the VG): what a receive goes into.
    public var volumeName: String? { lvm.volumeName }
    /// Serve: one access for receives that come hours apart. The first receive target takes the
    /// report the access was opened with; a closed target then hands its report on to no other,
    /// so each later one reads the volume group afresh.
    public var longLived = false

    public override var name: String { "LVM thin pool \(poolLV.fullName)" }

    /// `activate`: a pool LVM has not activated (no volume of it active) is activated (receive, serve).
    public init(lv: String, activate: Bool = false) throws {
        lvm = try LVMPoolVolumes(lv: lv)
        if activate { try Self.activatePool(lvm) }
        try super.init(dmName: lvm.poolLV.poolTargetName)
    }

    /// Makes the pool's `VG-POOL-tpool` target there for a receive to write through: the pool LV
    /// is activated when LVM has not (it does so only with one of its volumes, or when asked). A
    /// pool without any thin volume is active without that layer (`VG-POOL` is then the
    /// `thin-pool` target itself), and LVM adds it — reloading the pool — with the first volume
    /// it makes: so one is made and removed here (`tb-layer`), before the receive opens the pool.
    /// (The report stays the volume group's: the volume made here is removed at once.)
    static func activatePool(_ lvm: LVMPoolVolumes) throws {
        let p = lvm.poolLV
        if try DeviceMapper.info(p.poolTargetName) != nil { return }
        if try DeviceMapper.info(LogicalVolume.dmName(vg: p.vg, lv: p.name)) == nil { try LVM.activate(p) }
        if try DeviceMapper.info(p.poolTargetName) != nil { return }
        let layer = "tb-layer"
        let existing = try lvm.report().first(where: { $0.name == layer })
        if let v = existing, !v.tags.contains(LVM.snapshotTag) {
            throw JobError("\(v.fullName) exists and thin-backup did not make it: it names the volume it makes to give \(p.fullName) its -tpool layer")
        }
        do {
            if existing == nil { try LVM.createThin(in: p, name: layer, size: 1 << 20, tags: [LVM.snapshotTag]) }
            _ = try LVM.run(["lvremove", "-q", "-f", "\(p.vg)/\(layer)"])
        } catch {
            // A failed lvcreate or lvremove may have changed the volume group: the next use reads it.
            lvm.forget()
            throw error
        }
        guard try DeviceMapper.info(p.poolTargetName) != nil else {
            throw JobError("\(p.fullName) is active without its \(p.poolTargetName) target; activate one of its volumes first")
        }
    }

    /// `--lv VG/LV --thin-pool VG/POOL`: a thin volume of that pool, which need not exist yet
    /// (a receive creates it).
    public init(lv: String, inPool pool: String) throws {
        lvm = try LVMPoolVolumes(lv: lv, inPool: pool)
        try Self.activatePool(lvm)
        try super.init(dmName: lvm.poolLV.poolTargetName)
    }

    public init(thinPool: String, activate: Bool = false) throws {
        lvm = try LVMPoolVolumes(thinPool: thinPool)
        if activate { try Self.activatePool(lvm) }
        try super.init(dmName: lvm.poolLV.poolTargetName)
    }

    /// The pool's thin volumes, by thin id (from the report this access works from).
    func volumes() throws -> [UInt64: LogicalVolume] { try lvm.byThinID() }

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

    /// The time the next snapshot is named by: `backup` sets the time its catalog records (`--now`,
    /// else $THIN_BACKUP_NOW or the clock); nil: the workflow clock's time (migrate).
    var snapshotTime: Date?

    /// LVM picks the thin id: a tagged snapshot `ORIGIN-tb-YYYYmmddHHMMSS` (`snapshotName`), its id returned.
    public override func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64 {
        guard let o = try volumes()[origin] else { throw JobError("\(name) has no thin volume with thin id \(origin)") }
        try pool.requireWritable()
        return try lvm.snapshot(of: o, at: try snapshotTime ?? WorkflowClock.now(nil))
    }

    /// `ORIGIN-tb-YYYYmmddHHMMSS` (UTC) at `time`; two in one second (migrate's rounds) get `-2`,
    /// `-3`, …: never a name in `taken` (the volume group's).
    static func snapshotName(of origin: String, at time: Date, taken: Set<String>) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMddHHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        f.locale = Locale(identifier: "en_US_POSIX")
        let base = "\(origin)-tb-\(f.string(from: time))"
        return ([base] + (2 ... 99).map { "\(base)-\($0)" }).first { !taken.contains($0) } ?? base
    }

    /// Removes a snapshot ThinBackup made (tagged); refuses any other volume.
    public override func deleteDevice(_ dev: UInt64) throws { try lvm.removeSnapshot(dev) }

    /// Receives into volumes of the pool (`LVMReceivingPool`): with `--lv`, that one volume;
    /// else device D is the volume `tb-D`.
    public override func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget {
        let t = try LVMReceivingPool(self, naming: volumeName.map { .volume($0) } ?? .numbered, readOnly: readOnly)
        t.keep = keepVersions
        return t
    }

    public override func stateDirectory() throws -> String {
        try KernelPoolState.directory(for: "lvm-\(poolLV.uuid)")
    }
}
