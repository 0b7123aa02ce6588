import Delta
import Foundation
import PoolCore

/// An LVM thin pool as a receive target. Each device is a volume that keeps its versions:
/// `VG/LV` always names the newest received version, older ones are kept beside it as
/// `LV-vTHINID` (`--keep N`). A volume is a dm thin device of the pool's `VG-POOL-tpool`
/// with the thin id LVM gave it, so the writing, reading, unmapping, digests and arming are
/// `KernelReceivingPool`'s (activated as `tbr-ID-…` for the receive only, O_DIRECT, zero and
/// discard runs unmapped); LVM makes, renames and removes the volumes (`lvcreate`, `lvrename`,
/// `lvremove`: LVM keeps its own record of the pool's devices). The one kernel change made
/// beside LVM is arming: `create_snap` and `delete` of a thin id at the top of the id space,
/// which leaves the pool's devices and transaction id as LVM recorded them (LVM numbers its
/// volumes from the bottom and never comes near it); one a killed receive left is deleted by the
/// next receive.
///
/// A stream goes into a new volume `LV-tbrecv` — a full stream: `lvcreate -V` at the stream's
/// size; an increment: `lvcreate -s` of `VG/LV`, which must hold the stream's base unchanged
/// since it was received. Only after the trailer and the content digest verified is it flushed,
/// armed (a snapshot made and removed, so a later write to it changes its mappings), its receipt
/// recorded, and renamed: `VG/LV` → `LV-vTHINID`, `LV-tbrecv` → `VG/LV`. A refused or broken
/// stream removes `LV-tbrecv`; a killed one is removed (or, complete, renamed) by the next receive.
/// Every volume made here carries the tags `thin-backup` and `tb-received`.
final class LVMReceivingPool: ReceiveTarget {
    static let receivedTag = "tb-received"
    static var tags: [String] { [LVM.snapshotTag, receivedTag] }

    let access: LVMPoolAccess
    let naming: LVMReceiveNaming
    let blockSize: Int
    let name: String
    /// Writes and digests (nil when opened read-only).
    let io: KernelReceivingPool?
    let state: LVMReceiveStateFile
    /// Versions of a volume to keep after a receive (nil: all).
    var keep: Int?
    private var pending: [UInt64: Receipt?] = [:]
    /// Devices whose new version this run created (an abort removes them).
    private var createdNow: Set<UInt64> = []
    /// The volume group's report this target works from (see `LVMPoolVolumes`, "Which report"):
    /// the one the access was opened with, read again after this target's `lvcreate`, kept in
    /// step with its own renames and removals, read again before `lvremove`s after a stream.
    private var cachedReport: [LogicalVolume]?

    var keepsVersions: Bool { true }

    init(_ access: LVMPoolAccess, naming: LVMReceiveNaming, readOnly: Bool) throws {
        self.access = access
        self.naming = naming
        // The report the access works from, taken over (this target changes the volume group).
        // None after serve's first target: each later one reads its own (receives hours apart).
        cachedReport = access.lvm.take()
        blockSize = access.pool.blockSize
        name = access.name
        if case .volume(let v) = naming, let why = LVMReceiveState.nameProblem(v) {
            throw JobError(.usage, "\(access.poolLV.vg)/\(v): not a volume name to receive into: \(why)")
        }
        state = LVMReceiveStateFile(try access.stateDirectory() + "/receipts.json")
        guard !readOnly else { io = nil; return }
        // The kernel pool's receive lock (exit 75 while another receive runs) and writability.
        io = try KernelReceivingPool(access.pool, readOnly: false)
        do { try recoverInterrupted() } catch {
            close()
            throw error
        }
    }

    // MARK: volumes and devices

    /// The pool's thin volumes, from the report (one read now when none is kept).
    func volumes() throws -> [LogicalVolume] {
        let all: [LogicalVolume]
        if let r = cachedReport {
            all = r
        } else {
            all = try LVM.volumes([access.poolLV.vg])
            cachedReport = all
        }
        return all.filter { $0.isThin && $0.pool == access.poolLV.name }
    }

    /// The volume group changed in a way the report does not follow: the next use reads one.
    func changed() {
        cachedReport = nil
        state.forgetRoutes()
    }

    /// Keeps the cached report in step with a rename (no `lvs` needed).
    func renamed(_ lv: LogicalVolume, to n: String) {
        guard let i = cachedReport?.firstIndex(where: { $0.uuid == lv.uuid }) else { return changed() }
        cachedReport![i].name = n
        state.forgetRoutes()
    }

    /// Keeps the cached report in step with an activation (the state letter of `lv_attr`).
    func activated(_ lv: LogicalVolume) {
        guard let i = cachedReport?.firstIndex(where: { $0.uuid == lv.uuid }), cachedReport![i].attr.count > 4 else { return changed() }
        var a = Array(cachedReport![i].attr)
        a[4] = "a"
        cachedReport![i].attr = String(a)
    }

