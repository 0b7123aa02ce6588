/// Where metadata blocks live: a file or block device, or memory in tests.
///
/// Blocks are 4096 bytes; block N is at byte N × 4096. Implementations do no
/// validation: readers check blocks with `validBlock` (`BlockValidator`).
protocol MetadataDevice: BlockReading {
    func writeBlock(_ block: UInt64, _ bytes: [UInt8]) throws(MetadataError)
    /// Makes every earlier write durable before any later one.
    func flush() throws(MetadataError)
}

/// Metadata on a file or block device.
public final class FileMetadataDevice: MetadataDevice, @unchecked Sendable {
    public let file: RandomAccessFile
    public private(set) var blockCount: UInt64

    public init(path: String, writable: Bool = false) throws(MetadataError) {
        file = try RandomAccessFile(path: path, writable: writable)
        blockCount = try file.size() / UInt64(metadataBlockSize)
        // A live pool's metadata device: don't trust pages an earlier read left in the cache.
        if file.isBlockDevice { file.dropCachedPages() }
    }

    public init(file: RandomAccessFile) throws(MetadataError) {
        self.file = file
        blockCount = try file.size() / UInt64(metadataBlockSize)
    }

    /// Re-reads the device size (after the file was grown).
    func refreshSize() throws(MetadataError) {
        blockCount = try file.size() / UInt64(metadataBlockSize)
    }

    public func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] {
        guard block < blockCount else { throw .truncated(block: block, blockCount: blockCount) }
        var bytes = [UInt8](repeating: 0, count: metadataBlockSize)
        let r: Result<Int, MetadataError> = bytes.withUnsafeMutableBytes { buf in
            do throws(MetadataError) { return .success(try file.read(into: buf, at: block * UInt64(metadataBlockSize))) } catch { return .failure(error) }
        }
        let n = try r.get()
        guard n == metadataBlockSize else { throw .truncated(block: block, blockCount: blockCount) }
        return bytes
    }

    public func writeBlock(_ block: UInt64, _ bytes: [UInt8]) throws(MetadataError) {
        precondition(bytes.count == metadataBlockSize)
        guard block < blockCount else { throw .truncated(block: block, blockCount: blockCount) }
        let r: Result<Void, MetadataError> = bytes.withUnsafeBytes { buf in
            do throws(MetadataError) { return .success(try file.write(buf, at: block * UInt64(metadataBlockSize))) } catch { return .failure(error) }
        }
        try r.get()
    }

    public func flush() throws(MetadataError) { try file.sync() }
}

/// Metadata held in memory (tests, scratch pools).
public final class MemoryMetadataDevice: MetadataDevice, @unchecked Sendable {
    public var blocks: [UInt64: [UInt8]] = [:]
    public var blockCount: UInt64

    public init(blockCount: UInt64) { self.blockCount = blockCount }

    public func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] {
        guard block < blockCount else { throw .truncated(block: block, blockCount: blockCount) }
        return blocks[block] ?? .zeroBlock()
    }

    public func writeBlock(_ block: UInt64, _ bytes: [UInt8]) throws(MetadataError) {
        guard block < blockCount else { throw .truncated(block: block, blockCount: blockCount) }
        blocks[block] = bytes
    }

    public func flush() throws(MetadataError) {}
}
