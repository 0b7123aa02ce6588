import Delta
import Foundation

/// A received volume's versions: the rename of a finished one into place, pruning to `--keep`,
/// and what a killed receive left (recovered when the pool is opened for a receive).
extension LVMReceivingPool {
    /// Thin ids at or above this are arming snapshots (`KernelReceivingPool.arm` takes the highest free id).
    static let armingIDs: UInt64 = (1 << 24) - 4096

    /// The rename: `VG/LV` (the previous version) → `LV-vTHINID`, the new one → `VG/LV` (made
    /// without the activation-skip flag: an ordinary volume), activated when the previous one was
    /// active. Each step is looked at first, so a receive killed among them is completed by the next one.
    func complete(_ p: LVMReceiveState.Pending) throws {
        guard let new = try volume(uuid: p.uuid) else { throw JobError("\(access.poolLV.vg)/\(p.name) vanished during the receive") }
        var wasActive = false
        if let old = try volume(named: p.volume), old.uuid != p.uuid {
            wasActive = old.isActive
            let kept = LVMReceiveState.keptName(p.volume, thinID: old.thinID ?? 0)
            try LVM.rename(old, to: kept)
            renamed(old, to: kept)
        }
        if new.name != p.volume {
            try LVM.rename(new, to: p.volume)
            renamed(new, to: p.volume)
        }
        if wasActive {
            var now = new
            now.name = p.volume
            try LVM.activate(now)
            activated(now)
        }
        var s = try state.load()
        s.inProgress.removeAll { $0.uuid == p.uuid }
        try state.store(s)
    }

    /// Removes versions of `v` beyond the newest `keep` (an open one is kept, with a warning).
    func prune(_ v: String, keep: Int) throws {
        var s = try state.load()
        func thinIDs() throws -> [UInt64: LogicalVolume] {
            var byID: [UInt64: LogicalVolume] = [:]
            for lv in try volumes() { if let id = lv.thinID { byID[id] = lv } }
            return byID
        }
        guard !s.pruned(volume: v, keep: keep, existing: try thinIDs()).isEmpty else { return }
        // lvremove takes a name, and the report is from before the stream: a new one first.
        changed()
        let byID = try thinIDs()
        for id in s.pruned(volume: v, keep: keep, existing: byID) {
            guard let lv = byID[id], lv.tags.contains(Self.receivedTag), lv.name != v else { continue }
            do { try refuseOpen(lv) } catch {
                ThinBackupMain.writeStderr("thin-backup: warning: \(name): not removing old version \(lv.fullName): \(error)\n")
                continue
            }
            do { try LVM.remove(lv) } catch {
                changed()
                throw error
            }
            removed(lv)
            s.versions[String(id)] = nil
        }
        try state.store(s)
    }

    /// What a killed receive left: a version without a checkpoint is removed, a complete one
    /// renamed into place, a checkpointed one kept for `--resume`; a stale arming snapshot removed.
    func recoverInterrupted() throws {
        var s = try state.load()
        let known = Set(try volumes().compactMap(\.thinID))
        // An arming snapshot a killed receive left (LVM does not know it): deleted by message, as it was made.
        if let io {
            for d in try io.devices() where d >= Self.armingIDs && !known.contains(d) {
                try access.pool.delete(d)
                ThinBackupMain.writeStderr("thin-backup: warning: \(name): deleted thin device \(d), an arming snapshot left by an interrupted receive\n")
            }
        }
        guard !s.inProgress.isEmpty else { return }
        for p in s.inProgress {
            let lv = try volume(uuid: p.uuid) ?? (p.uuid.isEmpty ? volume(named: p.name).flatMap { $0.tags.contains(Self.receivedTag) ? $0 : nil } : nil)
            guard let lv else {
                s.inProgress.removeAll { $0 == p }
                continue
            }
            if let v = s.version(of: lv) {
                if v.receipt.partial == nil {
                    try complete(LVMReceiveState.Pending(name: p.name, uuid: lv.uuid, thinID: lv.thinID, volume: p.volume, base: p.base, size: p.size))
                    ThinBackupMain.writeStderr("thin-backup: warning: \(name): completed the interrupted receive of \(lv.vg)/\(p.volume) (renamed into place)\n")
                    s = try state.load()
                }
                continue
            }
            if let id = lv.thinID { try DeviceMapper.removeIfPresent(KernelReceivingPool.activationName(access.pool.dmName, id)) }
            try LVM.remove(lv)
            changed()
            s.inProgress.removeAll { $0 == p }
            ThinBackupMain.writeStderr("thin-backup: warning: \(name): removed \(lv.fullName), left half received by an interrupted receive\n")
        }
        try state.store(s)
    }

    /// Removes every version of `dev` this host received (restore's cleanup).
    func deleteReceived(_ dev: UInt64) throws {
        let v = try volumeName(dev)
        var s = try state.load()
        // lvremove takes a name, and the report may be from before a stream: a new one first.
        changed()
        for lv in try volumes() {
            guard let ver = s.version(of: lv), ver.volume == v, lv.tags.contains(Self.receivedTag) else { continue }
            if let id = lv.thinID { io?.deactivate(id) }
            do { try LVM.remove(lv) } catch {
                changed()
                throw error
            }
            removed(lv)
            s.versions[String(lv.thinID ?? 0)] = nil
        }
        try state.store(s)
    }
}
