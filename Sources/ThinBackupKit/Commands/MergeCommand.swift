import ArgumentParser
import Delta

/// `thin-backup merge`: applies a stream's changes onto an external origin.
struct MergeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Apply a delta stream onto a plain file or block device, or write a thin device's changes back into its external origin.",
        discussion: """
            With --stream: changed blocks written, zero and discarded runs made to read zeros without allocating (holes in a \
            file, discards on a device) or, over an external origin, given the origin's bytes. A stream file is verified \
            completely before the first write; a stream on stdin is applied as it arrives. A missing target file is created \
            (sparse) at the stream's virtual size; a block device smaller than that is refused.
            With a pool (--dm-pool P --dev N, --lv VG/LV, --pool DIR --dev N) instead: thin device N, made over the external \
            origin INTO, has exactly its mapped blocks written into INTO, checked first against the pool's own read of the \
            device (the kernel's, on a kernel pool) and read back after; --reset then makes N empty again over the origin. \
            The device must be inactive and nobody may hold the origin or have it open for writing.
            """
    ).underRoot()

    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://BUCKET/KEY.", valueName: "src"))
    public var stream: String?
    @OptionGroup public var pool: PoolOptions
    @Option(help: ArgumentHelp("With a pool: the thin device over the origin (with --lv: that volume's thin id).", valueName: "id"))
    public var dev: UInt64?
    @Flag(help: "With a pool: after the verified merge, delete the device and create it again, empty, over the origin (raw dm and pool folders).")
    public var reset = false
    @OptionGroup public var network: NetworkOptions
    @Option(help: ArgumentHelp("File (created when missing) or block device to update.", valueName: "target")) public var into: String
    @OptionGroup public var key: KeyOptions
    @Option(help: ArgumentHelp("The external origin (file or block device) whose bytes the stream's device reads where it has no mapping: discarded blocks get its bytes. Needed for such a stream with discards.", valueName: "file"))
    public var origin: String?
    @OptionGroup public var output: ReportOptions

    public func validate() throws {
        if (stream == nil) == !pool.isGiven {
            throw ValidationError("give either --stream SRC (apply a stream) or a pool with --dev (merge a thin device into its origin)")
        }
        if stream != nil && (dev != nil || reset) { throw ValidationError("--dev and --reset go with a pool, not with --stream") }
        if pool.isGiven && origin != nil { throw ValidationError("--origin goes with --stream; with a pool, --into names the origin") }
    }

    public func run() throws {
        guard let stream else { return try mergeDevice() }
        let keyring = try key.keyring()
        var source: ByteSource?
        if try Endpoint(parsing: stream).isRemote {
            // Like a stream file: verified completely (a first download) before the first write.
            let options = try network.transportOptions()
            try requireOrigin(try verifyStream(source: try Transport.source(for: stream, options: options), quiet: output.quiet, keyring: keyring),
                              origin: origin, stream: stream)
            source = try Transport.source(for: stream, options: options)
        }
        let r = try runMerge(stream: stream, into: into, quiet: output.quiet, source: source, origin: origin, keyring: keyring)
        try output.report(r, line: "merged into \(into): \(r.dataBlocks) blocks written, \(r.zeroedBlocks) zeroed (\(r.unmappedBytes) bytes unallocated, \(r.zeroWrittenBytes) written as zeros)"
            + (r.originBlocks > 0 ? ", \(r.originBlocks) from the origin" : ""))
    }

    /// `merge --dm-pool P --dev N --into ORIGIN`: the device's blocks into its external origin.
    private func mergeDevice() throws {
        let access = try pool.open()
        defer { access.close() }
        guard let dev = try dev ?? pool.volumeDevice(of: access) else {
            throw JobError(.usage, "give the thin device over the origin: --dev ID (or --lv VG/LV)")
        }
        var req = OriginMergeRequest(pool: access, dev: dev, origin: into)
        req.reset = reset
        req.quiet = output.quiet
        let r = try runOriginMerge(req)
        try output.report(r, line: "merged thin device \(dev) into \(into): \(r.mappedBlocks) blocks (\(formatBytes(r.bytesWritten))) written, "
            + "read back equal to \(r.verifiedAgainst) (digest \(r.digest))" + (r.reset ? "; device \(dev) is empty again over the origin" : ""))
    }
}
