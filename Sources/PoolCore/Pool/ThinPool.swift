import Foundation

/// A userspace dm-thin pool: metadata in the kernel's on-disk format (thin_check passes,
/// the kernel can take it over) and a data file or device holding the data blocks.
///
/// A pool folder holds `metadata`, `data` and our sidecar `pool.json` (virtual sizes,
/// external origins); a folder with only the two files opens too (devices then as large
/// as the data device). Two paths (files or block devices) work as well.
///
/// Changes accumulate in one transaction until `commit()`; `abort()` goes back to the last
/// commit. Writes are transactional for data too: a block mapped in a committed
/// transaction is never written in place (it is copied on write), so a crash leaves the
/// last committed transaction intact, bytes included. Discards are passed down (hole
/// punched) after the commit, only for blocks whose reference count reached zero.
public final class ThinPool {
    public private(set) var metadata: PoolMetadata
    let metadataFile: RandomAccessFile?
    public let dataFile: RandomAccessFile
    /// Path of the sidecar (`pool.json`), nil when there is none.
    public let sidecarPath: String?
    public internal(set) var sidecar: PoolSidecar
    public internal(set) var mode: PoolMode = .write
    /// Low-space events raised so far (also delivered to `onEvent`).
    public internal(set) var events: [PoolEvent] = []
    public var onEvent: ((PoolEvent) -> Void)?
    /// Notes from opening (e.g. a metadata device beyond the usable maximum).
    public internal(set) var warnings: [String] = []
    /// Pass discards of unreferenced blocks down to the data device (default on).
    var discardPassdown = true

    var provisionedThisTransaction = Set<UInt64>()
    var pendingPassdown = Set<UInt64>()
    var metadataLowArmed = true
    var dataLowArmed = true
    var originFiles: [String: RandomAccessFile] = [:]
    /// The write token each device written in the open transaction was given (`noteWritten`).
    var writtenTokens: [UInt64: String] = [:]

    /// Opens the pool in `folder` (`metadata`, `data`, optional `pool.json`).
    public convenience init(folder: String, readOnly: Bool = false) throws {
        try self.init(metadataPath: "\(folder)/metadata", dataPath: "\(folder)/data", sidecarPath: "\(folder)/pool.json", readOnly: readOnly)
    }

    /// Opens a formatted pool. A metadata device grown since the last open is taken into
    /// the metadata space map (up to the usable maximum, with a warning beyond it).
    public init(metadataPath: String, dataPath: String, sidecarPath: String?, readOnly: Bool = false) throws {
        let mf = try RandomAccessFile(path: metadataPath, writable: !readOnly)
        // A process being spawned by another thread holds a copy of the descriptor (and so the
        // lock) until its exec closes it (O_CLOEXEC): wait that out briefly before refusing.
        guard mf.tryLock(exclusive: !readOnly, waitingUpTo: 0.5) else {
            throw PoolError.busy(metadataPath)
        }
        let mdev = try FileMetadataDevice(file: mf)
        metadataFile = mf
        dataFile = try RandomAccessFile(path: dataPath, writable: !readOnly)
        self.sidecarPath = sidecarPath
        sidecar = try sidecarPath.map(PoolSidecar.load) ?? PoolSidecar()
        metadata = try PoolMetadata(device: mdev, name: metadataPath)
        sidecar = sidecar.resolved(transaction: metadata.committedSuperblock.transactionID)
        if readOnly { mode = .readOnly(.requested) }
        try afterOpen()
    }

    /// Opens a pool over an arbitrary metadata device (tests: failing or in-memory devices).
    init(metadataDevice: any MetadataDevice, dataFile: RandomAccessFile, sidecarPath: String? = nil) throws {
        metadataFile = nil
        self.dataFile = dataFile
        self.sidecarPath = sidecarPath
        sidecar = try sidecarPath.map(PoolSidecar.load) ?? PoolSidecar()
        metadata = try PoolMetadata(device: metadataDevice)
        sidecar = sidecar.resolved(transaction: metadata.committedSuperblock.transactionID)
        try afterOpen()
    }

    private func afterOpen() throws {
        // NEEDS_CHECK keeps the pool out of write mode, and its devices from growing (FORMAT.md §6.8, §6.11).
        if metadata.needsCheck, mode == .write { mode = .readOnly(.needsCheck) }
        let devBlocks = metadata.device.blockCount
        if devBlocks > maxMetadataBlocks {
            warnings.append("metadata device has \(devBlocks) blocks; only the first \(maxMetadataBlocks) (15.875 GiB) are usable")
        }
        let usable = min(devBlocks, maxMetadataBlocks)
        if usable > metadata.metadataBlockCount, mode == .write {
            try metadata.growMetadata(to: usable)
            try metadata.commit()
        }
        let needed = metadata.dataBlockCount * dataBlockSize
        if !dataFile.isBlockDevice, dataFile.writable, try dataFile.size() < needed {
            try dataFile.truncate(to: needed)
        }
    }

