import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool write`: copies a file's bytes into a thin device.
    struct Write: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "write",
            abstract: "Write a file's bytes into a thin device (provisioning / copy-on-write), committing periodically and at the end.")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "Thin device id.")
        public var dev: UInt64
        @Option(name: .long, help: "The file to copy in: a regular file or block device (its size), or a pipe, FIFO, character device or - for stdin (read to its end).")
        public var from: String
        @Option(name: .long, help: "Byte offset in the device (e.g. 1M).")
        public var offset = ByteSize(bytes: 0)
        @Option(name: .customLong("commit-every"), help: "Commit after this many bytes (e.g. 64M): memory stays bounded and a crash loses at most the last interval.")
        public var commitEvery = ByteSize(bytes: 64 << 20)

        public func validate() throws {
            if commitEvery.bytes == 0 { throw ValidationError("--commit-every must be at least one byte") }
        }

        public func run() throws {
            let input = try FileSource(path: from)
            let p = try pool.openForChange()
            if input.isSeekable {
                let src = try RandomAccessFile(path: from, writable: false)
                try p.copyIn(from: src, length: try src.size(), to: dev, offset: offset.bytes, commitEvery: commitEvery.bytes)
            } else {
                // A pipe has no size: read it to its end.
                try p.copyIn(to: dev, offset: offset.bytes, commitEvery: commitEvery.bytes) { try input.read(into: $0) }
            }
            try p.commit()
        }
    }
}
