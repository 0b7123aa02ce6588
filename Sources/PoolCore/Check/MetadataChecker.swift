/// Verifies a pool's metadata completely (FORMAT.md §3.7, §4.7):
/// every reachable block's checksum and own location, node invariants, key
/// order inside nodes and against the parent's range, no cycles, the space
/// maps' structure, and every metadata **and** data block's reference count
/// equal to the references actually found. Shared nodes are read once.
///
/// Counting model: a metadata block's count is the number of pointers to it
/// (superblock fields, index entries, B-tree parent slots, top-level values,
/// the held snapshot and the two roots it references; block 0 counts itself
/// once). A data block's count is the number of mapping entries that point at
/// it, once per distinct leaf.
///
/// Memory: one 32-bit count per metadata block, a few words per distinct node, and the
/// data references of at most `dataRefBudget` mappings at a time: a pool with more
/// mappings is compared window by window (consecutive bitmaps whose references fit the
/// budget), re-reading the distinct bottom-level leaves once per window.
public final class MetadataChecker {
    public struct Report: Equatable, Sendable {
        public var transactionID: UInt64
        public var devices: Int
        /// Mapping entries in distinct leaves (a shared leaf counts once).
        public var leafMappings: Int
        public var metadataBlocksInUse: Int
        public var metadataBlockCount: UInt64
        public var dataBlocksInUse: Int
        public var dataBlockCount: UInt64
        /// The held metadata snapshot's block, 0 if none.
        public var heldRoot: UInt64
        /// The superblock's NEEDS_CHECK flag (set by the kernel after a failed metadata operation).
        public var needsCheck: Bool = false
    }

    enum Tree: Equatable {
        case details, topLevel, bottom(UInt64), dataIndex, overflow(SpaceMapKind)

        var leafValueSize: Int {
            switch self {
            case .details: return DeviceDetails.diskSize
            case .topLevel, .bottom: return 8
            case .dataIndex: return IndexEntry.diskSize
            case .overflow: return 4
            }
        }

        var name: String {
            switch self {
            case .details: return "device details tree"
            case .topLevel: return "top-level mapping tree"
            case let .bottom(dev): return "mapping tree of device \(dev)"
            case .dataIndex: return "data space-map index tree"
            case let .overflow(kind): return "\(kind) space-map overflow tree"
            }
        }

        /// Bottom-level trees of different devices may share nodes; other trees may not.
        func sameKind(_ other: Tree) -> Bool {
            switch (self, other) {
            case (.bottom, .bottom): return true
            default: return self == other
            }
        }
    }

    struct Summary {
        var tree: Tree
        var entries: Int
        var minKey: UInt64
        var maxKey: UInt64
    }

    public let source: any BlockReading
    var metadataLimit: UInt64 = 0
    var dataLimit: UInt64 = 0
    var expectedMetadata: [UInt32] = []
    var roles: [UInt64: String] = [:]
    private var summaries: [UInt64: Summary] = [:]
    private var path = Set<UInt64>()
    var dataRefs: [UInt64] = []
    /// Data references held in memory at once (8 bytes each); beyond it, windowed comparison.
    var dataRefBudget = 1 << 24
    /// Whether the references outgrew the budget (then `dataRefs` is not kept).
    var windowed = false
    /// Distinct bottom-level leaves (re-read per window when windowed).
    var dataLeaves: [UInt64] = []
    /// Data references per data space-map bitmap (plans the windows).
    var refsPerBitmap: [UInt64] = []
    /// Windows the data comparison took (1 when everything fit the budget).
    public internal(set) var dataWindows = 0
    var overflow: [SpaceMapKind: [UInt64: UInt32]] = [.metadata: [:], .data: [:]]
    var dataIndex: [IndexEntry] = []
    private var leafMappings = 0

    public init(source: any BlockReading) {
        self.source = source
    }

    public convenience init(path: String) throws(MetadataError) {
        self.init(source: try FileMetadataDevice(path: path))
    }

