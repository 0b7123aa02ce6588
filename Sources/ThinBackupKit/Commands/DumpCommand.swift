import ArgumentParser

/// `thin-backup dump`: the metadata as thin_dump 0.9.0's XML, byte for byte.
struct Dump: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print a pool's metadata as XML, byte-identical to thin_dump 0.9.0."
    ).underRoot()

    @OptionGroup public var pool: PoolOptions

    @OptionGroup public var snap: MetadataSnapOptions

    @Option(name: .customLong("dev-id"), help: "Only this device (repeatable).")
    public var devIDs: [UInt64] = []

    @Flag(name: .customLong("skip-mappings"), help: "Print the devices without their mappings.")
    public var skipMappings = false

    public var options: PoolDump.Options {
        PoolDump.Options(mode: snap.mode(), deviceIDs: devIDs, skipMappings: skipMappings)
    }

    /// Runs the command with its output going to `out` (tests pass a memory output).
    public func run(to out: TextOutput) throws {
        let access = try pool.open()
        defer { access.close() }
        try PoolDump.dump(try access.readMetadata(), options: options, to: out)
    }

    public func run() throws { try run(to: .standardOutput()) }
}
