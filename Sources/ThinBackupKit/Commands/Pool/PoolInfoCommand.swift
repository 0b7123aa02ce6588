import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool info`: sizes, usage, transaction and devices of a pool.
    struct Info: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "info",
            abstract: "Show a pool's block size, space usage, transaction, held metadata snapshot and devices.")

        @OptionGroup public var pool: PoolOptions

        public func run() throws {
            let p = try pool.open().userspacePool(readOnly: true)
            let md = p.metadata
            print("data block size: \(p.dataBlockSize) bytes")
            print("data blocks: \(p.dataBlockCount - p.freeDataBlocks) used / \(p.dataBlockCount)")
            print("metadata blocks: \(md.metadataBlockCount - p.freeMetadataBlocks) used / \(md.metadataBlockCount)")
            print("transaction id: \(md.transactionID)")
            print("time: \(md.time)")
            print("data low-water mark: \(p.dataLowWaterMark) blocks")
            print("metadata low-water mark: \(p.metadataThreshold) blocks")
            print("needs check: \(p.needsCheck ? "yes (writes refused until a clean check clears it)" : "no")")
            print("held metadata root: \(p.heldMetadataSnapshot.map(String.init) ?? "-")")
            for dev in try p.devices() {
                let d = try p.details(of: dev)
                var line = "device \(dev): size \(try p.virtualSize(of: dev)) bytes, mapped \(d.mappedBlocks) blocks, created at time \(d.creationTime), snapshotted at time \(d.snapshottedTime)"
                if let o = p.originFile(of: dev) { line += ", origin \(o)" }
                print(line)
            }
        }
    }
}
