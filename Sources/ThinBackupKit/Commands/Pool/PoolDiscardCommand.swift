import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool discard`: unmaps the whole blocks inside a byte range.
    struct Discard: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "discard",
            abstract: "Unmap the whole data blocks inside a byte range; unreferenced blocks are punched out of the data file.")

        @OptionGroup public var pool: PoolOptions
        @Option(name: .long, help: "Thin device id.")
        public var dev: UInt64
        @Option(name: .long, help: "Start of the range (bytes, or e.g. 1M).")
        public var offset: ByteSize
        @Option(name: .long, help: "Length of the range (bytes, or e.g. 1G).")
        public var length: ByteSize

        public func run() throws {
            let p = try pool.openForChange()
            let bs = p.dataBlockSize
            let size = try p.virtualSize(of: dev)
            let (offset, length) = (self.offset.bytes, self.length.bytes)
            // Checked before any arithmetic: offset + length cannot overflow past here.
            guard offset <= size, length <= size - offset else { throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(length), size: size) }
            let first = offset / bs + (offset % bs == 0 ? 0 : 1)
            let end = (offset + length) / bs
            if first < end { try p.discard(dev, blocks: first..<end) }
            try p.commit()
        }
    }
}
