import ArgumentParser
import Delta

/// `thin-backup merge`: applies a stream's changes onto an external origin.
public struct MergeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Apply a delta stream onto a plain file or block device (changed blocks written, zero and discarded runs made to read zeros without allocating — holes in a file, discards on a device — or, over an external origin, given the origin's bytes).",
        discussion: "A stream file is verified completely before the first write; a stream on stdin is applied as it arrives. A missing target file is created (sparse) at the stream's virtual size; a block device smaller than that is refused."
    )

    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://BUCKET/KEY.", valueName: "src"))
    public var stream: String
    @OptionGroup public var network: NetworkOptions
    @Option(help: ArgumentHelp("File (created when missing) or block device to update.", valueName: "target")) public var into: String
    @OptionGroup public var key: KeyOptions
    @Option(help: ArgumentHelp("The external origin (file or block device) whose bytes the stream's device reads where it has no mapping: discarded blocks get its bytes. Needed for such a stream with discards.", valueName: "file"))
    public var origin: String?
    @OptionGroup public var output: ReportOptions

    public init() {}

    public func run() throws {
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
}
