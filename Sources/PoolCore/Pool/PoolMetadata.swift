/// The pool's metadata with dm-thin's semantics (FORMAT.md §6): thin devices, snapshots, mappings,
/// transactions and the held metadata snapshot. Knows nothing of data bytes; `ThinPool`
/// puts the data device on top.
///
/// Every mutating call leaves the in-core state consistent or throws; a throw from the
/// middle of an operation (out of metadata space, I/O error) leaves the transaction
/// unusable: the caller must `abort()`.
public final class PoolMetadata {
    let device: any MetadataDevice
    private(set) var tm: TransactionManager
    /// The superblock of the open transaction (roots current; space-map roots as of the last commit).
    public internal(set) var superblock: Superblock
    /// The superblock on disk.
    public private(set) var committedSuperblock: Superblock
    /// Device details changed in this transaction (written into the details tree at commit).
    var pendingDetails: [UInt64: DeviceDetails] = [:]
    /// True once anything changed since the last commit (FORMAT.md §6.14).
    public private(set) var changedThisTransaction = false
    /// Devices changed since the last commit.
    public private(set) var changedDevices = Set<UInt64>()

    /// Largest thin device id (message parser limit, FORMAT.md §6.1).
    static let maxDeviceID: UInt64 = (1 << 24) - 1

    var top: BTree { BTree(tm: tm, leafValueSize: 8, policy: .subtrees) }
    var bottom: BTree { BTree(tm: tm, leafValueSize: 8, policy: .dataBlocks) }
    var detailsTree: BTree { BTree(tm: tm, leafValueSize: DeviceDetails.diskSize, policy: .none) }

    /// Opens formatted metadata. Throws `PoolError.unformatted` for an all-zero superblock.
    init(device: any MetadataDevice, name: String = "metadata") throws {
        self.device = device
        guard device.blockCount > 0 else { throw PoolError.unformatted(name) }
        let sb: Superblock
        do { sb = try Superblock(decoding: device.validBlock(0, kind: .superblock), location: 0) } catch .unformatted { throw PoolError.unformatted(name) }
        superblock = sb
        committedSuperblock = sb
        tm = try PoolMetadata.openTransactions(device, sb)
    }

    /// The transaction manager over committed superblock `sb`, once its sizes are known to be usable:
    /// every data byte offset (data block × block size) must be representable (off_t).
    private static func openTransactions(_ device: any MetadataDevice, _ sb: Superblock) throws -> TransactionManager {
        let tm = try TransactionManager(device: device, superblock: sb)
        let (bytes, over) = tm.dataMap.blockCount.multipliedReportingOverflow(by: UInt64(sb.dataBlockSize) * 512)
        guard !over, bytes <= UInt64(Int64.max) else {
            throw MetadataError.badSpaceMap(block: 0, reason: "the data space map counts \(tm.dataMap.blockCount) blocks of \(sb.dataBlockSize) sectors, more than 2^63 bytes")
        }
        return tm
    }

    /// Formats `device`: empty pool of `dataBlocks` data blocks of `dataBlockSectors` sectors,
    /// using the first `metadataBlocks` metadata blocks (capped to the usable maximum), and commits.
    init(formatting device: any MetadataDevice, dataBlockSectors: UInt32, dataBlocks: UInt64, metadataBlocks: UInt64? = nil) throws {
        self.device = device
        let mblocks = min(metadataBlocks ?? device.blockCount, device.blockCount, maxMetadataBlocks)
        tm = try TransactionManager(formatting: device, metadataBlocks: mblocks)
        var sb = Superblock()
        sb.dataBlockSize = dataBlockSectors
        sb.metadataBlockCount = mblocks
        sb.version = 2
        superblock = sb
        committedSuperblock = sb
        superblock.dataMappingRoot = try BTree(tm: tm, leafValueSize: 8, policy: .subtrees).create()
        superblock.deviceDetailsRoot = try BTree(tm: tm, leafValueSize: DeviceDetails.diskSize, policy: .none).create()
        try tm.growData(to: dataBlocks)
        changedThisTransaction = true
        try commit()
    }

    // MARK: queries

    var dataBlockSectors: UInt32 { superblock.dataBlockSize }
    public var dataBlockCount: UInt64 { tm.dataMap.blockCount }
    public var metadataBlockCount: UInt64 { tm.metadataCounts.blockCount }
    public var freeDataBlocks: UInt64 { tm.dataMap.freeCount }
    public var freeMetadataBlocks: UInt64 { tm.metadataCounts.freeCount }
    /// Data blocks a new allocation may take now (free, and not freed in this transaction).
    var allocatableDataBlocks: UInt64 { tm.dataMap.allocatableCount }
    var allocatableMetadataBlocks: UInt64 { tm.metadataCounts.allocatableCount }
    /// The data block's count, read from the data space map (a bitmap page may be read from disk).
    func dataRefCount(_ b: UInt64) throws -> UInt32 { try tm.dataMap.count(b) }
    public var heldRoot: UInt64 { superblock.heldRoot }
    public var time: UInt32 { superblock.time }
    public var transactionID: UInt64 { superblock.transactionID }