    /// Checks everything; throws the first problem found (a `MetadataError`).
    public func check() throws -> Report {
        let reader = try MetadataReader(source: source)
        let sb = reader.superblock
        let mroot = sb.metadataSpaceMapRoot, droot = sb.dataSpaceMapRoot
        guard mroot.blockCount > 0, mroot.blockCount <= maxMetadataBlocks else {
            throw MetadataError.check("block 0: metadata space map size \(mroot.blockCount) blocks is impossible (1 … \(maxMetadataBlocks))")
        }
        if mroot.blockCount > source.blockCount {
            throw MetadataError.truncated(block: source.blockCount, blockCount: source.blockCount)
        }
        metadataLimit = mroot.blockCount
        dataLimit = droot.blockCount
        expectedMetadata = [UInt32](repeating: 0, count: Int(metadataLimit))

        // The superblock counts itself once.
        try ref(0, from: nil, role: "superblock")

        // Metadata space map: index block, its bitmaps, its overflow tree.
        try ref(mroot.bitmapRoot, from: 0, role: "metadata space-map index")
        let msm = SpaceMapReader(source: source, root: mroot, kind: .metadata)
        let metaEntries = try msm.indexEntries()
        for (i, e) in metaEntries.enumerated() {
            try ref(e.bitmapBlock, from: mroot.bitmapRoot, role: "metadata space-map bitmap \(i)")
        }
        _ = try walk(mroot.refCountRoot, tree: .overflow(.metadata), from: 0, low: nil, high: nil, depth: 0)

        // Data space map: index tree (with its bitmaps), overflow tree.
        _ = try walk(droot.bitmapRoot, tree: .dataIndex, from: 0, low: nil, high: nil, depth: 0)
        let dsm = SpaceMapReader(source: source, root: droot, kind: .data)
        guard dataIndex.count == dsm.bitmapCount else {
            throw MetadataError.check("block \(droot.bitmapRoot): data space-map index holds \(dataIndex.count) entries, \(dsm.bitmapCount) bitmaps needed for \(droot.blockCount) data blocks")
        }
        for (i, e) in dataIndex.enumerated() {
            try ref(e.bitmapBlock, from: droot.bitmapRoot, role: "data space-map bitmap \(i)")
        }
        refsPerBitmap = [UInt64](repeating: 0, count: dataIndex.count)
        _ = try walk(droot.refCountRoot, tree: .overflow(.data), from: 0, low: nil, high: nil, depth: 0)

        // The pool's trees, live and held.
        let devices = try checkTrees(of: sb, at: 0)
        if sb.heldRoot != 0 {
            try ref(sb.heldRoot, from: 0, role: "held metadata snapshot superblock")
            let held = try reader.metadataSnapshot()
            guard held.superblock.heldRoot == 0 else {
                throw MetadataError.check("block \(sb.heldRoot): held metadata snapshot itself holds a snapshot (held_root \(held.superblock.heldRoot))")
            }
            _ = try checkTrees(of: held.superblock, at: sb.heldRoot)
        }

        // Compare the space maps with what was found.
        let metaInUse = try compareMetadata(msm, metaEntries)
        let dataInUse = try compareData(dsm)
        return Report(transactionID: sb.transactionID, devices: devices, leafMappings: leafMappings,
                      metadataBlocksInUse: metaInUse, metadataBlockCount: metadataLimit,
                      dataBlocksInUse: dataInUse, dataBlockCount: dataLimit, heldRoot: sb.heldRoot,
                      needsCheck: sb.needsCheck)
    }

