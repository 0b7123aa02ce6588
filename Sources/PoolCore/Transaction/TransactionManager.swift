/// The write side of the metadata device: block cache, allocation, shadowing, the metadata
/// space map's in-core counts and the data space map read from disk (FORMAT.md §3.7, §4.5, §5).
///
/// Rules it keeps:
/// * a block reachable from the committed superblock is never written: the first change
///   to any block after a commit goes to a new location (`shadow`);
/// * a block freed in this transaction is not reused before the next commit;
/// * dirty blocks stay in memory until `commitSpaceMaps` + `writeOut`, then the caller
///   writes the superblock last, after a flush.
final class TransactionManager: BlockReading {
    let device: any MetadataDevice
    /// Metadata block counts (authoritative in core).
    internal(set) var metadataCounts: RefCounts
    /// Data block counts: the on-disk data space map, changed pages in core until the commit.
    let dataMap: DataSpaceMap

    /// Unsealed contents of blocks changed in this transaction.
    var dirty: [UInt64: [UInt8]] = [:]
    /// Validated contents of committed blocks recently read.
    var clean: [UInt64: [UInt8]] = [:]
    /// Metadata blocks held in core for the commit: dirty blocks and changed data-bitmap pages.
    var pendingBlockCount: Int { dirty.count + dataMap.changedPageCount }
    /// Dirty blocks that are not B-tree nodes or space-map blocks (the held superblock copy).
    var specialKinds: [UInt64: BlockKind] = [:]
    /// Blocks allocated in this transaction (may be changed in place while their count is 1).
    var newThisTransaction = Set<UInt64>()

    /// Metadata space map on disk: index block, bitmap locations, overflow tree and its mirror.
    var metadataIndexBlock: UInt64
    var metadataBitmaps: [UInt64]
    var metadataOverflowRoot: UInt64
    var metadataOverflowOnDisk: [UInt64: UInt32]
    /// Data space map on disk: index tree and overflow tree (bitmap locations: `dataMap.entries`).
    var dataIndexRoot: UInt64
    var dataOverflowRoot: UInt64

    /// Metadata blocks read from the device (tests count them).
    private(set) var deviceReads = 0
    static let cleanCacheLimit = 16384

    /// Loads the metadata space map of the committed superblock `sb` into core and opens its data space map.
    init(device: any MetadataDevice, superblock sb: Superblock) throws {
        self.device = device
        guard sb.metadataSpaceMapRoot.blockCount <= device.blockCount else {
            throw MetadataError.badSpaceMap(block: 0, reason: "the metadata space map counts \(sb.metadataSpaceMapRoot.blockCount) blocks, the metadata device holds \(device.blockCount)")
        }
        let m = try LoadedSpaceMap(device, sb.metadataSpaceMapRoot, .metadata)
        metadataCounts = m.counts
        metadataIndexBlock = sb.metadataSpaceMapRoot.bitmapRoot
        metadataBitmaps = m.bitmaps
        metadataOverflowRoot = sb.metadataSpaceMapRoot.refCountRoot
        metadataOverflowOnDisk = m.overflow

        dataMap = try DataSpaceMap(device: device, root: sb.dataSpaceMapRoot)
        dataIndexRoot = sb.dataSpaceMapRoot.bitmapRoot
        dataOverflowRoot = sb.dataSpaceMapRoot.refCountRoot
        metadataCounts.committed()
    }

