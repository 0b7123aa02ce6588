import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool write`: copies a file's bytes into a thin device.
    public struct Write: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "write",
            abstract: "Write a file's bytes into a thin device (provisioning / copy-on-write), then commit.")

        @OptionGroup public var pool: PoolDirOption
        @Option(name: .long, help: "Thin device id.")
        public var dev: UInt64
        @Option(name: .long, help: "The file to copy in.")
        public var from: String
        @Option(name: .long, help: "Byte offset in the device.")
        public var offset: UInt64 = 0

        public init() {}

        public func run() throws {
            let p = try pool.open()
            let src = try RandomAccessFile(path: from, writable: false)
            let size = try src.size()
            let vsize = try p.virtualSize(of: dev)
            guard offset <= vsize, size <= vsize - offset else {
                throw PoolError.beyondEnd(dev: dev, offset: offset + size, size: vsize)
            }
            let chunk = Int(max(p.dataBlockSize, 8 << 20) / p.dataBlockSize * p.dataBlockSize)
            var buf = [UInt8](repeating: 0, count: chunk)
            var done: UInt64 = 0
            while done < size {
                let want = Int(min(UInt64(chunk), size - done))
                let n = try buf.withUnsafeMutableBytes { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: done) }
                guard n == want else { throw CommandFailure("\(from): short read at \(done)") }
                try buf.withUnsafeBytes { try p.write(dev, offset: offset + done, UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
                done += UInt64(want)
            }
            try p.commitForCLI()
        }
    }
}
