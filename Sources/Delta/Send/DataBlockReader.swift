public import PoolCore

/// Where a sender reads block contents by data-block address (the pool's data device).
public protocol DataBlockReader: AnyObject {
    var blockSize: Int { get }
    /// Fills `buffer` (a whole number of blocks) from data block `block` on; bytes past the end of the device read as zeros.
    func read(dataBlock block: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
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
}
