import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool set`: changes a pool's settings kept beside its metadata (pool.json).
    struct SetOptions: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Change a pool's settings (the data low-water mark), stored in pool.json.")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .customLong("low-water"), help: "Data low-water mark in blocks: a warning when free data blocks fall to it.")
        public var lowWater: UInt64

        public func run() throws {
            let p = try pool.openForChange()
            defer { p.close() }
            guard lowWater <= p.dataBlockCount else {
                throw JobError("--low-water \(lowWater) is above the pool's \(p.dataBlockCount) data blocks")
            }
            p.dataLowWaterMark = lowWater
            try p.commit()
            if p.freeDataBlocks <= lowWater {
                ThinBackupMain.writeStderr("thin-backup: warning: \(PoolEvent.dataLow(freeBlocks: p.freeDataBlocks, lowWaterMark: lowWater))\n")
            }
        }
    }
}