    public func close() {
        metadataFile?.close()
        dataFile.close()
        for f in originFiles.values { f.close() }
    }

    // MARK: sizes and queries

    /// Bytes per data block.
    public var dataBlockSize: UInt64 { UInt64(metadata.dataBlockSectors) * 512 }
    public var dataBlockCount: UInt64 { metadata.dataBlockCount }
    public var freeDataBlocks: UInt64 { metadata.freeDataBlocks }
    public var freeMetadataBlocks: UInt64 { metadata.freeMetadataBlocks }
    var changedThisTransaction: Bool { metadata.changedThisTransaction }
    public var heldMetadataSnapshot: UInt64? { metadata.heldRoot == 0 ? nil : metadata.heldRoot }

    /// Free metadata blocks (not counting the reserve) at or below which `metadataLow` is raised: min(1024, blocks / 4) (FORMAT.md §6.9).
    public var metadataThreshold: UInt64 { min(1024, metadata.metadataBlockCount / 4) }
    /// Metadata blocks kept back for commits: min(4096, blocks / 10), at least 8 (FORMAT.md §6.9).
    var metadataReserve: UInt64 { max(8, min(4096, metadata.metadataBlockCount / 10)) }
    /// Free data blocks at or below which `dataLow` is raised (default: 1/16 of the pool).
    public var dataLowWaterMark: UInt64 {
        get { sidecar.dataLowWaterMark ?? metadata.dataBlockCount / 16 }
        set { sidecar.dataLowWaterMark = newValue }
    }

    /// Ids of the thin devices, ascending.
    public func devices() throws -> [UInt64] { try metadata.deviceIDs() }

    public func details(of dev: UInt64) throws -> DeviceDetails { try metadata.details(of: dev) }

    /// Virtual size of `dev` in bytes (the sidecar's, else the data device's size).
    public func virtualSize(of dev: UInt64) throws -> UInt64 {
        guard try metadata.exists(dev) else { throw PoolError.unknownDevice(dev) }
        return sidecar.devices[String(dev)]?.size ?? metadata.dataBlockCount * dataBlockSize
    }

    /// Virtual blocks of `dev` (its size rounded up to whole blocks).
    public func virtualBlocks(of dev: UInt64) throws -> UInt64 {
        let size = try virtualSize(of: dev)
        return size / dataBlockSize + (size % dataBlockSize == 0 ? 0 : 1)
    }

    /// The largest virtual size a thin device may have: 2^63 bytes (8 EiB; dm sizes are 64-bit
    /// sector counts, and every byte offset inside the device must stay representable).
    static let maxVirtualSize: UInt64 = 1 << 63

    /// Refuses a virtual size beyond `maxVirtualSize` or not whole 512-byte sectors (a dm thin
    /// device's size is a count of sectors: a kernel pool could not hold the device).
    public static func validateVirtualSize(_ size: UInt64) throws {
        guard size <= maxVirtualSize else {
            throw PoolError.invalid("virtual size \(size) bytes is beyond the largest a thin device may have (\(maxVirtualSize) bytes, 8 EiB)")
        }
        guard size % 512 == 0 else {
            throw PoolError.invalid("virtual size \(size) bytes is not a whole number of 512-byte sectors")
        }
    }

    /// The external origin file of `dev`, if any.
    public func originFile(of dev: UInt64) -> String? { sidecar.devices[String(dev)]?.originFile }

    /// Mapping of `vblock`, or nil when unprovisioned.
    public func lookup(_ dev: UInt64, _ vblock: UInt64) throws -> BlockTime? {
        try checkNotFailed()
        return try metadata.mapping(dev, vblock)
    }

    /// Whether the block at `vblock` of `dev` is really shared with another device or the
    /// held metadata snapshot (exact, from counts; nil when unmapped). See `PoolMetadata.isShared`.
    func isShared(_ dev: UInt64, _ vblock: UInt64) throws -> Bool? {
        try checkNotFailed()
        return try metadata.isShared(dev, vblock)
    }

    /// Data reference count of a data block in the open transaction.
    func dataRefCount(_ block: UInt64) throws -> UInt32 { try metadata.dataRefCount(block) }

    /// Metadata of the open transaction (uncommitted trees; space maps as last committed).
    public func currentView() throws -> MetadataReader { try metadata.currentView() }
    /// Metadata as last committed.
    func committedView() throws -> MetadataReader { try metadata.committedView() }
}
