import ArgumentParser

/// `thin-backup receive`: replays a delta stream into a pool.
struct ReceiveCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Replay a delta stream into a pool (atomic: committed only after the trailer verified).",
        discussion: """
            A full stream creates a new thin device; an incremental one a snapshot of the local copy of its \
            base, which must be unchanged since it was received. Receiving the same stream twice changes \
            nothing. With --checkpoint, progress is committed as it goes and an interrupted receive continues \
            with --resume (from the whole stream again, or from `send --resume-from TOKEN`).

            Into LVM: --lv VG/LV names the volume, always the newest version received (with --thin-pool VG/POOL \
            it is created when missing); an incremental stream goes into a new snapshot of VG/LV, which takes \
            the name once verified, the previous version kept beside it as LV-vTHINID (--keep N). \
            --thin-pool VG/POOL alone receives device D as the volume VG/tb-D.
            """
    ).underRoot()

    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://BUCKET/KEY.", valueName: "src"))
    public var from: String = "-"
    @OptionGroup public var network: NetworkOptions
    @Option(name: .customLong("as"), help: ArgumentHelp("Local device id (default: the sender's).", valueName: "id"))
    public var asDevice: UInt64?
    @Option(name: .customLong("origin-file"), help: ArgumentHelp("For a stream of a device over an external origin: the new device reads its unmapped blocks from this file.", valueName: "file"))
    public var originFile: String?
    @Flag(help: "Continue an interrupted receive (or start one when none was interrupted).") public var resume = false
    @Option(help: ArgumentHelp("Commit a resumable checkpoint every SIZE bytes of data (e.g. 256M).", valueName: "size"))
    public var checkpoint: ByteSize?
    @Flag(help: "Print the resume token of the interrupted receive and exit.") public var resumeToken = false
    @Option(help: ArgumentHelp("Kernel pools and LVM: keep this many versions of the received chain (the newest and N-1 before it); older ones received here are deleted.", valueName: "n"))
    public var keep: Int?
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws { try ReceiveArguments.check(keep: keep) }

    /// The options' values as plain fields.
    var arguments: ReceiveArguments {
        ReceiveArguments(pool: pool.names, from: from, network: network.values, asDevice: asDevice, originFile: originFile,
                         resume: resume, checkpoint: checkpoint, resumeToken: resumeToken, keep: keep, key: key.names,
                         output: output.mode)
    }

    public func run() throws { try arguments.run() }
}

/// `receive`'s values as plain fields (the same defaults as its options), and the receive they
/// ask for: from the parsed `ReceiveCommand`, or built directly by `ReceiveDirectParse`, which
/// does not instantiate ArgumentParser's types.
struct ReceiveArguments: Equatable {
    var pool = PoolNames()
    var from = "-"
    var network = NetworkValues()
    var asDevice: UInt64?
    var originFile: String?
    var resume = false
    var checkpoint: ByteSize?
    var resumeToken = false
    var keep: Int?
    var key = KeyNames()
    var output = ReportMode()

    static func check(keep: Int?) throws {
        if let keep, keep < 1 { throw ValidationError("--keep: at least 1 (the version just received), got \(keep)") }
    }

    /// What ArgumentParser checks before it gives the command: each option group, then the command.
    func validate() throws {
        try pool.validate()
        try key.validate()
        try Self.check(keep: keep)
    }

    func run() throws {
        let access = try pool.open(receiving: !resumeToken)
        defer { access.close() }
        if resumeToken {
            print(try ThinBackupKit.resumeToken(access, device: asDevice))
            return
        }
        if let keep {
            guard let k = access as? KernelPoolAccess else { throw JobError(.usage, "--keep works on kernel pools (--dm-pool, --lv, --thin-pool)") }
            k.keepVersions = keep
        }
        var req = ReceiveRequest(pool: access)
        req.source = from; req.targetID = asDevice; req.resume = resume; req.originFile = originFile
        req.checkpointBytes = checkpoint?.bytes
        req.quiet = output.quiet
        req.keyring = try key.keyring()
        req.transport = try network.transportOptions()
        let r = try runReceive(req)
        let what = r.outcome == "alreadyReceived" ? "already received, nothing changed" : "received"
        try output.report(r, line: "\(r.volume ?? "thin device \(r.device)"): \(what) (\(r.incremental ? "incremental" : "full"); "
            + "\(r.dataBlocks) data, \(r.zeroBlocks) zero, \(r.discardBlocks) discarded blocks); digest \(r.contentDigest)")
    }
}
