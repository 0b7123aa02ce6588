/// A migration source that can stop its device's writes itself for the final round (beyond the
/// freeze command): a kernel pool suspends the device's active dm devices.
public protocol CutoverSource: PoolAccess {
    /// Stops writes to `dev`; the returned freeze thaws it (or keeps it frozen).
    func freezeForCutover(dev: UInt64) throws -> SourceFreeze
}

/// Devices frozen for a cutover. A signal before `keep()` or `thaw()` resumes them.
public final class SourceFreeze {
    public let names: [String]
    /// "suspended" or "read-only".
    public let kind: String
    private let resume: () throws -> Void
    private let cleanup: Interrupts.Cleanup
    private var done = false

    init(names: [String], kind: String, resume: @escaping () throws -> Void) {
        self.names = names
        self.kind = kind
        self.resume = resume
        cleanup = Interrupts.shared.register("resume \(names.joined(separator: ", "))") { try? resume() }
    }

    /// Resumes the devices (once).
    public func thaw() throws {
        guard !done else { return }
        done = true
        cleanup.dismiss()
        try resume()
    }

    /// Leaves them frozen: the source is retired.
    public func keep() {
        done = true
        cleanup.dismiss()
    }
}

/// Raw dm: suspends (flushing queued I/O and, as `dmsetup suspend`, syncing the device's page
/// cache) every active dm device of `dev`; a writer's next I/O waits until they are resumed.
/// LVM: the volume is made read-only (`lvchange -p r`: LVM reloads its table read-only, flushing
/// first), since the final round's `lvcreate -s` would resume a device suspended behind LVM's
/// back; writes fail (EPERM) from then on, and `thaw` gives it `-p rw` again.
extension KernelPoolAccess: CutoverSource {
    public func freezeForCutover(dev: UInt64) throws -> SourceFreeze {
        if let lvm = self as? LVMPoolAccess { return try lvm.readOnlyForCutover(dev: dev) }
        var names: [String] = []
        let resumeAll = { for n in names.reversed() { try DeviceMapper.resume(n) } }
        do {
            for (name, _) in try pool.activeThins()[dev] ?? [] {
                guard try DeviceMapper.info(name)?.suspended != true else { continue }
                try DeviceMapper.suspend(name)
                names.append(name)
            }
        } catch {
            try? resumeAll()
            throw JobError("cannot suspend the source for the cutover: \(error)")
        }
        let frozen = names
        return SourceFreeze(names: frozen, kind: "suspended") { for n in frozen.reversed() { try DeviceMapper.resume(n) } }
    }
}

extension LVMPoolAccess {
    func readOnlyForCutover(dev: UInt64) throws -> SourceFreeze {
        // lvchange takes a name, and the report may be from before the rounds' sends: a new one.
        guard let lv = LVMPoolVolumes.byThinID(try lvm.freshReport(), pool: poolLV)[dev] else {
            throw JobError("\(name) has no thin volume with thin id \(dev)")
        }
        do {
            _ = try LVM.run(["lvchange", "-q", "-p", "r", lv.fullName])
        } catch {
            throw JobError("cannot make \(lv.fullName) read-only for the cutover: \(error)")
        }
        return SourceFreeze(names: [lv.fullName], kind: "read-only") { _ = try LVM.run(["lvchange", "-q", "-p", "rw", lv.fullName]) }
    }
}