    /// Bootstraps fresh space maps for a device of `metadataBlocks` blocks (FORMAT.md §4.6):
    /// block 0 superblock, 1 index, 2 metadata overflow leaf, then the bitmaps; then the
    /// data sm's empty index and overflow leaves. Nothing is written until commit.
    init(formatting device: any MetadataDevice, metadataBlocks: UInt64) throws {
        self.device = device
        metadataCounts = RefCounts(blockCount: metadataBlocks)
        dataMap = DataSpaceMap(device: device, formattingWith: 0)
        let nb = metadataCounts.bitmapCount
        guard metadataBlocks >= UInt64(3 + nb + 8) else {
            throw PoolError.invalid("metadata device too small (\(metadataBlocks) blocks of 4 KiB)")
        }
        metadataIndexBlock = 1
        metadataOverflowRoot = 2
        metadataBitmaps = (0..<nb).map { UInt64(3 + $0) }
        metadataOverflowOnDisk = [:]
        for b in 0..<UInt64(3 + nb) {
            _ = metadataCounts.allocate()
            newThisTransaction.insert(b)
        }
        for i in 0..<nb { metadataCounts.dirtyBitmaps.insert(i) }  // every bitmap is written at the first commit
        dataIndexRoot = 0
        dataOverflowRoot = 0
        put(Node(emptyLeaf: true, valueSize: 4, location: 2).bytes, at: 2)
        dataIndexRoot = try newNode(leaf: true, valueSize: IndexEntry.diskSize).location
        dataOverflowRoot = try newNode(leaf: true, valueSize: 4).location
    }

    // MARK: blocks (BlockReading: the open transaction as readers see it)

    var blockCount: UInt64 { device.blockCount }

    /// Current contents of block `b`: unsealed when changed in this transaction (our own
    /// bytes, not checked), else as committed, checked by `BlockValidator` once when first
    /// read from the device and cached.
    func validBlock(_ b: UInt64, kind: BlockKind) throws(MetadataError) -> [UInt8] {
        if let d = dirty[b] { return d }
        if let c = clean[b] { return c }
        guard b > 0, b < device.blockCount else {
            throw .pointerOutOfRange(from: b, to: b, blockCount: device.blockCount)
        }
        let bytes = try BlockValidator.check(device.readBlock(b), kind: kind, location: b)
        deviceReads += 1
        if clean.count >= TransactionManager.cleanCacheLimit { clean.removeAll(keepingCapacity: true) }
        clean[b] = bytes
        return bytes
    }

    /// The sealed bytes of block `b` as it stands in this transaction.
    func readBlock(_ b: UInt64) throws(MetadataError) -> [UInt8] {
        if var d = dirty[b] {
            Checksum.seal(&d, kind: kind(of: b), location: b)
            return d
        }
        if let c = clean[b] { return c }
        return try device.readBlock(b)
    }

    /// A node as it stands in this transaction: our own bytes when changed in it, else the
    /// committed block with its structure checked for this tree's value size (a cached block
    /// passed only the checksum when it was read, perhaps for another tree or not as a node).
    func node(_ b: UInt64, leafValueSize: Int) throws -> Node {
        if let d = dirty[b] { return Node(unchecked: d, location: b) }
        return try Node(decoding: validBlock(b, kind: .node), location: b, leafValueSize: leafValueSize)
    }

    /// Stores a changed block (unsealed) for write-out at commit.
    func put(_ bytes: [UInt8], at b: UInt64) {
        dirty[b] = bytes
    }

    func put(_ n: Node) { dirty[n.location] = n.bytes }

    /// A fresh metadata block counted 1, or `PoolError.outOfMetadataSpace`.
    func allocateMetadata() throws -> UInt64 {
        guard let b = metadataCounts.allocate() else { throw PoolError.outOfMetadataSpace }
        newThisTransaction.insert(b)
        clean[b] = nil
        return b
    }

    /// A new, empty node (already placed in the dirty set).
    func newNode(leaf: Bool, valueSize: Int) throws -> Node {
        let b = try allocateMetadata()
        let n = Node(emptyLeaf: leaf, valueSize: leaf ? valueSize : 8, location: b)
        put(n)
        return n
    }

    func incMetadata(_ b: UInt64) throws(MetadataError) { try metadataCounts.inc(b) }

    /// Drops one reference to a metadata block; a block reaching zero is forgotten (not written).
    func decMetadata(_ b: UInt64) throws {
        if try metadataCounts.dec(b) == 0 {
            dirty[b] = nil
            newThisTransaction.remove(b)
        }
    }

