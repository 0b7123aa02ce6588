import ArgumentParser

/// `thin-backup dump`: the metadata as thin_dump 0.9.0's XML, byte for byte.
public struct Dump: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a pool's metadata as XML, byte-identical to thin_dump 0.9.0."
    )

    @Option(name: .long, help: "The metadata device or file.")
    public var metadata: String

    @OptionGroup public var snap: MetadataSnapOptions

    @Option(name: .customLong("dev-id"), help: "Only this device (repeatable).")
    public var devIDs: [UInt64] = []

    @Flag(name: .customLong("skip-mappings"), help: "Print the devices without their mappings.")
    public var skipMappings = false

    public init() {}

    public var options: PoolDump.Options {
        PoolDump.Options(metadataSnap: snap.metadataSnap, snapBlock: snap.metadataSnapBlock,
                         deviceIDs: devIDs, skipMappings: skipMappings)
    }

    /// Runs the command with its output going to `out` (tests pass a memory output).
    public func run(to out: TextOutput) throws {
        try PoolDump.dump(metadata: metadata, options: options, to: out)
    }

    public func run() throws { try run(to: .standardOutput()) }
}
