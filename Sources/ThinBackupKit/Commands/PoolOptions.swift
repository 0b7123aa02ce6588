import ArgumentParser
import PoolCore

/// How every command names a pool: `--pool DIR` (a pool folder), or `--metadata FILE` with
/// `--data FILE` (the pool's devices or copies of them; commands that read only metadata need
/// no `--data`), or a live kernel pool: `--dm-pool NAME`, `--thin-pool VG/POOL`, `--lv VG/LV`. A new kind of pool adds its options here, a case to
/// `PoolSelection` and one line in its `open()` (see `PoolAccess`); the commands only call `open()`.
struct PoolOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Pool folder (metadata, data, pool.json).", valueName: "dir"))
    public var pool: String?
    @Option(help: ArgumentHelp("Metadata device or file (instead of --pool).", valueName: "file"))
    public var metadata: String?
    @Option(help: ArgumentHelp("Data device or file (with --metadata).", valueName: "file"))
    public var data: String?
    @Option(name: .customLong("dm-pool"), help: ArgumentHelp("A live kernel thin pool: the device-mapper name of its thin-pool target.", valueName: "name"))
    public var dmPool: String?
    @Option(name: .customLong("thin-pool"), help: ArgumentHelp("A live LVM thin pool (with --lv: the pool a receive creates a missing volume in).", valueName: "vg/pool"))
    public var thinPool: String?
    @Option(name: .customLong("lv"), help: ArgumentHelp("A live LVM thin volume: names its pool (devices are thin ids); receive: the volume received into.", valueName: "vg/lv"))
    public var lv: String?

    public func validate() throws { try names.validate() }

    /// The options' values as plain fields.
    var names: PoolNames { PoolNames(pool: pool, metadata: metadata, data: data, dmPool: dmPool, thinPool: thinPool, lv: lv) }

    /// Whether a pool was named at all (commands where the pool is optional).
    public var isGiven: Bool { names.isGiven }

    /// The named pool, as a selection (nil: none named).
    public var selection: PoolSelection? { names.selection }

    /// The named pool; `receiving`: to receive into (an LVM pool is activated when LVM has not).
    public func open(receiving: Bool = false) throws -> any PoolAccess { try names.open(receiving: receiving) }

    /// With `--lv VG/LV`: that volume's thin id (the device commands act on by default), from
    /// the pool `open()` gave.
    public func volumeDevice(of access: any PoolAccess) throws -> UInt64? { try selection?.volumeDevice(of: access) }

    /// The named pool as a userspace pool to change; its warnings and low-space events
    /// become warning lines on stderr.
    func openForChange(readOnly: Bool = false) throws -> ThinPool {
        let access = try open()
        defer { access.close() }
        let p = try access.userspacePool(readOnly: readOnly)
        for w in p.warnings { ThinBackupMain.writeStderr("thin-backup: warning: \(w)\n") }
        p.onEvent = { e in ThinBackupMain.writeStderr("thin-backup: warning: \(e)\n") }
        return p
    }
}

/// `PoolOptions`' values as plain fields, and what they mean: filled in from the options, or
/// directly by `receive`'s parse (`ReceiveDirectParse`), which does not instantiate ArgumentParser's types.
struct PoolNames: Equatable {
    var pool: String?
    var metadata: String?
    var data: String?
    var dmPool: String?
    var thinPool: String?
    var lv: String?

    func validate() throws {
        if pool != nil && (metadata != nil || data != nil) { throw ValidationError("give either --pool or --metadata/--data, not both") }
        if data != nil && metadata == nil { throw ValidationError("--data needs --metadata") }
        // --lv with --thin-pool: a volume of that pool, which a receive creates when missing.
        let kinds = [pool != nil || metadata != nil, dmPool != nil, thinPool != nil || lv != nil].filter { $0 }.count
        if kinds > 1 { throw ValidationError("name one pool: --pool, --metadata/--data, --dm-pool, --thin-pool or --lv") }
        if let lv, let thinPool, lv.split(separator: "/").first != thinPool.split(separator: "/").first {
            throw ValidationError("--lv \(lv) and --thin-pool \(thinPool): a volume of that pool is in its volume group")
        }
    }

    /// Whether a pool was named at all (commands where the pool is optional).
    var isGiven: Bool { pool != nil || metadata != nil || dmPool != nil || thinPool != nil || lv != nil }

    /// The named pool, as a selection (nil: none named).
    var selection: PoolSelection? {
        if let pool { return .folder(pool) }
        if let metadata { return .files(metadata: metadata, data: data) }
        if let dmPool { return .dmPool(dmPool) }
        if let lv, let thinPool { return .lvInPool(lv: lv, pool: thinPool) }
        if let thinPool { return .thinPool(thinPool) }
        if let lv { return .lv(lv) }
        return nil
    }

    /// The named pool; `receiving`: to receive into (an LVM pool is activated when LVM has not).
    func open(receiving: Bool = false) throws -> any PoolAccess {
        guard let selection else {
            throw JobError(.usage, "give the pool as --pool DIR, --metadata FILE --data FILE, --dm-pool NAME, --thin-pool VG/POOL or --lv VG/LV")
        }
        return try selection.open(receiving: receiving)
    }
}
