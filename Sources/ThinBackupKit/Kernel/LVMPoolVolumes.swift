import Foundation

/// The LVM side of an LVM thin pool (`LVMPoolAccess`), without the kernel's: the pool LV, the
/// volume `--lv` names, its volume group as one `lvs` JSON report, and the `lvcreate`/`lvremove`
/// of ThinBackup's snapshots. (`LVMReportCountTests` drives it with a stand-in `lvm` that logs
/// its calls.)
///
/// Which report. An operation reads its volume group once, when it opens the pool, and works
/// from that report (each `lvm` start costs 50-200 ms on a host with many volumes, and every
/// report is another chance for the volume group to change under the operation). It reads a new
/// one only
/// - after an `lvcreate` it ran: LVM picks the new volume's thin id and UUID (`snapshot`;
///   `LVMReceivingPool.make`);
/// - before it removes or freezes a volume by name (`removeSnapshot`, `freshReport()`): `lvremove`
///   and `lvchange` take a name, and the kept report may be older than a send of any length, so
///   a volume renamed meanwhile must not be taken for the one meant;
/// - after an `lvm` command of its own failed: what it changed is not known (`forget`).
/// A change whose whole effect it knows (its own `lvremove`, `lvrename`) is applied to the
/// report instead. The report is guarded by a lock: a signal's cleanup (deleting the snapshot of
/// an interrupted backup) runs on the watcher thread.
public final class LVMPoolVolumes: @unchecked Sendable {
    public let poolLV: LogicalVolume
    /// The volume `--lv` named, as the opening report has it (nil: none named, or not made yet).
    public let volume: LogicalVolume?
    /// The volume name `--lv` gave (without the VG): what a receive goes into.
    public let volumeName: String?
    private let lock = NSLock()
    private var kept: [LogicalVolume]?

    init(pool: LogicalVolume, volume: LogicalVolume?, volumeName: String?, report: [LogicalVolume]) {
        poolLV = pool
        self.volume = volume
        self.volumeName = volumeName
        kept = report
    }

