#if canImport(Glibc)
import Glibc
#endif

/// Read-only access to a pool's metadata: the live superblock, or the held
/// metadata snapshot, and the trees under it.
public final class MetadataReader {
    public let source: any BlockReading
    /// The live superblock (block 0).
    public let superblock: Superblock

    /// Reads the live superblock. Another process may be committing while it is read: a commit
    /// rewrites block 0 in place, and a read of that page racing the write can return part of
    /// each (buffered pread and pwrite are not atomic with respect to each other), which fails
    /// the checksum. Such a read is retried (`tornReadAttempts` reads, a millisecond apart); a
    /// superblock whose checksum still fails is reported as it is.
    public init(source: any BlockReading, tornReadAttempts: Int = 100) throws(MetadataError) {
        self.source = source
        guard source.blockCount > 0 else { throw .truncated(block: 0, blockCount: 0) }
        var attempt = 1
        while true {
            do {
                superblock = try Superblock(decoding: source.validBlock(0, kind: .superblock), location: 0)
                return
            } catch .badChecksum(block: 0, kind: .superblock, stored: _, computed: _) where attempt < tornReadAttempts {
                attempt += 1
                usleep(1000)
            }
        }
    }

    /// A reader over `source` whose live superblock is `superblock` (an open transaction's).
    init(source: any BlockReading, superblock: Superblock) {
        self.source = source
        self.superblock = superblock
    }

    public convenience init(path: String) throws(MetadataError) {
        try self.init(source: FileMetadataDevice(path: path))
    }

    /// The view through the live superblock.
    public var live: MetadataView { MetadataView(source: source, superblock: superblock, isSnapshot: false) }

    /// The view through the held metadata snapshot; `block`, when given, must equal the held root.
    public func metadataSnapshot(block: UInt64? = nil) throws(MetadataError) -> MetadataView {
        let held = superblock.heldRoot
        guard held != 0 else { throw .noMetadataSnapshot }
        if let block, block != held { throw .metadataSnapshotMismatch(asked: block, held: held) }
        guard held < source.blockCount else {
            throw .pointerOutOfRange(from: 0, to: held, blockCount: source.blockCount)
        }
        let sb = try Superblock(decoding: source.validBlock(held, kind: .superblock), location: held)
        return MetadataView(source: source, superblock: sb, isSnapshot: true)
    }
}

/// The trees reachable from one superblock (live or held copy).
public struct MetadataView {
    public let source: any BlockReading
    public let superblock: Superblock
    /// True for the held copy: its space-map roots are zero, its data size unknown.
    let isSnapshot: Bool

    var detailsTree: BTreeReader {
        BTreeReader(source: source, root: superblock.deviceDetailsRoot, leafValueSize: DeviceDetails.diskSize)
    }

    public var topLevelTree: BTreeReader {
        BTreeReader(source: source, root: superblock.dataMappingRoot, leafValueSize: 8)
    }

    /// Data blocks in the pool as reported by the tools (0 through a metadata snapshot).
    public var dataBlockCount: UInt64 { isSnapshot ? 0 : superblock.dataSpaceMapRoot.blockCount }

    /// Every device's details, ascending by id.
    public func devices() throws -> [(id: UInt64, details: DeviceDetails)] {
        try detailsTree.entries { n, i in DeviceDetails(decoding: n.bytes, at: n.valueOffset(i)) }.map { ($0.0, $0.1) }
    }

    public func details(of dev: UInt64) throws(MetadataError) -> DeviceDetails {
        guard let v = try detailsTree.lookup(dev) else { throw .unknownDevice(dev) }
        return DeviceDetails(decoding: v, at: 0)
    }

    /// Root block of a device's bottom-level mapping tree.
    public func mappingRoot(of dev: UInt64) throws(MetadataError) -> UInt64 {
        guard let r = try topLevelTree.lookup64(dev) else { throw .unknownDevice(dev) }
        return r
    }

    /// The bottom-level tree of a device (virtual block → block-time).
    public func mappingTree(of dev: UInt64) throws(MetadataError) -> BTreeReader {
        BTreeReader(source: source, root: try mappingRoot(of: dev), leafValueSize: 8)
    }

    /// The mapping of virtual block `vblock` of `dev`, or nil when unprovisioned.
    public func mapping(of dev: UInt64, at vblock: UInt64) throws(MetadataError) -> BlockTime? {
        try mappingTree(of: dev).lookup64(vblock).map(BlockTime.init(raw:))
    }

    /// The mappings of `dev` whose virtual block is in `range`, ascending.
    public func mappings(of dev: UInt64, in range: Range<UInt64>) throws -> [(vblock: UInt64, mapping: BlockTime)] {
        try mappingTree(of: dev).entries64(in: range).map { ($0.0, BlockTime(raw: $0.1)) }
    }

    /// Every (virtual block, mapping) of a device in ascending order.
    public func forEachMapping(of dev: UInt64, _ body: (UInt64, BlockTime) throws -> Void) throws {
        try mappingTree(of: dev).forEachEntry { k, n, i in try body(k, BlockTime(raw: n.value64(i))) }
    }

    var dataSpaceMap: SpaceMapReader {
        SpaceMapReader(source: source, root: superblock.dataSpaceMapRoot, kind: .data)
    }

    var metadataSpaceMap: SpaceMapReader {
        SpaceMapReader(source: source, root: superblock.metadataSpaceMapRoot, kind: .metadata)
    }
}
