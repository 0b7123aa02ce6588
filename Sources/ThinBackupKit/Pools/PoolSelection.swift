/// Which pool something names: the command line (`PoolOptions`) or a job file's volume
/// (`pool = DIR`, `dm-pool = NAME`, `lv = VG/LV`). Both open it here, so a job's volume is
/// read through the same `PoolAccess` as the commands'.
public enum PoolSelection: Equatable, Sendable {
    /// `--pool DIR`: a pool folder.
    case folder(String)
    /// `--metadata FILE [--data FILE]`.
    case files(metadata: String, data: String?)
    /// `--dm-pool NAME`: a live kernel pool by its thin-pool target's device-mapper name.
    case dmPool(String)
    /// `--thin-pool VG/POOL`.
    case thinPool(String)
    /// `--lv VG/LV`: that thin volume's pool; the volume's thin id is its device.
    case lv(String)
    /// `--lv VG/LV --thin-pool VG/POOL`: a thin volume of that pool that need not exist yet (a receive creates it).
    case lvInPool(lv: String, pool: String)

    /// The pool, opened. `receiving`: an LVM pool LVM has not activated is activated (a receive writes through it).
    public func open(receiving: Bool = false) throws -> any PoolAccess {
        switch self {
        case .folder(let dir): return UserspacePool(folder: dir)
        case let .files(metadata, data):
            if let p = metadataPathProblem(metadata) { throw JobError(p) }
            return UserspacePool(metadata: metadata, data: data)
        case .dmPool(let name): return try KernelPoolAccess(dmName: name)
        case .thinPool(let name): return try LVMPoolAccess(thinPool: name, activate: receiving)
        case .lv(let name): return try LVMPoolAccess(lv: name, activate: receiving)
        case let .lvInPool(lv, pool): return try LVMPoolAccess(lv: lv, inPool: pool)
        }
    }

    /// The device the selection itself names, from the pool it opened (`access`): an LVM thin
    /// volume's thin id (`lv`, from the report the pool was opened with: no `lvs` of its own); else nil.
    public func volumeDevice(of access: any PoolAccess) throws -> UInt64? {
        switch self {
        case .lv(let name), .lvInPool(let name, _):
            guard let v = (access as? LVMPoolAccess)?.volume else { throw JobError("\(name): no such logical volume") }
            return v.thinID
        default: return nil
        }
    }

    /// The pool opened, and the device to act on: `dev` when given, else the one the selection
    /// names (an LVM volume's thin id). A selection naming no device needs `dev`.
    public func openVolume(dev: UInt64?) throws -> (access: any PoolAccess, dev: UInt64) {
        let access = try open()
        if let dev { return (access, dev) }
        if let id = (access as? LVMPoolAccess)?.volume?.thinID { return (access, id) }
        access.close()
        throw JobError(.usage, "\(description): give the thin device (--dev ID)")
    }

    /// How messages name it ("pool /srv/p", "dm pool tpool", "LVM volume vg0/data").
    public var description: String {
        switch self {
        case .folder(let dir): return "pool \(dir)"
        case .files(let metadata, _): return "metadata \(metadata)"
        case .dmPool(let name): return "dm pool \(name)"
        case .thinPool(let name): return "LVM thin pool \(name)"
        case .lv(let name), .lvInPool(let name, _): return "LVM volume \(name)"
        }
    }
}
