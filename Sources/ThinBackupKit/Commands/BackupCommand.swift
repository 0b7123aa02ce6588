import ArgumentParser
import Foundation

/// `thin-backup backup`: one backup of a thin device into a repository.
struct BackupCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Snapshot a thin device and store it in a repository (full the first time, then incremental).",
        discussion: """
            The repository is a folder, an http(s):// URL or s3://BUCKET/PREFIX. Its catalog (SQLite) is stored \
            there with every backup; a copy stays beside the pool. Only the newest backed-up snapshot stays on \
            the pool (the base of the next incremental). Exit codes: 0 done, 1 failed, 64 usage, 75 another run \
            holds the pool or repository lock.
            """
    ).underRoot()

    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("Thin device to back up (with --lv: that volume's thin id).", valueName: "id")) public var dev: UInt64?
    @Option(help: ArgumentHelp("Repository: folder, http(s)://URL or s3://BUCKET/PREFIX.", valueName: "dest")) public var repo: String
    @Option(help: ArgumentHelp("Record this time instead of now (2026-01-31T02:00:00Z; also $THIN_BACKUP_NOW).", valueName: "time"))
    public var now: String?
    @Option(help: "zstd level (1–19).") public var level: Int32 = 3
    @OptionGroup public var net: RepositoryTransportOptions
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func run() throws {
        let access = try pool.open()
        defer { access.close() }
        guard let dev = try dev ?? pool.volumeDevice(of: access) else { throw JobError(.usage, "give the thin device to back up: --dev ID (or --lv VG/LV)") }
        var req = BackupRequest(pool: access, dev: dev, repo: repo)
        req.keyring = try key.keyring()
        req.now = try WorkflowClock.now(now)
        req.level = level
        req.quiet = output.quiet
        req.options = net.transportOptions()
        let r = try runBackup(req)
        try output.report(r, line: "backup \(r.id): \(r.kind) of thin device \(r.dev) (snapshot \(r.snapshot)"
            + "\(r.base.map { ", base backup \($0)" } ?? "")), \(formatBytes(r.rawBytes)) → \(formatBytes(r.streamBytes))"
            + "\(r.deletedSnapshot.map { "; deleted old snapshot \($0)" } ?? "")\(r.note.map { "; \($0)" } ?? "")")
    }
}

/// Options for reaching a repository over the network.
struct RepositoryTransportOptions: ParsableArguments {
    @Option(help: ArgumentHelp("S3 endpoint (MinIO, Ceph, moto): http(s)://HOST:PORT.", valueName: "url")) public var s3Endpoint: String?
    @Option(help: ArgumentHelp("Trusted CA bundle (PEM) for https.", valueName: "file")) public var caFile: String?

    func transportOptions() -> TransportOptions {
        var o = TransportOptions()
        o.s3Endpoint = s3Endpoint
        o.tls.caFile = caFile
        return o
    }
}
