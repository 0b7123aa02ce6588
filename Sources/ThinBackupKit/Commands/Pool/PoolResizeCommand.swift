import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool resize`: grows the data and/or metadata device.
    struct Resize: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "resize",
            abstract: "Grow the pool's data and/or metadata device (no shrinking), then commit.")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .customLong("data-size"), help: "New data device size.")
        public var dataSize: ByteSize?
        @Option(name: .customLong("metadata-size"), help: "New metadata device size (usable up to 15.875 GiB).")
        public var metadataSize: ByteSize?

        public func validate() throws {
            if dataSize == nil && metadataSize == nil { throw ValidationError("give --data-size and/or --metadata-size") }
        }

        public func run() throws {
            try dataSize?.requireWholeSectors("--data-size")
            try metadataSize?.requireWholeSectors("--metadata-size")
            let p = try pool.openForChange()
            let shown = p.warnings.count
            try p.resize(dataSize: dataSize?.bytes, metadataSize: metadataSize?.bytes)
            for w in p.warnings.dropFirst(shown) { ThinBackupMain.writeStderr("thin-backup: warning: \(w)\n") }
        }
    }
}