    func removed(_ lv: LogicalVolume) {
        cachedReport?.removeAll { $0.uuid == lv.uuid }
        state.forgetRoutes()
    }

    func volume(named n: String) throws -> LogicalVolume? { try volumes().first { $0.name == n } }
    func volume(uuid: String) throws -> LogicalVolume? { uuid.isEmpty ? nil : try volumes().first { $0.uuid == uuid } }

    func volumeName(_ dev: UInt64) throws -> String { try naming.volumeName(dev, vg: access.poolLV.vg) }

    func device(ofVolume n: String) -> UInt64? { naming.device(ofVolume: n) }

    /// How messages name device `dev`: `VG/LV`.
    func describe(_ dev: UInt64) -> String {
        ((try? volumeName(dev)).map { "\(access.poolLV.vg)/\($0)" }) ?? "thin device \(dev)"
    }

    var defaultTarget: UInt64? {
        if case .volume = naming { return LVMReceiveNaming.volumeDevice }
        return nil
    }

    /// The new version of `dev` being received (made now, or resumable from a checkpoint).
    func inProgress(_ dev: UInt64, _ s: LVMReceiveState) throws -> LVMReceiveState.Pending? {
        let v = try volumeName(dev)
        for p in s.inProgress where p.volume == v {
            if let lv = try volume(uuid: p.uuid), lv.thinID == p.thinID { return p }
        }
        return nil
    }

    /// The thin id reads and writes of `dev` go to: its new version while one is received, else
    /// `VG/LV`. Asked for on every record: worked out once, kept until the next store (`LVMReceiveStateFile.route`).
    private func thinID(_ dev: UInt64) throws -> UInt64 {
        try state.route(dev) { s in
            if let p = try inProgress(dev, s), let id = p.thinID {
                io?.knownSizes[id] = p.size
                return id
            }
            guard let lv = try volume(named: volumeName(dev)), let id = lv.thinID else {
                throw JobError("\(describe(dev)) does not exist")
            }
            io?.knownSizes[id] = io?.knownSizes[id] ?? lv.size
            return id
        }
    }

    private func writer() throws -> KernelReceivingPool {
        guard let io else { throw JobError("\(name): opened to read receipts only") }
        return io
    }

    func accept(streamBlockSize: Int) throws { try writer().accept(streamBlockSize: streamBlockSize) }

    func deviceExists(_ dev: UInt64) throws -> Bool {
        if try volume(named: volumeName(dev)) != nil { return true }
        return try inProgress(dev, state.load()) != nil
    }

    func devices() throws -> [UInt64] {
        try volumes().compactMap { device(ofVolume: $0.name) }.sorted()
    }

    func virtualSize(of dev: UInt64) throws -> UInt64 {
        let s = try state.load()
        if let p = try inProgress(dev, s) { return p.size }
        guard let lv = try volume(named: volumeName(dev)) else { throw JobError("\(describe(dev)) does not exist") }
        return lv.size
    }

    // MARK: new versions

    func createThin(_ dev: UInt64, virtualSize: UInt64) throws {
        let v = try volumeName(dev)
        if try volume(named: v) != nil {
            throw JobError("\(describe(dev)) exists and was not received from this stream: a full stream makes a new volume")
        }
        try make(dev, v, size: virtualSize, base: nil) { n in
            try LVM.createThin(in: access.poolLV, name: n, size: virtualSize, tags: Self.tags)
        }
    }

    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {
        let v = try volumeName(dev)
        if dev != origin, try volume(named: v) != nil {
            throw JobError("\(describe(dev)) holds another version than the stream's base (received as \(describe(origin))): refused")
        }
        guard let o = try volume(named: volumeName(origin)), let oid = o.thinID else {
            throw JobError("\(describe(origin)) does not exist")
        }
        try refuseOpen(o)
        try make(dev, v, size: virtualSize, base: oid) { n in
            try LVM.createSnapshot(of: o, name: n, tags: Self.tags)
            if o.size < virtualSize { try LVM.resize("\(o.vg)/\(n)", to: virtualSize) }
        }
    }

    /// A volume someone has open is not replaced under them.
    func refuseOpen(_ lv: LogicalVolume) throws {
        if let i = try DeviceMapper.info(LogicalVolume.dmName(vg: lv.vg, lv: lv.name)), i.openCount > 0 {
            throw JobError("\(lv.fullName) is open (in use, \(i.openCount) opener\(i.openCount == 1 ? "" : "s")): not receiving a new version of it")
        }
    }