    /// `VG/NAME` split, checked (`what`: how the message names the form).
    static func split(_ name: String, _ what: String) throws -> (vg: String, name: String) {
        let parts = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw JobError(.usage, "\(name): expected \(what)") }
        return (parts[0], parts[1])
    }

    /// `--lv VG/LV`: a thin volume and its pool (one report).
    public convenience init(lv name: String) throws {
        let (vg, n) = try Self.split(name, "VG/LV")
        let all = try LVM.volumes([vg])
        guard let lv = all.first(where: { $0.name == n }) else { throw JobError("\(name): no such logical volume") }
        guard lv.isThin, lv.thinID != nil else {
            throw JobError("\(name) is not a thin volume (segment type \(lv.segtype)); thin-backup backs up LVM thin volumes")
        }
        guard let pool = all.first(where: { $0.name == lv.pool }) else { throw JobError("\(lv.vg)/\(lv.pool): no such logical volume") }
        self.init(pool: pool, volume: lv, volumeName: lv.name, report: all)
    }

    /// `--lv VG/LV --thin-pool VG/POOL`: a thin volume of that pool, which need not exist yet (one report).
    public convenience init(lv: String, inPool pool: String) throws {
        let (vg, n) = try Self.split(lv, "VG/LV")
        let (pvg, pn) = try Self.split(pool, "VG/POOL")
        guard vg == pvg else { throw JobError(.usage, "\(lv) and its pool \(pool) are in different volume groups") }
        let all = try LVM.volumes([pvg])
        guard let p = all.first(where: { $0.name == pn }) else { throw JobError("\(pool): no such logical volume") }
        guard p.isThinPool else { throw JobError("\(pool) is not a thin pool (segment type \(p.segtype))") }
        let v = all.first { $0.name == n }
        if let v, !(v.isThin && v.pool == p.name) {
            throw JobError("\(lv) exists and is not a thin volume of \(pool)")
        }
        self.init(pool: p, volume: v, volumeName: n, report: all)
    }

    /// `--thin-pool VG/POOL` (one report).
    public convenience init(thinPool name: String) throws {
        let (vg, n) = try Self.split(name, "VG/LV")
        let all = try LVM.volumes([vg])
        guard let p = all.first(where: { $0.name == n }) else { throw JobError("\(name): no such logical volume") }
        guard p.isThinPool else { throw JobError("\(name) is not a thin pool (segment type \(p.segtype))") }
        self.init(pool: p, volume: nil, volumeName: nil, report: all)
    }

    // MARK: the report

    /// The volume group's report: the kept one, else one read now (and kept).
    public func report() throws -> [LogicalVolume] {
        lock.lock()
        defer { lock.unlock() }
        if let kept { return kept }
        let r = try LVM.volumes([poolLV.vg])
        kept = r
        return r
    }

    /// A report read now (and kept): for a command that names a volume to remove or freeze it.
    public func freshReport() throws -> [LogicalVolume] {
        lock.lock()
        defer { lock.unlock() }
        kept = nil
        let r = try LVM.volumes([poolLV.vg])
        kept = r
        return r
    }

    /// The kept report is no longer the volume group's (an `lvm` command of ours failed half way,
    /// or a receive target took it over): the next use reads one.
    func forget() {
        lock.lock()
        kept = nil
        lock.unlock()
    }

    /// Hands the kept report over (to a receive target, which changes the volume group and keeps
    /// its own), leaving none here.
    func take() -> [LogicalVolume]? {
        lock.lock()
        defer { lock.unlock() }
        let r = kept
        kept = nil
        return r
    }

    /// Keeps `report` (one a receive target kept in step with its own changes).
    func keep(_ report: [LogicalVolume]?) {
        lock.lock()
        kept = report
        lock.unlock()
    }

    private func update(_ change: (inout [LogicalVolume]) -> Void) {
        lock.lock()
        if kept != nil { change(&kept!) }
        lock.unlock()
    }

    /// The pool's thin volumes in `report`, by thin id.
    static func byThinID(_ report: [LogicalVolume], pool: LogicalVolume) -> [UInt64: LogicalVolume] {
        var out: [UInt64: LogicalVolume] = [:]
        for v in report where v.isThin && v.pool == pool.name {
            if let id = v.thinID { out[id] = v }
        }
        return out
    }

    /// The pool's thin volumes by thin id (from the kept report).
    public func byThinID() throws -> [UInt64: LogicalVolume] { Self.byThinID(try report(), pool: poolLV) }

    // MARK: ThinBackup's snapshots

    /// A tagged thin snapshot of `origin` (`snapshotName` at `time`, a name the report does not
    /// hold) by `lvcreate -s`; its thin id, from a report read after it (LVM picked it).
    public func snapshot(of origin: LogicalVolume, at time: Date) throws -> UInt64 {
        let all = try report()
        let name = LVMPoolAccess.snapshotName(of: origin.name, at: time, taken: Set(all.map(\.name)))
        do {
            try LVM.snapshot(origin, name: name, tags: [LVM.snapshotTag, "tb-origin-\(origin.uuid)"], existing: all)
        } catch {
            forget()
            throw error
        }
        // lvcreate changed the volume group: a new report, for the new volume's thin id.
        guard let snap = try freshReport().first(where: { $0.name == name }) else {
            throw JobError("\(origin.vg)/\(name): no such logical volume after lvcreate made it")
        }
        guard let id = snap.thinID else { throw JobError("lvcreate made \(snap.fullName) without a thin id") }
        return id
    }

    /// Removes the snapshot ThinBackup made with thin id `dev` (tagged), found in a report read
    /// now (`lvremove` takes its name); refuses any other volume; nothing when there is none.
    public func removeSnapshot(_ dev: UInt64) throws {
        guard let v = Self.byThinID(try freshReport(), pool: poolLV)[dev] else { return }
        guard v.tags.contains(LVM.snapshotTag) else {
            throw JobError("\(v.fullName) (thin id \(dev)) is not a snapshot thin-backup made; not removing it")
        }
        do {
            try LVM.remove(v)
        } catch {
            forget()
            throw error
        }
        update { $0.removeAll { $0.uuid == v.uuid } }
    }
}
