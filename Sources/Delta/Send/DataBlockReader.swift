public import PoolCore

/// Where a sender reads block contents by data-block address (the pool's data device).
public protocol DataBlockReader: AnyObject {
    var blockSize: Int { get }
    /// Fills `buffer` (a whole number of blocks) from data block `block` on; bytes past the end of the device read as zeros.
    func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// How many of the `count` blocks from `block` on (at least 1) are known to read as zeros
    /// without reading them (`zeros`: a hole of a sparse data file), or are not known to (read them).
    func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int)
}

extension DataBlockReader {
    /// Nothing is known without reading.
    public func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int) { (false, count) }

    /// Splits the `count` blocks from `block` on into `extent`'s runs: `body(offset, blocks, zeros)`.
    /// A run of zeros needs no read: all-zero blocks add nothing to a content digest and travel
    /// as zero records, so a mapped hole costs no read (issue #15: an incremental send read the
    /// whole base, 625 MiB of holes, for its digest).
    public func forEachExtent(dataBlock block: UInt64, count: Int, _ body: (_ offset: Int, _ blocks: Int, _ zeros: Bool) throws -> Void) rethrows {
        var i = 0
        while i < count {
            let e = extent(dataBlock: block + UInt64(i), count: count - i)
            let n = max(1, min(e.blocks, count - i))
            try body(i, n, e.zeros)
            i += n
        }
    }
}

/// The data device as a file (or block device) read with pread.
public final class FileDataBlockReader: DataBlockReader {
    public let file: RandomAccessFile
    public let blockSize: Int

    public init(file: RandomAccessFile, blockSize: Int) {
        self.file = file
        self.blockSize = blockSize
    }

    public func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let n = try file.read(into: buffer, at: block * UInt64(blockSize))
        if n < buffer.count { UnsafeMutableRawBufferPointer(rebasing: buffer[n...]).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Holes of a sparse data file (SEEK_DATA/SEEK_HOLE); a block device is all data.
    public func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int) {
        let e = file.extent(at: block * UInt64(blockSize), blockSize: UInt64(blockSize), count: UInt64(count))
        return (e.hole, Int(e.blocks))
    }
}
