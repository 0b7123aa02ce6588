import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool create-thin`: a new empty thin device.
    struct CreateThin: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "create-thin",
            abstract: "Create an empty thin device (optionally over a read-only external origin file).")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "Thin device id (0 … 16777215).")
        public var dev: UInt64
        @Option(name: .long, help: "Virtual size, whole 512-byte sectors (e.g. 1G).")
        public var size: ByteSize
        @Option(name: .customLong("origin-file"), help: "External origin: unprovisioned blocks read from this file.")
        public var originFile: String?

        public func run() throws {
            try size.requireWholeSectors("--size")
            let p = try pool.openForChange()
            try p.createThin(dev, virtualSize: size.bytes, originFile: originFile)
            try p.commit()
        }
    }
}
