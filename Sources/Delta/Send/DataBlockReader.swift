public import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Where a sender reads block contents by data-block address (the pool's data device).
public protocol DataBlockReader: AnyObject {
    var blockSize: Int { get }
    /// Fills `buffer` (a whole number of blocks) from data block `block` on; bytes past the end of the device read as zeros.
    func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
    /// How many of the `count` blocks from `block` on (at least 1) are known to read as zeros
    /// without reading them (`zeros`: a hole of a sparse data file), or are not known to (read them).
    func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int)
    /// The `count` blocks from `block` on where they lie in the page cache (a read-only mapping of a
    /// regular data file), or nil: read them with `read` then (a block device, a range past the end).
    func mapped(dataBlock block: UInt64, count: Int) -> FileMapping?
}

extension DataBlockReader {
    /// Nothing is known without reading.
    public func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int) { (false, count) }

    /// Nothing is mapped: every block is read.
    public func mapped(dataBlock block: UInt64, count: Int) -> FileMapping? { nil }

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

/// The data device as a file (or block device) read with pread. Used from one thread at a time.
public final class FileDataBlockReader: DataBlockReader {
    public let file: RandomAccessFile
    public let blockSize: Int
    /// Data blocks known to hold data, from the last answer of the file system (a dense file is asked
    /// once, not once per chunk).
    private var knownData: Range<UInt64> = 0..<0
    /// How many times `extent` asked the file system (SEEK_DATA/SEEK_HOLE), for tests and benchmarks.
    public private(set) var fileQueries = 0
    /// How many runs of blocks were mapped instead of read (tests).
    public private(set) var mappedRuns = 0

    /// A regular file without holes (`RandomAccessFile.allocatedSize`) is all data up to its size
    /// at open: its extents are known without asking (an incremental send reads a few runs of a
    /// large file; one SEEK_HOLE from the first run walked the rest of the file, issue #15).
    public init(file: RandomAccessFile, blockSize: Int) {
        self.file = file
        self.blockSize = blockSize
        if blockSize > 0, let size = file.allocatedSize {
            let bs = UInt64(blockSize)
            knownData = 0..<(size / bs + (size % bs == 0 ? 0 : 1))
        }
    }

    /// Block `block`'s byte offset in the file, nil when it does not fit in a file offset.
    private func byteOffset(_ block: UInt64) -> UInt64? {
        let (offset, o) = block.multipliedReportingOverflow(by: UInt64(blockSize))
        return o || offset > UInt64(Int64.max) ? nil : offset
    }

    public func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard let offset = byteOffset(block) else {
            throw MetadataError.io(call: "pread", errno: EOVERFLOW, detail: "data block \(block) lies beyond any offset of \(file.path)")
        }
        let n = try file.read(into: buffer, at: offset)
        if n < buffer.count { UnsafeMutableRawBufferPointer(rebasing: buffer[n...]).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// A regular file's blocks mapped read-only: no copy and no fresh buffer (whose pages the kernel
    /// zeroes before a pread fills them). A block device (O_DIRECT) is read instead.
    public func mapped(dataBlock block: UInt64, count: Int) -> FileMapping? {
        let (len, o) = count.multipliedReportingOverflow(by: blockSize)
        guard !o, let offset = byteOffset(block) else { return nil }
        let m = file.mapForReading(offset: offset, length: len)
        if m != nil { mappedRuns += 1 }
        return m
    }

    /// Holes of a sparse data file (SEEK_DATA/SEEK_HOLE); a block device is all data.
    public func extent(dataBlock block: UInt64, count: Int) -> (zeros: Bool, blocks: Int) {
        if knownData.contains(block) { return (false, Int(min(UInt64(count), knownData.upperBound - block))) }
        guard let offset = byteOffset(block) else { return (false, count) }
        let bs = UInt64(blockSize)
        fileQueries += 1
        let e = file.extent(at: offset, blockSize: bs, count: UInt64(count))
        if !e.hole, let until = e.dataUntil {
            // Blocks that start before `until` hold data.
            let (last, o2) = until.addingReportingOverflow(bs - 1)
            knownData = block..<(o2 ? UInt64.max / bs : last / bs)
        }
        return (e.hole, Int(e.blocks))
    }
}
