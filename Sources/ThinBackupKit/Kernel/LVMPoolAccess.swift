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
    /// The volume named with `--lv`, if any (nil also when it does not exist yet: `receive --lv VG/NEW --thin-pool VG/POOL`).
    public let volume: LogicalVolume?
    /// The volume name `--lv` gave (without the VG): what a receive goes into.
    public let volumeName: String?
    /// The volume group's report this access was opened with (a receive starts from it: one `lvs` less).
    var report: [LogicalVolume]?

    public override var name: String { "LVM thin pool \(poolLV.fullName)" }

    /// `activate`: a pool LVM has not activated (no volume of it active) is activated (receive, serve).
    public init(lv: String, activate: Bool = false) throws {
        let (v, p, all) = try LVM.thinVolumeReport(lv)
        report = all
        volume = v
        volumeName = v.name
        poolLV = p
        if activate { try Self.activatePool(p) }
        try super.init(dmName: p.poolTargetName)
    }

    /// Makes the pool's `VG-POOL-tpool` target there for a receive to write through: the pool LV
    /// is activated when LVM has not (it does so only with one of its volumes, or when asked). A
    /// pool without any thin volume is active without that layer (`VG-POOL` is then the
    /// `thin-pool` target itself), and LVM adds it — reloading the pool — with the first volume
    /// it makes: so one is made and removed here (`tb-layer`), before the receive opens the pool.
    static func activatePool(_ p: LogicalVolume) throws {
        if try DeviceMapper.info(p.poolTargetName) != nil { return }
        if try DeviceMapper.info(LogicalVolume.dmName(vg: p.vg, lv: p.name)) == nil { try LVM.activate(p) }
        if try DeviceMapper.info(p.poolTargetName) != nil { return }
        let layer = "tb-layer"
        if let v = try LVM.volumes([p.vg]).first(where: { $0.name == layer }) {
            guard v.tags.contains(LVM.snapshotTag) else {
                throw JobError("\(v.fullName) exists and thin-backup did not make it: it names the volume it makes to give \(p.fullName) its -tpool layer")
            }
        } else {
            try LVM.createThin(in: p, name: layer, size: 1 << 20, tags: [LVM.snapshotTag])
        }
        _ = try LVM.run(["lvremove", "-q", "-f", "\(p.vg)/\(layer)"])
        guard try DeviceMapper.info(p.poolTargetName) != nil else {
            throw JobError("\(p.fullName) is active without its \(p.poolTargetName) target; activate one of its volumes first")
        }
    }

    /// `--lv VG/LV --thin-pool VG/POOL`: a thin volume of that pool, which need not exist yet
    /// (a receive creates it).
    public init(lv: String, inPool pool: String) throws {
        let parts = lv.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let pp = pool.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw JobError(.usage, "\(lv): expected VG/LV") }
        guard pp.count == 2, !pp[0].isEmpty, !pp[1].isEmpty else { throw JobError(.usage, "\(pool): expected VG/POOL") }
        guard parts[0] == pp[0] else {
            throw JobError(.usage, "\(lv) and its pool \(pool) are in different volume groups")
        }
        let all = try LVM.volumes([pp[0]])
        guard let p = all.first(where: { $0.name == pp[1] }) else { throw JobError("\(pool): no such logical volume") }
        guard p.isThinPool else { throw JobError("\(pool) is not a thin pool (segment type \(p.segtype))") }
        poolLV = p
        report = all
        let v = all.first { $0.name == parts[1] }
        if let v, !(v.isThin && v.pool == poolLV.name) {
            throw JobError("\(lv) exists and is not a thin volume of \(pool)")
        }
        volume = v
        volumeName = parts[1]
        try Self.activatePool(p)
        try super.init(dmName: poolLV.poolTargetName)
    }

    public init(thinPool: String, activate: Bool = false) throws {
        poolLV = try LVM.thinPool(thinPool)
        volume = nil
        volumeName = nil
        if activate { try Self.activatePool(poolLV) }
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

    /// The time the next snapshot is named by: `backup` sets the time its catalog records (`--now`,
    /// else $THIN_BACKUP_NOW or the clock); nil: the workflow clock's time (migrate).
    var snapshotTime: Date?

    /// LVM picks the thin id: a tagged snapshot `ORIGIN-tb-YYYYmmddHHMMSS` (`snapshotName`), its id returned.
    public override func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64 {
        guard let o = try volumes()[origin] else { throw JobError("\(name) has no thin volume with thin id \(origin)") }
        try pool.requireWritable()
        let free = Self.snapshotName(of: o.name, at: try snapshotTime ?? WorkflowClock.now(nil), taken: Set(try LVM.volumes([o.vg]).map(\.name)))
        let snap = try LVM.snapshot(o, name: free, tags: [LVM.snapshotTag, "tb-origin-\(o.uuid)"])
        guard let id = snap.thinID else { throw JobError("lvcreate made \(snap.fullName) without a thin id") }
        return id
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
    public override func deleteDevice(_ dev: UInt64) throws {
        guard let v = try volumes()[dev] else { return }
        guard v.tags.contains(LVM.snapshotTag) else {
            throw JobError("\(v.fullName) (thin id \(dev)) is not a snapshot thin-backup made; not removing it")
        }
        try LVM.remove(v)
    }

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
