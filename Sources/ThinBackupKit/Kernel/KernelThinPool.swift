import Foundation

/// A live kernel dm-thin pool, named by its `thin-pool` target's dm name (raw dm:
/// `--dm-pool NAME`; LVM: `VG-POOL-tpool`). Everything the kernel owns goes through the
/// kernel: metadata snapshots, snapshots and deletes are dm messages; its metadata and data
/// devices are only ever read (O_DIRECT, by `RandomAccessFile` on a block device).
public final class KernelThinPool {
    public let dmName: String
    public let table: ThinPoolTable
    /// `/dev/…` nodes of the metadata and data devices.
    public let metadataPath: String
    public let dataPath: String
    /// MAJOR:MINOR of the pool device (thin targets name their pool by it).
    public let number: String

    public var blockSize: Int { Int(table.blockSectors) * 512 }

    public init(dmName: String) throws {
        self.dmName = dmName
        guard let info = try DeviceMapper.info(dmName) else {
            throw JobError("no device-mapper device named \(dmName) (is the pool active? `dmsetup ls` lists them)")
        }
        let targets = try DeviceMapper.table(dmName)
        guard targets.count == 1, let t = ThinPoolTable(targets[0]) else {
            throw JobError(Self.notAPool(dmName, targets))
        }
        table = t
        number = "\(info.major):\(info.minor)"
        guard let m = BlockDevices.path(of: t.metadataDevice), let d = BlockDevices.path(of: t.dataDevice) else {
            throw JobError("\(dmName): no /dev node for its metadata device \(t.metadataDevice) or data device \(t.dataDevice)")
        }
        metadataPath = m
        dataPath = d
    }

    static func notAPool(_ name: String, _ targets: [DMTarget]) -> String {
        let kinds = targets.map(\.type).joined(separator: ", ")
        if (try? DeviceMapper.info("\(name)-tpool")) ?? nil != nil {
            return "\(name) is an LVM thin pool's front device (\(kinds)); its pool target is \(name)-tpool: "
                + "use --thin-pool VG/POOL, --lv VG/LV, or --dm-pool \(name)-tpool"
        }
        return "\(name) is not a thin-pool target (its table: \(kinds.isEmpty ? "empty" : kinds))"
    }

    public func status() throws -> ThinPoolStatus {
        let s = try DeviceMapper.status(dmName)
        guard s.count == 1, let st = ThinPoolStatus(s[0]) else {
            throw JobError("\(dmName): unexpected thin-pool status: \(s.map(\.params).joined(separator: " | "))")
        }
        return st
    }

    /// Active thin devices of this pool: dm name and table, by thin id.
    public func activeThins() throws -> [UInt64: [(name: String, table: ThinTable)]] {
        var out: [UInt64: [(name: String, table: ThinTable)]] = [:]
        for n in try DeviceMapper.names() {
            guard let ts = try? DeviceMapper.table(n), ts.count == 1, let t = ThinTable(ts[0]), t.poolDevice == number else { continue }
            out[t.deviceID, default: []].append((n, t))
        }
        return out
    }

    /// Fails with the pool's state when it cannot take snapshots now.
    public func requireWritable() throws {
        if let why = try status().refusal { throw JobError("\(dmName): \(why)") }
    }

    /// `create_snap NEW ORIGIN`; an active origin is suspended (its I/O flushed) around the
    /// message and always resumed — a signal waits for the resume (one step, `Interrupts`). One
    /// already suspended (a cutover's freeze) stays suspended.
    public func createSnapshot(of origin: UInt64, as dev: UInt64) throws {
        try Interrupts.shared.uninterruptible("create_snap \(dev) of \(origin) on \(dmName)") {
            try createSnapshotNow(of: origin, as: dev)
        }
    }

    private func createSnapshotNow(of origin: UInt64, as dev: UInt64) throws {
        try requireWritable()
        let active = try activeThins()
        if active[dev] != nil { throw JobError("\(dmName): thin device \(dev) exists (it is active)") }
        var suspended: [String] = []
        defer { for n in suspended.reversed() { try? DeviceMapper.resume(n) } }
        for (name, _) in active[origin] ?? [] {
            guard try DeviceMapper.info(name)?.suspended != true else { continue }
            try DeviceMapper.suspend(name)
            suspended.append(name)
        }
        do {
            try DeviceMapper.message(dmName, "create_snap \(dev) \(origin)")
        } catch {
            throw JobError("\(dmName): create_snap \(dev) of \(origin) refused: \(error)")
        }
    }

    public func createThin(_ dev: UInt64) throws {
        try requireWritable()
        try DeviceMapper.message(dmName, "create_thin \(dev)")
    }

    /// `delete DEV`; refused while the device is active (the kernel would refuse too, less clearly).
    public func delete(_ dev: UInt64) throws {
        if let a = try activeThins()[dev] {
            throw JobError("\(dmName): thin device \(dev) is active (\(a.map(\.name).joined(separator: ", "))); remove it first")
        }
        try DeviceMapper.message(dmName, "delete \(dev)")
    }

    /// The live pool whose `thin-pool` table names the block device at `path` as its metadata
    /// device (`--metadata /dev/…` of a pool the kernel runs, e.g. LVM's `VG-POOL_tmeta`), or
    /// nil: `path` is no block device, or no active pool uses it.
    public static func using(metadata path: String) throws -> KernelThinPool? {
        guard let num = BlockDevices.number(of: path) else { return nil }
        for n in try DeviceMapper.names() {
            guard let ts = try? DeviceMapper.table(n), ts.count == 1, let t = ThinPoolTable(ts[0]),
                  t.metadataDevice == num else { continue }
            return try KernelThinPool(dmName: n)
        }
        return nil
    }

    /// The size of `dev` from an active thin device's table, or nil when none is active.
    public func activeSize(of dev: UInt64) throws -> UInt64? {
        try activeThins()[dev]?.first.map {
            guard let bytes = $0.table.sizeBytes else {
                throw JobError("\(dmName): thin device \(dev)'s table is \($0.table.lengthSectors) sectors, beyond 8 EiB")
            }
            return bytes
        }
    }
}