    /// The trees of the open transaction, read through the one read path (`MetadataView`
    /// over the transaction manager). Device details changed in this transaction reach the
    /// details tree at commit: read them with `details(of:)`, which sees them.
    public var view: MetadataView { MetadataView(source: tm, superblock: superblock, isSnapshot: false) }

    public func exists(_ dev: UInt64) throws -> Bool {
        if pendingDetails[dev] != nil { return true }
        return try view.detailsTree.lookup(dev) != nil
    }

    /// Ids of all thin devices, ascending.
    public func deviceIDs() throws -> [UInt64] {
        Array(Set(try view.devices().map(\.id)).union(pendingDetails.keys)).sorted()
    }

    /// A device's details as they stand in this transaction.
    public func details(of dev: UInt64) throws -> DeviceDetails {
        if let d = pendingDetails[dev] { return d }
        do { return try view.details(of: dev) } catch .unknownDevice { throw PoolError.unknownDevice(dev) }
    }

    // MARK: devices

    func touch(_ dev: UInt64) {
        changedThisTransaction = true
        changedDevices.insert(dev)
    }

    /// create_thin (FORMAT.md §6.1).
    public func createThin(_ dev: UInt64) throws {
        guard dev <= PoolMetadata.maxDeviceID else { throw PoolError.invalid("thin device id \(dev) is above \(PoolMetadata.maxDeviceID)") }
        guard try !exists(dev) else { throw PoolError.deviceExists(dev) }
        let leaf = try bottom.create()
        var v = [UInt8](repeating: 0, count: 8)
        v.setLE64(0, leaf)
        superblock.dataMappingRoot = try top.insert(root: superblock.dataMappingRoot, key: dev, value: v)
        pendingDetails[dev] = DeviceDetails(mappedBlocks: 0, transactionID: superblock.transactionID,
                                            creationTime: superblock.time, snapshottedTime: superblock.time)
        touch(dev)
    }

    /// create_snap (FORMAT.md §6.3): `dev` shares `origin`'s bottom tree through its root.
    public func createSnapshot(_ dev: UInt64, of origin: UInt64) throws {
        guard dev <= PoolMetadata.maxDeviceID else { throw PoolError.invalid("thin device id \(dev) is above \(PoolMetadata.maxDeviceID)") }
        guard try exists(origin) else { throw PoolError.unknownDevice(origin) }
        guard try !exists(dev) else { throw PoolError.deviceExists(dev) }
        guard superblock.time < (1 << 24) - 1 else { throw PoolError.invalid("pool time would exceed 24 bits") }
        let root = try view.mappingRoot(of: origin)
        var od = try details(of: origin)
        try tm.incMetadata(root)
        var v = [UInt8](repeating: 0, count: 8)
        v.setLE64(0, root)
        superblock.dataMappingRoot = try top.insert(root: superblock.dataMappingRoot, key: dev, value: v)
        superblock.time += 1
        od.snapshottedTime = superblock.time
        pendingDetails[origin] = od
        pendingDetails[dev] = DeviceDetails(mappedBlocks: od.mappedBlocks, transactionID: superblock.transactionID,
                                            creationTime: superblock.time, snapshottedTime: superblock.time)
        touch(origin)
        touch(dev)
    }

    /// delete (FORMAT.md §6.6): removes the device and releases its tree.
    public func delete(_ dev: UInt64) throws {
        guard try exists(dev) else { throw PoolError.unknownDevice(dev) }
        let (r, removed) = try top.remove(root: superblock.dataMappingRoot, key: dev)
        superblock.dataMappingRoot = r
        if let removed { try bottom.deleteTree(root: removed.le64(0)) }
        pendingDetails[dev] = nil
        superblock.deviceDetailsRoot = try detailsTree.remove(root: superblock.deviceDetailsRoot, key: dev).root
        touch(dev)
    }

    /// A free data block (count 1 now), or nil when none may be allocated.
    func allocateDataBlock() throws -> UInt64? { try tm.dataMap.allocate() }

    /// set_transaction_id (FORMAT.md §5.3): compare-and-swap of the userspace transaction id.
    public func setTransactionID(from old: UInt64, to new: UInt64) throws {
        guard superblock.transactionID == old else {
            throw PoolError.invalid("transaction id is \(superblock.transactionID), not \(old)")
        }
        superblock.transactionID = new
        changedThisTransaction = true
    }

    // MARK: transactions

