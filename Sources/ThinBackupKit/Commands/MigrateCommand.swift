import ArgumentParser
import Foundation

/// `thin-backup migrate`: moves a thin device to another pool with a short cutover.
struct MigrateCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy a thin device to a receiver in incremental rounds while it is in use, then freeze and send the rest.",
        discussion: """
            Rounds repeat until one moves less than --until-delta of changed data (or --max-rounds); then \
            --freeze-cmd runs (stop the service, suspend the device), a final round sends what is left, and \
            --thaw-cmd runs. Prints each round's bytes and the downtime window (freeze start to thaw end). \
            DEST: tb://HOST:PORT (`serve --pool`; each round's device is its snapshot id) or a local pool folder. \
            A kernel source (--dm-pool, --lv) is snapshotted live; for the final round (after --freeze-cmd) its \
            active dm devices are suspended (LVM: the volume is made read-only) and stay so unless --resume-source.
            """
    ).underRoot()

    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("Thin device to migrate (with --lv: that volume's thin id).", valueName: "id")) public var dev: UInt64?
    @Option(help: ArgumentHelp("tb://HOST:PORT or a pool folder.", valueName: "dest")) public var to: String
    @Option(help: ArgumentHelp("Freeze once a round changed less than SIZE (e.g. 64M).", valueName: "size")) public var untilDelta = ByteSize(bytes: 64 << 20)
    @Option(help: "Freeze after at most this many live rounds.") public var maxRounds = 10
    @Option(help: ArgumentHelp("Shell command run before the final round.", valueName: "cmd")) public var freezeCmd: String?
    @Option(help: ArgumentHelp("Shell command run after the final round.", valueName: "cmd")) public var thawCmd: String?
    @Flag(help: "A kernel source: give it back after the final round (raw dm: resume its devices; LVM: lvchange -p rw); by default it stays suspended / read-only: the source is retired.")
    public var resumeSource = false
    @Option(help: ArgumentHelp("Bearer token file for tb://.", valueName: "file")) public var tokenFile: String?
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws {
        if maxRounds < 1 { throw ValidationError("--max-rounds must be at least 1") }
    }

    public func run() throws {
        let access = try pool.open()
        defer { access.close() }
        guard let dev = try dev ?? pool.volumeDevice(of: access) else { throw JobError(.usage, "give the thin device to migrate: --dev ID (or --lv VG/LV)") }
        var req = MigrateRequest(pool: access, dev: dev, to: to)
        req.resumeSource = resumeSource
        req.untilDelta = untilDelta.bytes
        req.maxRounds = maxRounds
        req.freezeCommand = freezeCmd
        req.thawCommand = thawCmd
        req.quiet = output.quiet
        req.keyring = try key.keyring()
        req.options.tokenFile = tokenFile
        let r = try runMigrate(req)
        let rounds = r.rounds.map { "round \($0.round)\($0.frozen ? " (frozen)" : ""): \(formatBytes($0.rawBytes)) changed, \(formatBytes($0.streamBytes)) sent" }
        try output.report(r, line: rounds.joined(separator: "\n") + "\nmigrated thin device \(dev) as device \(r.finalSnapshot) "
            + "(digest \(r.digest)); downtime \(String(format: "%.2f", r.downtimeSeconds)) s; \(formatBytes(r.totalStreamBytes)) sent in \(r.rounds.count) rounds"
            + (r.frozenSource.isEmpty ? "" : r.sourceThawed ? "; source \(r.frozenSource.joined(separator: ", ")) given back"
                : "; source \(r.frozenSource.joined(separator: ", ")) left \(r.frozenAs ?? "frozen") (retired)"))
    }
}
