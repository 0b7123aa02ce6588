import ArgumentParser
import PoolCore

/// How every command names a pool: `--pool DIR` (a pool folder), or `--metadata FILE` with
/// `--data FILE` (the pool's devices or copies of them; commands that read only metadata need
/// no `--data`). A new kind of pool adds its options here and one line in `open()`
/// (see `PoolAccess`); the commands only call `open()`.
public struct PoolOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Pool folder (metadata, data, pool.json).", valueName: "dir"))
    public var pool: String?
    @Option(help: ArgumentHelp("Metadata device or file (instead of --pool).", valueName: "file"))
    public var metadata: String?
    @Option(help: ArgumentHelp("Data device or file (with --metadata).", valueName: "file"))
    public var data: String?

    public init() {}

    public func validate() throws {
        if pool != nil && (metadata != nil || data != nil) { throw ValidationError("give either --pool or --metadata/--data, not both") }
        if data != nil && metadata == nil { throw ValidationError("--data needs --metadata") }
    }

    /// Whether a pool was named at all (commands where the pool is optional).
    public var isGiven: Bool { pool != nil || metadata != nil }

    /// The named pool.
    public func open() throws -> any PoolAccess {
        if let pool { return UserspacePool(folder: pool) }
        if let metadata { return UserspacePool(metadata: metadata, data: data) }
        throw JobError(.usage, "give the pool as --pool DIR or as --metadata FILE --data FILE")
    }

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