    /// Checks the held metadata snapshot only (a live kernel pool's metadata, which the kernel
    /// changes while it is read): the snapshot superblock at `block` (or wherever the live
    /// superblock says it is), its details and mapping trees — checksums, node invariants, key
    /// order, cycles, details against mappings, data blocks inside the data device. Reference
    /// counts are not compared: the snapshot keeps no space maps (the kernel wipes their roots
    /// in its copy) and the live ones change. The report counts what the snapshot reaches.
    public func checkHeldSnapshot(block: UInt64? = nil) throws -> Report {
        let reader = try MetadataReader(source: source)
        let held = try reader.metadataSnapshot(block: block)
        let at = reader.superblock.heldRoot
        let hs = held.superblock
        // The kernel wipes the space-map roots in the snapshot's copy: the sizes are the live ones.
        metadataLimit = source.blockCount
        dataLimit = reader.superblock.dataSpaceMapRoot.blockCount
        expectedMetadata = [UInt32](repeating: 0, count: Int(metadataLimit))
        // No space map to compare with: the distinct data blocks are counted from every reference kept.
        dataRefBudget = Int.max
        try ref(at, from: nil, role: "held metadata snapshot superblock")
        let devices = try checkTrees(of: hs, at: at)
        return Report(transactionID: hs.transactionID, devices: devices, leafMappings: leafMappings,
                      metadataBlocksInUse: expectedMetadata.lazy.filter { $0 > 0 }.count, metadataBlockCount: metadataLimit,
                      dataBlocksInUse: Set(dataRefs).count, dataBlockCount: dataLimit, heldRoot: at,
                      needsCheck: reader.superblock.needsCheck)
    }

    /// Walks the details and mapping trees of one superblock and checks they agree.
    private func checkTrees(of sb: Superblock, at location: UInt64) throws -> Int {
        let where_ = location == 0 ? "" : " of the metadata snapshot at block \(location)"
        _ = try walk(sb.deviceDetailsRoot, tree: .details, from: location, low: nil, high: nil, depth: 0)
        _ = try walk(sb.dataMappingRoot, tree: .topLevel, from: location, low: nil, high: nil, depth: 0)
        let details = try BTreeReader(source: source, root: sb.deviceDetailsRoot, leafValueSize: DeviceDetails.diskSize)
            .entries { n, i in DeviceDetails(decoding: n.bytes, at: n.valueOffset(i)) }
        let roots = try BTreeReader(source: source, root: sb.dataMappingRoot, leafValueSize: 8).entries64()
        var r = 0
        for (id, d) in details {
            if r < roots.count, roots[r].0 < id {
                throw MetadataError.check("block \(sb.dataMappingRoot): device \(roots[r].0) has a mapping tree but no details\(where_)")
            }
            guard r < roots.count, roots[r].0 == id else {
                throw MetadataError.check("block \(sb.deviceDetailsRoot): device \(id) has details but no mapping tree\(where_)")
            }
            let mapped = summaries[roots[r].1]?.entries ?? 0
            if UInt64(mapped) != d.mappedBlocks {
                throw MetadataError.check("block \(roots[r].1): device \(id)\(where_) maps \(mapped) blocks but its details say mapped_blocks \(d.mappedBlocks)")
            }
            r += 1
        }
        if r < roots.count {
            throw MetadataError.check("block \(sb.dataMappingRoot): device \(roots[r].0) has a mapping tree but no details\(where_)")
        }
        return details.count
    }

    /// One more pointer to metadata block `block`.
    private func ref(_ block: UInt64, from: UInt64?, role: String) throws {
        if block == 0 && from != nil {
            throw MetadataError.check("block \(from!): \(role) pointer to block 0 (the superblock)")
        }
        if block >= metadataLimit {
            throw MetadataError.check("block \(from ?? 0): \(role) pointer to block \(block) is outside the metadata space map (\(metadataLimit) blocks)")
        }
        expectedMetadata[Int(block)] &+= 1
        if roles[block] == nil { roles[block] = role }
    }

