import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool read`: copies a thin device out to a file.
    struct Read: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "read",
            abstract: "Read a whole thin device into a file (unprovisioned blocks read as zeros or origin bytes).")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "Thin device id.")
        public var dev: UInt64
        @Option(name: .long, help: "The file to write.")
        public var to: String
        @Flag(help: "Overwrite the file --to names if it exists.") public var force = false

        public func run() throws {
            try refuseOverwrite(to, force: force)
            let p = try pool.openForChange()
            let size = try p.virtualSize(of: dev)
            let out = try RandomAccessFile(path: to, writable: true, create: true)
            let regular = !out.isBlockDevice
            if regular { try out.truncate(to: 0) }
            let bs = p.dataBlockSize
            var v: UInt64 = 0
            let blocks = try p.virtualBlocks(of: dev)
            while v < blocks {
                let len = Int(min(bs, size - v * bs))
                if regular, try p.lookup(dev, v) == nil, p.originFile(of: dev) == nil { v += 1; continue }
                let bytes = try p.readBlock(dev, v)
                try bytes.withUnsafeBytes { try out.write(UnsafeRawBufferPointer(rebasing: $0[0..<len]), at: v * bs) }
                v += 1
            }
            if regular { try out.truncate(to: size) }
            try out.sync()
        }
    }
}
