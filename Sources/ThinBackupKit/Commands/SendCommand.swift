import ArgumentParser
import Delta

/// `thin-backup send`: a snapshot (or what changed since a base snapshot) as a delta stream.
struct SendCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Write a thin snapshot, or its changes since a base snapshot, as a compressed delta stream.",
        discussion: """
            Reads through a metadata snapshot: reserves one and releases it afterwards, or uses the held one \
            with -m. Only mapped blocks (full send) or changed blocks (--from) are read, at their data-block \
            addresses; all-zero blocks travel without payload. Send snapshots that nobody writes: a device \
            whose mappings change during the send is refused. Prints the target's content digest.
            """
    ).underRoot()

    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("Base snapshot id: send only the changes since it.", valueName: "id")) public var from: UInt64?
    @Option(name: .customLong("snap"), help: ArgumentHelp("Snapshot to send (with --lv: that volume's thin id).", valueName: "id")) public var target: UInt64?
    @Option(help: ArgumentHelp("Destination: a file, - for stdout, http(s)://…, s3://BUCKET/KEY, or a serve receiver tb://HOST:PORT (tbs:// with TLS).",
                               valueName: "dest")) public var to: String
    @Option(name: .customLong("as"), help: ArgumentHelp("Device id on a tb:// receiver (default: the snapshot's id).", valueName: "id"))
    public var asDevice: UInt64?
    @OptionGroup public var network: NetworkOptions
    @Option(help: "zstd level (1–19; negative: faster).") public var level: Int32 = 3
    @Option(help: "Compression threads (default: one per core).") public var threads: Int32?
    @OptionGroup public var snap: MetadataSnapOptions
    @Flag(help: "Read the live metadata without a metadata snapshot (a pool nobody uses).") public var liveMetadata = false
    @Option(help: ArgumentHelp("Content digest of the base (printed by its send); saves reading the whole base.", valueName: "hex"))
    public var baseDigest: String?
    @Option(help: ArgumentHelp("Resume point reported by an interrupted receive.", valueName: "token")) public var resumeFrom: String?
    @Option(help: ArgumentHelp("Virtual size of the snapshot, when the pool does not record it: whole 512-byte sectors (e.g. 10G).", valueName: "size"))
    public var size: ByteSize?
    @Flag(help: "Overwrite the file --to names if it exists.") public var force = false
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public func validate() throws { try arguments.check() }

    /// The options' values as plain fields.
    var arguments: SendArguments {
        SendArguments(pool: pool.names, from: from, target: target, to: to, asDevice: asDevice, network: network.values,
                      level: level, threads: threads, metadataSnap: snap.choice, liveMetadata: liveMetadata,
                      baseDigest: baseDigest, resumeFrom: resumeFrom, size: size, force: force, key: key.names,
                      output: output.mode)
    }

    public func run() throws { try arguments.run() }
}

/// `send`'s values as plain fields (the same defaults as its options; `to` has none), and the
/// send they ask for: from the parsed `SendCommand`, or built directly by `SendDirectParse`,
/// which does not instantiate ArgumentParser's types.
struct SendArguments: Equatable {
    var pool = PoolNames()
    var from: UInt64?
    var target: UInt64?
    var to: String
    var asDevice: UInt64?
    var network = NetworkValues()
    var level: Int32 = 3
    var threads: Int32?
    var metadataSnap: MetadataSnapChoice?
    var liveMetadata = false
    var baseDigest: String?
    var resumeFrom: String?
    var size: ByteSize?
    var force = false
    var key = KeyNames()
    var output = ReportMode()

    /// What ArgumentParser checks before it gives the command: each option group, then the command.
    func validate() throws {
        try pool.validate()
        try metadataSnap?.validate()
        try key.validate()
        try check()
    }

    /// `SendCommand.validate()`: what the command checks besides its option groups.
    func check() throws {
        if !pool.isGiven { throw ValidationError("give --pool DIR, --metadata FILE --data FILE, --dm-pool NAME, --thin-pool VG/POOL or --lv VG/LV") }
        if pool.metadata != nil && pool.data == nil { throw ValidationError("--metadata needs --data (send reads data blocks)") }
        if metadataSnap != nil && liveMetadata { throw ValidationError("-m and --live-metadata exclude each other") }
        if let d = baseDigest, Digest128(hex: d) == nil { throw ValidationError("--base-digest: expected 32 hex digits") }
        if baseDigest != nil && from == nil { throw ValidationError("--base-digest needs --from") }
        if target == nil && pool.lv == nil { throw ValidationError("give the snapshot to send: --snap ID (or --lv VG/LV)") }
        if from != nil && from == target { throw ValidationError("--from and --snap name the same device") }
    }

    func run() throws {
        try size?.requireWholeSectors("--size")
        if to != "-", !(try Endpoint(parsing: to).isRemote) { try refuseOverwrite(to, force: force) }
        let access = try pool.open()
        defer { access.close() }
        guard let target = try target ?? pool.selection?.volumeDevice(of: access) else { throw JobError(.usage, "give the snapshot to send: --snap ID") }
        var req = SendRequest(pool: access, target: target, destination: to)
        req.base = from; req.level = level
        if let threads { req.workers = threads }
        req.metadataMode = metadataSnap?.mode ?? (liveMetadata ? .live : .reserve)
        req.baseDigest = baseDigest.flatMap { Digest128(hex: $0) }
        req.resumeToken = resumeFrom
        req.virtualSize = size?.bytes
        req.quiet = output.quiet
        req.keyring = try key.keyring()
        req.transport = try network.transportOptions(targetDevice: asDevice ?? target)
        // A tb:// receiver holding an interrupted receive of this device: continue at its checkpoint.
        if req.resumeToken == nil, let token = try Transport.receiverResumeToken(for: to, options: req.transport) {
            req.resumeToken = token
        }
        let r = try runSend(req)
        let ratio = r.rawBytes == 0 ? 0 : Double(r.streamBytes) / Double(r.rawBytes)
        try output.report(r, line: "sent thin device \(r.device)\(r.base.map { " (changes since \($0))" } ?? ""): "
            + "\(r.dataBlocks) data, \(r.zeroBlocks) zero, \(r.discardBlocks) discarded blocks; "
            + "\(formatBytes(r.rawBytes)) → \(formatBytes(r.streamBytes)) (\(Int(ratio * 100))%); digest \(r.targetDigest ?? "-")",
            streamOnStdout: to == "-")
    }
}