    func incData(_ b: UInt64) throws { try dataMap.inc(b) }

    @discardableResult
    func decData(_ b: UInt64) throws -> UInt32 { try dataMap.dec(b) }

    /// Makes block `b` writable in this transaction (FORMAT.md §3.7): in place when it is new in this
    /// transaction and counted once; otherwise copied to a new block, `b` decremented, and —
    /// when `b` was shared — everything the copy points at incremented.
    func shadow(_ b: UInt64, leafValueSize: Int, policy: ValuePolicy) throws -> Node {
        var n = try node(b, leafValueSize: leafValueSize)
        let count = try metadataCounts.count(b)
        if newThisTransaction.contains(b) && count == 1 { return n }
        let nb = try allocateMetadata()
        if count > 1 {
            if n.isInternal {
                for i in 0..<n.count { try incMetadata(n.value64(i)) }
            } else {
                switch policy {
                case .none: break
                case .dataBlocks: for i in 0..<n.count { try incData(n.value64(i) >> 24) }
                case .subtrees: for i in 0..<n.count { try incMetadata(n.value64(i)) }
                }
            }
        }
        try decMetadata(b)
        n.location = nb
        put(n)
        return n
    }

    /// Writes every dirty block (sealed) and flushes the device. The superblock is not among them.
    func writeOut() throws {
        let bitmaps = Set(metadataBitmaps)
        for b in dirty.keys.sorted() {
            var bytes = dirty[b]!
            Checksum.seal(&bytes, kind: kind(of: b, bitmaps: bitmaps), location: b)
            try device.writeBlock(b, bytes)
        }
        try device.flush()
    }

    /// Called after the superblock is on disk: the transaction's blocks become committed ones.
    func finishCommit() {
        let bitmaps = Set(metadataBitmaps)
        for (b, bytes) in dirty {
            var s = bytes
            Checksum.seal(&s, kind: kind(of: b, bitmaps: bitmaps), location: b)
            if clean.count < TransactionManager.cleanCacheLimit { clean[b] = s }
        }
        dirty.removeAll(keepingCapacity: true)
        specialKinds.removeAll()
        newThisTransaction.removeAll(keepingCapacity: true)
        metadataCounts.committed()
        dataMap.committed(overflowRoot: dataOverflowRoot)
    }

    /// The kind of block `b` for sealing (index, bitmap or node).
    func kind(of b: UInt64, bitmaps: Set<UInt64>? = nil) -> BlockKind {
        if let k = specialKinds[b] { return k }
        if b == metadataIndexBlock { return .index }
        if let bitmaps { return bitmaps.contains(b) ? .bitmap : .node }
        if metadataBitmaps.contains(b) { return .bitmap }
        return .node
    }

    /// Grows the data space map to `blocks` (shrinking is refused).
    func growData(to blocks: UInt64) throws {
        guard blocks >= dataMap.blockCount else { throw PoolError.invalid("the data device cannot shrink (\(dataMap.blockCount) → \(blocks) blocks)") }
        dataMap.grow(to: blocks)
    }

    /// Grows the metadata space map to `blocks` (capped to the usable maximum by the caller).
    func growMetadata(to blocks: UInt64) throws {
        guard blocks >= metadataCounts.blockCount else { throw PoolError.invalid("the metadata device cannot shrink") }
        guard blocks <= device.blockCount else { throw PoolError.invalid("the metadata device holds only \(device.blockCount) blocks") }
        metadataCounts.grow(to: blocks)
    }
}

/// What a B-tree's leaf values refer to, for the increments done when a shared leaf is copied.
enum ValuePolicy: Sendable {
    /// Details, space-map index and overflow trees: values hold no references.
    case none
    /// Bottom-level mapping leaves: each value holds a data block (`value >> 24`).
    case dataBlocks
    /// Top-level mapping leaves: each value is a bottom-tree root (metadata block).
    case subtrees
}

