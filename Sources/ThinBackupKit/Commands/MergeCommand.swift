import ArgumentParser

/// `thin-backup merge`: applies a stream's changes onto an external origin.
public struct MergeCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Apply a delta stream onto a plain file or block device (changed blocks written, discarded and zero runs zeroed).",
        discussion: "A stream file is verified completely before the first write; a stream on stdin is applied as it arrives."
    )

    @Option(help: ArgumentHelp("Stream: a file, - for stdin, http(s)://… or s3://bucket/key.", valueName: "src")) public var stream: String
    @Option(help: ArgumentHelp("File or block device to update.", valueName: "target")) public var into: String
    @OptionGroup public var output: ReportOptions

    public init() {}

    public func run() throws {
        let r = try runMerge(stream: stream, into: into, quiet: output.quiet)
        try output.report(r, line: "merged into \(into): \(r.dataBlocks) blocks written, \(r.zeroedBlocks) zeroed")
    }
}
