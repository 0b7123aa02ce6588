import ArgumentParser
import Delta

/// `thin-backup merge`: applies a stream's changes onto an external origin.
public struct MergeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Apply a delta stream onto a plain file or block device (changed blocks written, discarded and zero runs zeroed).",
        discussion: "A stream file is verified completely before the first write; a stream on stdin is applied as it arrives."
    )

    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://BUCKET/KEY.", valueName: "src"))
    public var stream: String
    @OptionGroup public var network: NetworkOptions
    @Option(help: ArgumentHelp("File or block device to update.", valueName: "target")) public var into: String
    @OptionGroup public var key: KeyOptions
    @OptionGroup public var output: ReportOptions

    public init() {}

    public func run() throws {
        let keyring = try key.keyring()
        var source: ByteSource?
        if try Endpoint(parsing: stream).isRemote {
            // Like a stream file: verified completely (a first download) before the first write.
            let options = try network.transportOptions()
            _ = try verifyStream(source: try Transport.source(for: stream, options: options), quiet: output.quiet, keyring: keyring)
            source = try Transport.source(for: stream, options: options)
        }
        let r = try runMerge(stream: stream, into: into, quiet: output.quiet, source: source, keyring: keyring)
        try output.report(r, line: "merged into \(into): \(r.dataBlocks) blocks written, \(r.zeroedBlocks) zeroed")
    }
}
