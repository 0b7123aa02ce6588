import ArgumentParser
import Foundation

/// `thin-backup restore`: a backup back into a pool or a file.
struct RestoreCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup (the newest, the one at --at TIME, or --id ID) into a pool folder, a file, a live kernel pool or a new LVM thin volume.",
        discussion: """
            Every stream of the chain is checked before anything is written. Into a pool folder the chain is \
            received (the result is device --as, default --dev; intermediate devices are removed); into a file \
            the chain is merged onto a new zero-filled file, renamed into place at the end.
            """
    ).underRoot()

    @Option(help: ArgumentHelp("Repository.", valueName: "dest")) public var repo: String
    @Option(help: ArgumentHelp("The backed-up thin device.", valueName: "id")) public var dev: UInt64
    @Option(help: ArgumentHelp("The newest backup taken at or before TIME (2026-01-31T02:00:00Z or 2026-01-31).", valueName: "time"))
    public var at: String?
    @Option(help: ArgumentHelp("This backup (see list).", valueName: "id")) public var id: Int64?
    @Option(help: ArgumentHelp("A pool folder or a file.", valueName: "pool|file")) public var to: String?
    @Option(name: .customLong("to-dm-pool"), help: ArgumentHelp("A live kernel pool: the chain is received into it (thin id --as, default --dev).", valueName: "name"))
    public var toDMPool: String?
    @Option(name: .customLong("to-lv"), help: ArgumentHelp("A new LVM thin volume, made in --thin-pool: the chain is received into it (each member its next version; older ones removed).", valueName: "vg/lv"))
    public var toLV: String?
    @Option(name: .customLong("thin-pool"), help: ArgumentHelp("With --to-lv: the LVM thin pool to make the volume in.", valueName: "vg/pool"))
    public var thinPool: String?
    @Option(name: .customLong("as"), help: ArgumentHelp("Device id in the target pool (default: --dev).", valueName: "id"))
    public var asDevice: UInt64?
    @Option(help: ArgumentHelp("For a device over an external origin: that origin file (a file restore starts from its bytes; a pool restore creates the device over it).", valueName: "file"))
    public var origin: String?
    @Option(help: ArgumentHelp("Source pool id, when several pools back up the same device id.", valueName: "id")) public var poolId: String?
    @OptionGroup public var net: RepositoryTransportOptions
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws {
        if at != nil && id != nil { throw ValidationError("give --at or --id, not both") }
        if [to != nil, toDMPool != nil, toLV != nil].filter({ $0 }).count != 1 {
            throw ValidationError("give one target: --to POOL|FILE, --to-dm-pool NAME or --to-lv VG/LV --thin-pool VG/POOL")
        }
        if (toLV == nil) != (thinPool == nil) { throw ValidationError("--to-lv VG/LV and --thin-pool VG/POOL go together") }
        if toLV != nil, asDevice != nil { throw ValidationError("--as names a device id in a kernel pool or pool folder; --to-lv names the volume") }
        if let at, WorkflowClock.parse(at) == nil { throw ValidationError("--at: not a time: \(at)") }
    }

    public func run() throws {
        var req = RestoreRequest(repo: repo, dev: dev, to: to ?? toLV ?? "dm pool \(toDMPool ?? "")")
        req.toDMPool = toDMPool
        req.toLV = toLV
        req.thinPool = thinPool
        req.at = at.flatMap(WorkflowClock.parse)
        req.id = id
        req.asDevice = asDevice
        req.poolID = poolId
        req.origin = origin
        req.quiet = output.quiet
        req.options = net.transportOptions()
        req.keyring = try key.keyring()
        let r = try runRestore(req)
        try output.report(r, line: "restored backup \(r.backup) (\(r.createdAt), chain \(r.chain.map(String.init).joined(separator: "→"))) "
            + "to \(r.target)\(r.device.map { " as thin device \($0)" } ?? ""); digest \(r.digest)")
    }
}
