import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool snapshot`: an internal snapshot sharing the origin's tree.
    struct Snapshot: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "snapshot",
            abstract: "Snapshot thin device --origin as new device --dev.")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "The device to snapshot.")
        public var origin: UInt64
        @Option(name: .long, help: "Id of the new snapshot device.")
        public var dev: UInt64

        public func run() throws {
            let p = try pool.openForChange()
            try p.snapshot(origin: origin, as: dev)
            try p.commit()
        }
    }
}
