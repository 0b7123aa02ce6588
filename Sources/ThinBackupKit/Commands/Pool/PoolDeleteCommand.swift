import ArgumentParser
import Delta
import PoolCore

extension PoolCommand {
    /// `thin-backup pool delete`: removes a thin device (and its block digest map).
    struct Delete: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "delete",
            abstract: "Delete a thin device (blocks it shares with others stay).")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "Thin device id.")
        public var dev: UInt64

        public func run() throws {
            let p = try pool.openForChange()
            try p.delete(dev)
            try p.commit()
            p.removeDigestMap(of: dev)  // the receiver's block digest map (README), after the commit
        }
    }
}