    /// Records the new version of `dev` as in progress, then makes it (`body`, given its name).
    private func make(_ dev: UInt64, _ v: String, size: UInt64, base: UInt64?, _ body: (String) throws -> Void) throws {
        _ = try writer()
        guard size > 0, size % 512 == 0 else {
            throw JobError("\(name): the stream's device size \(size) is not whole 512-byte sectors; a thin volume cannot hold it")
        }
        let n = LVMReceiveState.receivingName(v)
        if let other = try volume(named: n) {
            throw JobError("\(other.fullName) exists and no interrupted receive recorded it: thin-backup receives into that name; rename or remove it")
        }
        var s = try state.load()
        var p = LVMReceiveState.Pending(name: n, uuid: "", thinID: nil, volume: v, base: base, size: size)
        s.inProgress.append(p)
        try state.store(s)
        createdNow.insert(dev)
        do { try body(n) } catch {
            changed()
            throw error
        }
        // lvcreate changed the volume group: a new report, for the new volume's UUID and thin id.
        changed()
        guard let lv = try volume(named: n), let id = lv.thinID else { throw JobError("lvcreate made no thin volume \(access.poolLV.vg)/\(n)") }
        p.uuid = lv.uuid
        p.thinID = id
        s = try state.load()
        s.inProgress.removeAll { $0.name == n && $0.uuid.isEmpty }
        s.inProgress.append(p)
        try state.store(s)
        io?.knownSizes[id] = size
    }

    // MARK: I/O, through the kernel pool

    func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        try writer().write(thinID(dev), offset: offset, bytes)
    }

    func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        try writer().read(thinID(dev), offset: offset, into: buffer)
    }

    func discard(_ dev: UInt64, bytes: Range<UInt64>) throws { try writer().discard(thinID(dev), bytes: bytes) }

    func zero(_ dev: UInt64, bytes: Range<UInt64>) throws { try writer().zero(thinID(dev), bytes: bytes) }

    func mappingDigest(of dev: UInt64) throws -> Digest128 { try writer().mappingDigest(of: thinID(dev)) }

    func contentDigest(of dev: UInt64, blockSize bs: Int) throws -> Digest128 {
        try writer().contentDigest(of: thinID(dev), blockSize: bs)
    }

    /// How to discard the checkpointed receive into `dev` (its new version, and the activation a
    /// killed receive left, which LVM does not know of), or nil when none is pending.
    func discardHint(_ dev: UInt64) -> String? {
        guard let p = try? inProgress(dev, state.load()), let id = p.thinID else { return nil }
        let active = KernelReceivingPool.activationName(access.pool.dmName, id)
        let lvremove = "lvremove \(access.poolLV.vg)/\(p.name)"
        return (try? DeviceMapper.info(active)) != nil ? "dmsetup remove \(active) && \(lvremove)" : lvremove
    }

    // MARK: receipts and transactions

    func receipts() throws -> [UInt64: Receipt] {
        let s = try state.load()
        var out: [UInt64: Receipt] = [:]
        for lv in try volumes() {
            if let d = device(ofVolume: lv.name), let v = s.version(of: lv) { out[d] = v.receipt }
        }
        for p in s.inProgress {
            guard let d = device(ofVolume: p.volume), let lv = try volume(uuid: p.uuid), let v = s.version(of: lv) else { continue }
            out[d] = v.receipt
        }
        for (d, r) in pending { out[d] = r }
        return out.compactMapValues { $0 }
    }

    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws { pending[dev] = receipt }

    func commitReceive() throws {
        let io = try writer()
        var finished: [String] = []
        for (dev, r) in pending {
            var s = try state.load()
            guard let r, let p = try inProgress(dev, s), let id = p.thinID else { continue }
            try io.flush(id)
            if r.partial == nil { try io.arm(id) }
            s.record(r, for: p)
            try state.store(s)
            if r.partial == nil {
                try complete(p)
                finished.append(p.volume)
            }
        }
        pending = [:]
        createdNow = []
        if let keep {
            for v in finished { try prune(v, keep: keep) }
        }
    }

    func abortReceive() throws {
        pending = [:]
        let io = try writer()
        for dev in createdNow {
            var s = try state.load()
            let v = try volumeName(dev)
            for p in s.inProgress where p.volume == v {
                if let id = p.thinID { io.deactivate(id) }
                if let lv = try volume(uuid: p.uuid) { try LVM.remove(lv) }
                changed()
                if let id = p.thinID { s.versions[String(id)] = nil }
            }
            s.inProgress.removeAll { $0.volume == v }
            try state.store(s)
        }
        createdNow = []
    }

    /// Closes the kernel pool; the report, kept in step with this target's changes, goes back to
    /// the access for the next target of the same operation (restore's next member; not serve's).
    func close() {
        io?.close()
        if !access.longLived { access.lvm.keep(cachedReport) }
    }
}
