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
    public let metadataFile: RandomAccessFile?
    public let dataFile: RandomAccessFile
    /// Path of the sidecar (`pool.json`), nil when there is none.
    public let sidecarPath: String?
    public internal(set) var sidecar: PoolSidecar
    public internal(set) var mode: PoolMode = .write
    /// Low-space events raised so far (also delivered to `onEvent`).
    public private(set) var events: [PoolEvent] = []
    public var onEvent: ((PoolEvent) -> Void)?
    /// Notes from opening (e.g. a metadata device beyond the usable maximum).
    public private(set) var warnings: [String] = []
    /// Pass discards of unreferenced blocks down to the data device (default on).
    public var discardPassdown = true

    var provisionedThisTransaction = Set<UInt64>()
    var pendingPassdown = Set<UInt64>()
    var metadataLowArmed = true
    var dataLowArmed = true
    var originFiles: [String: RandomAccessFile] = [:]

    /// Data block sizes the kernel allows: 64 KiB … 1 GiB in multiples of 64 KiB (FORMAT.md §6.12).
    public static func validateBlockSize(_ bytes: UInt64) throws {
        guard bytes >= 65536, bytes <= 1 << 30, bytes % 65536 == 0 else {
            throw PoolError.invalid("data block size \(bytes) bytes: must be a multiple of 64 KiB between 64 KiB and 1 GiB")
        }
    }

    /// Default metadata size: the admin guide's 48 × data blocks bytes, at least 2 MiB, in 4 KiB blocks.
    public static func defaultMetadataSize(dataSize: UInt64, blockSize: UInt64) -> UInt64 {
        let guide = 48 * (dataSize / blockSize)
        let size = max(2 << 20, guide)
        return min((size + 4095) / 4096 * 4096, maxMetadataBlocks * 4096)
    }

    // MARK: create / open

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
    public init(metadataDevice: any MetadataDevice, dataFile: RandomAccessFile, sidecarPath: String? = nil) throws {
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
    public var changedThisTransaction: Bool { metadata.changedThisTransaction }
    public var heldMetadataSnapshot: UInt64? { metadata.heldRoot == 0 ? nil : metadata.heldRoot }

    /// Free metadata blocks (not counting the reserve) at or below which `metadataLow` is raised: min(1024, blocks / 4) (FORMAT.md §6.9).
    public var metadataThreshold: UInt64 { min(1024, metadata.metadataBlockCount / 4) }
    /// Metadata blocks kept back for commits: min(4096, blocks / 10), at least 8 (FORMAT.md §6.9).
    public var metadataReserve: UInt64 { max(8, min(4096, metadata.metadataBlockCount / 10)) }
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
    public static let maxVirtualSize: UInt64 = 1 << 63

    /// Refuses a virtual size beyond `maxVirtualSize`.
    public static func validateVirtualSize(_ size: UInt64) throws {
        guard size <= maxVirtualSize else {
            throw PoolError.invalid("virtual size \(size) bytes is beyond the largest a thin device may have (\(maxVirtualSize) bytes, 8 EiB)")
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
    public func isShared(_ dev: UInt64, _ vblock: UInt64) throws -> Bool? {
        try checkNotFailed()
        return try metadata.isShared(dev, vblock)
    }

    /// Data reference count of a data block in the open transaction.
    public func dataRefCount(_ block: UInt64) throws -> UInt32 { try metadata.dataRefCount(block) }

    /// Metadata of the open transaction (uncommitted trees; space maps as last committed).
    public func currentView() throws -> MetadataReader { try metadata.currentView() }
    /// Metadata as last committed.
    public func committedView() throws -> MetadataReader { try metadata.committedView() }

    // MARK: modes

    func checkNotFailed() throws {
        if case let .fail(m) = mode { throw PoolError.failMode(reason: m) }
    }

    /// Whether metadata may change. Out of data space (the kernel's OUT_OF_DATA_SPACE) only
    /// refuses new data blocks (see `write`): discards, deletes and snapshots still work.
    func checkWritable() throws {
        switch mode {
        case .write, .readOnly(.outOfDataSpace): return
        case let .readOnly(r): throw PoolError.readOnly(reason: r.description)
        case let .fail(m): throw PoolError.failMode(reason: m)
        }
    }

    /// Puts the pool in read-only mode (changes refused until `setWriteMode`/`resize`).
    public func setReadOnly() { if mode == .write { mode = .readOnly(.requested) } }

    /// Whether the metadata carries NEEDS_CHECK (set after a failed metadata operation).
    public var needsCheck: Bool { metadata.needsCheck }

    /// Leaves a requested read-only mode; refused while NEEDS_CHECK is set (FORMAT.md §6.8).
    public func setWriteMode() throws {
        try checkNotFailed()
        if metadata.needsCheck { throw PoolError.readOnly(reason: PoolMode.ReadOnlyReason.needsCheck.description) }
        if case .readOnly(.requested) = mode { mode = .write }
    }

    /// Runs a metadata-changing step; on out-of-metadata-space or any failure inside it,
    /// rolls back to the last commit and goes read-only (fail if the rollback fails).
    func metadataStep<T>(_ body: () throws -> T) throws -> T {
        guard metadata.allocatableMetadataBlocks > metadataReserve else {
            try rollBack(after: PoolError.outOfMetadataSpace)
            throw PoolError.outOfMetadataSpace
        }
        do {
            return try body()
        } catch let e as PoolError where !e.isStateless {
            try rollBack(after: e)
            throw e
        } catch let e as PoolError {
            throw e
        } catch {
            try rollBack(after: error)
            throw error
        }
    }

    private func rollBack(after error: any Error) throws {
        do {
            try abort()
        } catch {
            mode = .fail("rollback failed: \(error)")
            throw PoolError.failMode(reason: "rollback failed: \(error)")
        }
        if case PoolError.outOfMetadataSpace = error {
            mode = .readOnly(.outOfMetadataSpace)
            return
        }
        // A failed metadata operation (FORMAT.md §5.5): like the kernel, flag the metadata for a check
        // and go read-only; if even the flag cannot be written, fail.
        do {
            try metadata.setNeedsCheck(true)
        } catch {
            mode = .fail("setting NEEDS_CHECK failed: \(error)")
            throw PoolError.failMode(reason: "setting NEEDS_CHECK failed: \(error)")
        }
        mode = .readOnly(.failedOperation(String(describing: error)))
    }

    func raiseEvents() {
        // Like the kernel, the reserve is hidden from the free count the threshold sees.
        let mfree = metadata.freeMetadataBlocks > metadataReserve ? metadata.freeMetadataBlocks - metadataReserve : 0
        if metadataLowArmed, mfree <= metadataThreshold {
            metadataLowArmed = false
            emit(.metadataLow(freeBlocks: mfree, threshold: metadataThreshold))
        }
        let dfree = metadata.freeDataBlocks
        if dataLowArmed, dfree <= dataLowWaterMark {
            dataLowArmed = false
            emit(.dataLow(freeBlocks: dfree, lowWaterMark: dataLowWaterMark))
        }
    }

    private func emit(_ e: PoolEvent) {
        events.append(e)
        onEvent?(e)
    }

    // MARK: transactions

    /// Makes the open transaction durable: data flush, sidecar, metadata (new blocks, flush,
    /// superblock, flush), then discard passdown of blocks that ended up unreferenced.
    public func commit() throws {
        try checkNotFailed()
        if case .readOnly(.requested) = mode { return }
        guard metadata.changedThisTransaction else {
            // Sidecar-only changes (annotations, low-water mark) are saved on their own.
            if let sidecarPath, try PoolSidecar.load(sidecarPath) != sidecar { try sidecar.save(sidecarPath) }
            return
        }
        // Once the metadata commit has begun, a failure (a flush that fails after the superblock
        // was written) leaves it unknown whether the new blocks are referenced on disk: the
        // rollback then must not punch them.
        var metadataCommitStarted = false
        do {
            try dataFile.sync()
            // The sidecar is saved with additions before the metadata commit and exact after
            // it, so a crash in between never loses the size of a device that exists.
            // Annotations of a commit that changes the transaction id are atomic with it: saved
            // as pending (the committed ones kept beside them) and taken only if the metadata
            // holds the new id (`PoolSidecar.resolved`). Others are saved before, as additions.
            let committedTransaction = metadata.committedSuperblock.transactionID
            if let sidecarPath {
                var merged = try PoolSidecar.load(sidecarPath).resolved(transaction: committedTransaction)
                merged.devices.merge(sidecar.devices) { _, new in new }
                merged.dataLowWaterMark = sidecar.dataLowWaterMark
                if metadata.transactionID != committedTransaction {
                    merged.pending = .init(transaction: metadata.transactionID, annotations: sidecar.annotations ?? [:])
                } else if let a = sidecar.annotations {
                    merged.annotations = (merged.annotations ?? [:]).merging(a) { _, new in new }
                }
                try merged.save(sidecarPath)
            }
            try FaultInjection.step(.commit)
            metadataCommitStarted = true
            try metadata.commit()
            // Committed: these blocks are referenced now and must never be punched by a rollback.
            provisionedThisTransaction.removeAll()
            try FaultInjection.step(.commit)
            if let sidecarPath { try sidecar.save(sidecarPath) }
        } catch {
            if metadataCommitStarted { provisionedThisTransaction.removeAll() }
            try rollBack(after: error)
            throw error
        }
        provisionedThisTransaction.removeAll()
        let punch = pendingPassdown.filter { (try? metadata.dataRefCount($0)) == 0 }.sorted()
        pendingPassdown.removeAll()
        var i = 0
        while i < punch.count {
            var j = i
            while j + 1 < punch.count && punch[j + 1] == punch[j] + 1 { j += 1 }
            try? dataFile.discard(offset: punch[i] * dataBlockSize, length: UInt64(j - i + 1) * dataBlockSize)
            i = j + 1
        }
        // The commit itself allocates (space-map blocks): the committed counts are checked too.
        raiseEvents()
        // Like the kernel, out of data space ends at a commit that finds free data blocks.
        if mode == .readOnly(.outOfDataSpace), metadata.allocatableDataBlocks > 0 { mode = .write }
    }

    /// Drops the open transaction; the pool is as it was at the last commit.
    public func abort() throws {
        try checkNotFailed()
        // Data written into blocks allocated by this transaction is unreferenced now: punch it
        // back out (a receive that hit ENOSPC on the host gives the space back).
        let written = provisionedThisTransaction.sorted()
        var i = 0
        while i < written.count {
            var j = i
            while j + 1 < written.count && written[j + 1] == written[j] + 1 { j += 1 }
            try? dataFile.discard(offset: written[i] * dataBlockSize, length: UInt64(j - i + 1) * dataBlockSize)
            i = j + 1
        }
        provisionedThisTransaction.removeAll()
        pendingPassdown.removeAll()
        try metadata.abort()
        sidecar = (try sidecarPath.map(PoolSidecar.load) ?? PoolSidecar()).resolved(transaction: metadata.committedSuperblock.transactionID)
    }

    /// Sets the userspace transaction id (compare-and-swap, FORMAT.md §5.3).
    public func setTransactionID(from old: UInt64, to new: UInt64) throws {
        try checkWritable()
        try metadataStep { try metadata.setTransactionID(from: old, to: new) }
    }

    // MARK: metadata snapshot

    /// reserve_metadata_snap (FORMAT.md §6.7): commits and pins the current trees; only one at a time.
    public func reserveMetadataSnapshot() throws {
        try checkWritable()
        if let h = heldMetadataSnapshot { throw PoolError.metadataSnapshotHeld(h) }
        try commit()
        try metadataStep { try metadata.reserveMetadataSnapshot() }
    }

    /// release_metadata_snap: drops the held snapshot and commits.
    public func releaseMetadataSnapshot() throws {
        try checkWritable()
        guard heldMetadataSnapshot != nil else { throw PoolError.noMetadataSnapshot }
        try commit()
        try metadataStep { try metadata.releaseMetadataSnapshot() }
    }

    // MARK: resize

    /// Grows the data device and/or the metadata device (sizes in bytes), takes the space
    /// into the space maps, re-arms low-space events, returns to write mode and commits.
    public func resize(dataSize: UInt64? = nil, metadataSize: UInt64? = nil) throws {
        try checkNotFailed()
        if case .readOnly(.requested) = mode { throw PoolError.readOnly(reason: "opened read-only") }
        if metadata.needsCheck { throw PoolError.readOnly(reason: PoolMode.ReadOnlyReason.needsCheck.description) }
        if let dataSize {
            let blocks = dataSize / dataBlockSize
            guard blocks >= metadata.dataBlockCount else {
                throw PoolError.invalid("data size \(dataSize) is smaller than the pool's \(metadata.dataBlockCount * dataBlockSize) bytes; shrinking is not supported")
            }
            if !dataFile.isBlockDevice { try dataFile.truncate(to: blocks * dataBlockSize) }
            else if try dataFile.size() < blocks * dataBlockSize { throw PoolError.invalid("data device holds only \(try dataFile.size()) bytes") }
            try metadata.growData(to: blocks)
            dataLowArmed = true
        }
        if let metadataSize {
            let blocks = metadataSize / 4096
            guard blocks >= metadata.metadataBlockCount else {
                throw PoolError.invalid("metadata size \(metadataSize) is smaller than the pool's; shrinking is not supported")
            }
            if let mf = metadataFile, !mf.isBlockDevice, try mf.size() < blocks * 4096 { try mf.truncate(to: blocks * 4096) }
            if let fd = metadata.device as? FileMetadataDevice { try fd.refreshSize() }
            if blocks > maxMetadataBlocks {
                warnings.append("metadata size beyond 15.875 GiB: only the first \(maxMetadataBlocks) blocks are used")
            }
            try metadata.growMetadata(to: min(blocks, metadata.device.blockCount))
            metadataLowArmed = true
        }
        if case .readOnly(let r) = mode, r == .outOfDataSpace || r == .outOfMetadataSpace { mode = .write }
        try commit()
    }
}

extension PoolError {
    /// Errors thrown before anything changed (no rollback needed).
    var isStateless: Bool {
        switch self {
        case .outOfMetadataSpace: return false
        default: return true
        }
    }
}