    /// Walks the subtree at `block` (one pointer to it from `from`); shared subtrees are
    /// walked once and only their pointer is counted again.
    private func walk(_ block: UInt64, tree: Tree, from: UInt64, low: UInt64?, high: UInt64?, depth: Int) throws -> Summary {
        try ref(block, from: from, role: tree.name)
        let s: Summary
        if let known = summaries[block] {
            guard known.tree.sameKind(tree) else {
                throw MetadataError.check("block \(block): B-tree node used both in the \(known.tree.name) and in the \(tree.name)")
            }
            s = known
        } else {
            if path.contains(block) || depth > BTreeReader.maxDepth {
                throw MetadataError.check("block \(block): B-tree cycle in the \(tree.name) (node reached again from below itself, via block \(from))")
            }
            s = try walkNew(block, tree: tree, from: from, depth: depth)
            summaries[block] = s
        }
        if s.entries > 0 {
            if let low, s.minKey < low {
                throw MetadataError.check("block \(block): B-tree keys out of order in the \(tree.name): key \(s.minKey) below its parent's key \(low) (parent block \(from))")
            }
            if let high, s.maxKey >= high {
                throw MetadataError.check("block \(block): B-tree keys out of order in the \(tree.name): key \(s.maxKey) not below the next parent key \(high) (parent block \(from))")
            }
        }
        return s
    }

    private func walkNew(_ block: UInt64, tree: Tree, from: UInt64, depth: Int) throws -> Summary {
        let n: Node
        do {
            n = try Node(decoding: source.validBlock(block, kind: .node), location: block, leafValueSize: tree.leafValueSize)
        } catch {
            throw MetadataError.check("\(error) (\(tree.name), reached from block \(from))")
        }
        let c = n.count
        if n.isInternal && c == 0 {
            throw MetadataError.check("block \(block): bad B-tree node: internal node with no entries (\(tree.name))")
        }
        // As thin_check: capacity a multiple of 3, and every node below a root at least a third full.
        if n.maxEntries % 3 != 0 {
            throw MetadataError.check("block \(block): bad B-tree node: max_entries \(n.maxEntries) is not a multiple of 3 (\(tree.name))")
        }
        if depth > 0 && c < n.maxEntries / 3 {
            throw MetadataError.check("block \(block): bad B-tree node: \(c) entries in a non-root node, at least \(n.maxEntries / 3) expected (\(tree.name), reached from block \(from))")
        }
        var s = Summary(tree: tree, entries: 0, minKey: c > 0 ? n.key(0) : 0, maxKey: c > 0 ? n.key(c - 1) : 0)
        path.insert(block)
        defer { path.remove(block) }
        if n.isInternal {
            for i in 0..<c {
                let child = try walk(n.value64(i), tree: tree, from: block, low: n.key(i),
                                     high: i + 1 < c ? n.key(i + 1) : nil, depth: depth + 1)
                s.entries += child.entries
            }
            return s
        }
        s.entries = c
        switch tree {
        case .bottom:
            leafMappings += c
            var bad: (UInt64, UInt64)?
            dataLeaves.append(block)
            if !windowed && dataRefs.count + c > dataRefBudget {
                windowed = true
                dataRefs = []
            }
            n.forEachEntry64 { k, v in
                let d = v >> 24
                if d >= dataLimit {
                    if bad == nil { bad = (k, d) }
                    return
                }
                let bi = Int(d / entriesPerBitmap)
                if bi < refsPerBitmap.count { refsPerBitmap[bi] += 1 }  // empty for a held snapshot alone
                if !windowed { dataRefs.append(d) }
            }
            if let (k, d) = bad {
                throw MetadataError.check("block \(block): \(tree.name) maps virtual block \(k) to data block \(d), beyond the data device (\(dataLimit) blocks)")
            }
        case .topLevel:
            for i in 0..<c {
                _ = try walk(n.value64(i), tree: .bottom(n.key(i)), from: block, low: nil, high: nil, depth: 0)
            }
        case .details:
            break
        case .dataIndex:
            for i in 0..<c {
                guard n.key(i) == UInt64(dataIndex.count) else {
                    throw MetadataError.check("block \(block): data space-map index key \(n.key(i)) where \(dataIndex.count) was expected")
                }
                dataIndex.append(IndexEntry(decoding: n.bytes, at: n.valueOffset(i)))
            }
        case let .overflow(kind):
            for i in 0..<c { overflow[kind]![n.key(i)] = n.bytes.le32(n.valueOffset(i)) }
        }
        return s
    }
}
