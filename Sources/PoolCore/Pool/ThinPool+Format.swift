import Foundation

/// Creating and formatting a pool: folder layout, block and metadata sizes.
extension ThinPool {
    /// Data block sizes the kernel allows: 64 KiB … 1 GiB in multiples of 64 KiB (FORMAT.md §6.12).
    static func validateBlockSize(_ bytes: UInt64) throws {
        guard bytes >= 65536, bytes <= 1 << 30, bytes % 65536 == 0 else {
            throw PoolError.invalid("data block size \(bytes) bytes: must be a multiple of 64 KiB between 64 KiB and 1 GiB")
        }
    }

    /// Default metadata size: the admin guide's 48 × data blocks bytes, at least 2 MiB, in 4 KiB blocks.
    static func defaultMetadataSize(dataSize: UInt64, blockSize: UInt64) -> UInt64 {
        let guide = 48 * (dataSize / blockSize)
        let size = max(2 << 20, guide)
        return min((size + 4095) / 4096 * 4096, maxMetadataBlocks * 4096)
    }


    /// Creates folder `folder` (if needed) with `metadata`, `data` and `pool.json`, and formats it.
    @discardableResult
    public static func create(folder: String, dataSize: UInt64, blockSize: UInt64 = 65536, metadataSize: UInt64? = nil) throws -> ThinPool {
        try validateBlockSize(blockSize)
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), !isDir.boolValue {
            throw PoolError.invalid("\(folder) exists and is not a folder: a pool is a folder (metadata, data, pool.json)")
        }
        do {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        } catch {
            throw PoolError.invalid("cannot create the pool folder \(folder): \((error as NSError).localizedDescription)")
        }
        let m = "\(folder)/metadata", d = "\(folder)/data"
        guard !FileManager.default.fileExists(atPath: m) || isAllZero(m) else {
            throw PoolError.invalid("\(folder) already holds a pool (metadata exists); refusing to format over it")
        }
        return try format(metadataPath: m, dataPath: d, sidecarPath: "\(folder)/pool.json", dataSize: dataSize,
                          blockSize: blockSize, metadataSize: metadataSize)
    }

    private static func isAllZero(_ path: String) -> Bool {
        guard let f = try? RandomAccessFile(path: path, writable: false) else { return false }
        var b = [UInt8](repeating: 0, count: 4096)
        let n = (try? b.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }) ?? 0
        return n == 0 || b.allSatisfy { $0 == 0 }
    }

    /// Formats metadata and data at the given paths (regular files are created/sized; block
    /// devices are used at their size). `dataSize` nil: the data device's size.
    @discardableResult
    public static func format(metadataPath: String, dataPath: String, sidecarPath: String?, dataSize: UInt64?,
                              blockSize: UInt64 = 65536, metadataSize: UInt64? = nil) throws -> ThinPool {
        try validateBlockSize(blockSize)
        let df = try RandomAccessFile(path: dataPath, writable: true, create: true)
        var dsize = try df.size()
        if let dataSize, !df.isBlockDevice {
            dsize = dataSize / blockSize * blockSize
            try df.truncate(to: dsize)
        }
        let dataBlocks = dsize / blockSize
        guard dataBlocks > 0 else { throw PoolError.invalid("data device smaller than one block (\(blockSize) bytes)") }
        let mf = try RandomAccessFile(path: metadataPath, writable: true, create: true)
        if !mf.isBlockDevice {
            let want = metadataSize ?? defaultMetadataSize(dataSize: dsize, blockSize: blockSize)
            try mf.truncate(to: 0)
            try mf.truncate(to: want / 4096 * 4096)
        }
        let mdev = try FileMetadataDevice(file: mf)
        _ = try PoolMetadata(formatting: mdev, dataBlockSectors: UInt32(blockSize / 512), dataBlocks: dataBlocks,
                             metadataBlocks: min(mdev.blockCount, maxMetadataBlocks))
        if let sidecarPath { try PoolSidecar().save(sidecarPath) }
        return try ThinPool(metadataPath: metadataPath, dataPath: dataPath, sidecarPath: sidecarPath)
    }
}
