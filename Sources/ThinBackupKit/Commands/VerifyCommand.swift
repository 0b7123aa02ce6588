import ArgumentParser

/// `thin-backup verify`: checks a stream without a pool, or a device against a digest.
struct VerifyCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a delta stream (--stream), a pool device against the digest its send printed, or a repository (--repo)."
    ).underRoot()

    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://bucket/key.", valueName: "src")) public var stream: String?
    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("Thin device id.", valueName: "id")) public var dev: UInt64?
    @Option(help: ArgumentHelp("Expected content digest (32 hex digits).", valueName: "hex")) public var digest: String?
    @Option(help: ArgumentHelp("Backup repository: check every stream and chain.", valueName: "dest")) public var repo: String?
    @Flag(help: "With --repo: also restore every backup into a scratch pool and compare digests.") public var deep = false
    @OptionGroup public var repoNet: RepositoryTransportOptions
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws {
        if repo != nil {
            if stream != nil || pool.isGiven { throw ValidationError("--repo excludes --stream and --pool") }
            return
        }
        if deep { throw ValidationError("--deep needs --repo") }
        let poolMode = pool.isGiven
        if (stream != nil) == poolMode { throw ValidationError("give either --stream SRC, or --pool DIR --dev N --digest D") }
        if poolMode && (dev == nil || digest == nil) { throw ValidationError("--pool needs --dev N and --digest D") }
    }

    struct DeviceReport: Codable { var ok: Bool; var device: UInt64; var digest: String }

    public func run() throws {
        if let repo {
            try runRepoVerify(repo, deep: deep, options: repoNet.transportOptions(), output: output, keyring: try key.keyring())
            return
        }
        if let stream {
            let r = try verifyStream(source: try Transport.source(for: stream), quiet: output.quiet, keyring: try key.keyring())
            if r.framingOnly {
                try output.report(r, line: "stream framing OK: encrypted \(r.incremental ? "incremental" : "full") stream, \(r.records) records "
                    + "(contents not checked without the key)")
                return
            }
            try output.report(r, line: "stream OK: \(r.encrypted ? "encrypted " : "")\(r.incremental ? "incremental" : "full") stream of thin device \(r.device), "
                + "\(r.records) records, \(r.dataBlocks) data, \(r.zeroBlocks) zero, \(r.discardBlocks) discarded blocks"
                + (r.contentChecked ? ", content digest \(r.targetDigest ?? "") checked" : ""))
        } else {
            let access = try pool.open()
            defer { access.close() }
            let d = try verifyDevice(access, device: dev!, digest: digest!, quiet: output.quiet)
            try output.report(DeviceReport(ok: true, device: dev!, digest: d), line: "thin device \(dev!) matches digest \(d)")
        }
    }
}