    /// Writes pending device details into the details tree (part of every commit; views call it too).
    func flushDetails() throws {
        for dev in pendingDetails.keys.sorted() {
            var v = [UInt8](repeating: 0, count: DeviceDetails.diskSize)
            pendingDetails[dev]!.encode(into: &v, at: 0)
            superblock.deviceDetailsRoot = try detailsTree.insert(root: superblock.deviceDetailsRoot, key: dev, value: v)
        }
        pendingDetails.removeAll()
    }

    /// Commits (FORMAT.md §5.1 steps 2–6; the caller flushed the data device first): details, space
    /// maps, dirty blocks, flush, superblock, flush. A no-op when nothing changed.
    public func commit() throws {
        guard changedThisTransaction || !tm.dirty.isEmpty else { return }
        try flushDetails()
        let (d, m) = try tm.commitSpaceMaps()
        superblock.dataSpaceMapRoot = d
        superblock.metadataSpaceMapRoot = m
        try tm.writeOut()
        try device.writeBlock(0, superblock.encode(location: 0))
        try device.flush()
        tm.finishCommit()
        committedSuperblock = superblock
        changedThisTransaction = false
        changedDevices.removeAll()
    }

    /// Drops the open transaction and re-reads the last committed one (FORMAT.md §5.5).
    public func abort() throws {
        pendingDetails.removeAll()
        changedThisTransaction = false
        changedDevices.removeAll()
        let sb = try Superblock(decoding: device.validBlock(0, kind: .superblock), location: 0)
        superblock = sb
        committedSuperblock = sb
        tm = try PoolMetadata.openTransactions(device, sb)
    }

    // MARK: NEEDS_CHECK (FORMAT.md §5.5, §6.8)

    /// Whether the superblock on disk carries NEEDS_CHECK.
    public var needsCheck: Bool { committedSuperblock.needsCheck }

    /// Sets or clears NEEDS_CHECK in the committed superblock on disk (the transaction is
    /// not changed: call it with no open changes, e.g. right after `abort()`), then flushes.
    func setNeedsCheck(_ on: Bool) throws {
        var sb = committedSuperblock
        if on { sb.flags |= Superblock.needsCheckFlag } else { sb.flags &= ~Superblock.needsCheckFlag }
        try device.writeBlock(0, sb.encode(location: 0))
        try device.flush()
        committedSuperblock.flags = sb.flags
        superblock.flags = sb.flags
    }

    // MARK: metadata snapshot (FORMAT.md §6.7)

    /// reserve_metadata_snap: commits, then pins the current trees under a superblock copy.
    /// Only one may be held.
    public func reserveMetadataSnapshot() throws {
        guard superblock.heldRoot == 0 else { throw PoolError.metadataSnapshotHeld(superblock.heldRoot) }
        try commit()
        let h = try tm.allocateMetadata()
        var copy = superblock
        copy.heldRoot = 0
        copy.location = h
        copy.dataSpaceMapRoot = SpaceMapRoot()
        copy.metadataSpaceMapRoot = SpaceMapRoot()
        tm.specialKinds[h] = .superblock
        tm.put(copy.encode(location: h), at: h)
        try tm.incMetadata(superblock.dataMappingRoot)
        try tm.incMetadata(superblock.deviceDetailsRoot)
        superblock.heldRoot = h
        changedThisTransaction = true
        try commit()
    }

    /// release_metadata_snap: drops the held copy and its references, then commits.
    public func releaseMetadataSnapshot() throws {
        let h = superblock.heldRoot
        guard h != 0 else { throw PoolError.noMetadataSnapshot }
        let copy = try Superblock(decoding: tm.validBlock(h, kind: .superblock), location: h)
        try top.deleteTree(root: copy.dataMappingRoot)
        try detailsTree.deleteTree(root: copy.deviceDetailsRoot)
        try tm.decMetadata(h)
        superblock.heldRoot = 0
        changedThisTransaction = true
        try commit()
    }

    // MARK: resize

    /// Grows the data space map (FORMAT.md §6.11); commit afterwards.
    func growData(to blocks: UInt64) throws {
        try tm.growData(to: blocks)
        changedThisTransaction = true
    }

    /// Grows the metadata space map to `blocks` (capped to 15.875 GiB); commit afterwards.
    func growMetadata(to blocks: UInt64) throws {
        try tm.growMetadata(to: min(blocks, maxMetadataBlocks))
        changedThisTransaction = true
    }

    // MARK: views

    /// Read access to the open (uncommitted) transaction: trees as they stand now; the
    /// space-map roots are those of the last commit (use `dataRefCount` for live counts).
    public func currentView() throws -> MetadataReader {
        try flushDetails()
        return MetadataReader(source: tm, superblock: superblock)
    }

    /// Read access to the last committed transaction (as on disk).
    func committedView() throws -> MetadataReader {
        try MetadataReader(source: device)
    }
}
