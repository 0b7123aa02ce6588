import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool create`: formats a new userspace pool in a folder.
    struct Create: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "create",
            abstract: "Create and format a pool folder (metadata, data, pool.json).")

        @Option(name: .long, help: "The pool folder to create.")
        public var pool: String
        @Option(name: .customLong("data-size"), help: "Data device size (e.g. 10G).")
        public var dataSize: ByteSize
        @Option(name: .customLong("block-size"), help: "Data block size: a multiple of 64k up to 1g.")
        public var blockSize = ByteSize(bytes: 64 << 10)
        @Option(name: .customLong("metadata-size"), help: "Metadata device size (default: 48 bytes per data block, at least 2M).")
        public var metadataSize: ByteSize?
        @Option(name: .customLong("low-water"), help: "Data low-water mark in blocks: a warning when free data blocks fall to it (default: 1/16 of the pool).")
        public var lowWater: UInt64?

        public func run() throws {
            // Checked before anything is created: a refused command leaves no pool behind.
            try dataSize.requireWholeSectors("--data-size")
            try metadataSize?.requireWholeSectors("--metadata-size")
            if let lowWater, blockSize.bytes > 0, lowWater > dataSize.bytes / blockSize.bytes {
                throw JobError("--low-water \(lowWater) is above the pool's \(dataSize.bytes / blockSize.bytes) data blocks")
            }
            let p = try ThinPool.create(folder: pool, dataSize: dataSize.bytes, blockSize: blockSize.bytes, metadataSize: metadataSize?.bytes)
            if let lowWater {
                p.dataLowWaterMark = lowWater
                try p.commit()
            }
            for w in p.warnings { ThinBackupMain.writeStderr("thin-backup: warning: \(w)\n") }
            print("created pool \(pool): \(p.dataBlockCount) data blocks of \(p.dataBlockSize) bytes, \(p.metadata.metadataBlockCount) metadata blocks")
        }
    }
}
