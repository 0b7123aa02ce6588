/// A migration source that can stop its device's writes itself for the final round (beyond the
/// freeze command): a kernel pool suspends the device's active dm devices.
public protocol CutoverSource: PoolAccess {
    /// Stops writes to `dev`; the returned freeze thaws it (or keeps it frozen).
    func freezeForCutover(dev: UInt64) throws -> SourceFreeze
}

/// Devices frozen for a cutover. A signal before `keep()` or `thaw()` resumes them.
public final class SourceFreeze {
    public let names: [String]
    private let resume: () throws -> Void
    private let cleanup: Interrupts.Cleanup
    private var done = false

    init(names: [String], resume: @escaping () throws -> Void) {
        self.names = names
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

/// Suspends (flushing queued I/O and, as `dmsetup suspend`, syncing the device's page cache)
/// every active dm device of `dev`; a writer's next I/O waits until they are resumed.
extension KernelPoolAccess: CutoverSource {
    public func freezeForCutover(dev: UInt64) throws -> SourceFreeze {
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
        return SourceFreeze(names: frozen) { for n in frozen.reversed() { try DeviceMapper.resume(n) } }
    }
}
