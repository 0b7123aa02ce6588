@testable import PoolCore

/// Independent recount of reference counts from the trees on disk (FORMAT.md §4.7), using only the
/// read layer: data count = mapping entries per distinct leaf; metadata count = pointers.
enum Recount {
    struct Result {
        var data: [UInt64: UInt32] = [:]
        var metadata: [UInt64: UInt32] = [:]
    }

    static func count(_ r: MetadataReader) throws -> Result {
        var out = Result()
        var seenNodes = Set<UInt64>()
        func tree(_ t: BTreeReader, leaf: (Node) throws -> Void) throws {
            out.metadata[t.root, default: 0] += 1
            try t.walkNodes { n, _ in
                if seenNodes.contains(n.location) { return .skip }
                seenNodes.insert(n.location)
                if n.isInternal { for i in 0..<n.count { out.metadata[n.value64(i), default: 0] += 1 } }
                else { try leaf(n) }
                return .children
            }
        }
        func trees(_ v: MetadataView) throws {
            try tree(v.detailsTree) { _ in }
            try tree(v.topLevelTree) { leaf in
                for i in 0..<leaf.count {
                    let root = leaf.value64(i)
                    try tree(BTreeReader(source: v.source, root: root, leafValueSize: 8)) { bl in
                        for j in 0..<bl.count { out.data[BlockTime(raw: bl.value64(j)).dataBlock, default: 0] += 1 }
                    }
                    out.metadata[root, default: 0] -= 1  // counted by tree(); the top-level slot is the reference
                    out.metadata[root, default: 0] += 1
                }
            }
        }
        let live = r.live
        out.metadata[0, default: 0] += 1
        try trees(live)
        if r.superblock.heldRoot != 0 {
            out.metadata[r.superblock.heldRoot, default: 0] += 1
            try trees(try r.metadataSnapshot())
        }
        // Space-map blocks: index / bitmaps / overflow trees.
        for sm in [live.metadataSpaceMap, live.dataSpaceMap] {
            if sm.kind == .metadata { out.metadata[sm.root.bitmapRoot, default: 0] += 1 }
            else { try tree(BTreeReader(source: r.source, root: sm.root.bitmapRoot, leafValueSize: 16)) { _ in } }
            for e in try sm.indexEntries() { out.metadata[e.bitmapBlock, default: 0] += 1 }
            try tree(BTreeReader(source: r.source, root: sm.root.refCountRoot, leafValueSize: 4)) { _ in }
        }
        return out
    }

    /// Non-zero counts from the space map on disk.
    static func onDisk(_ sm: SpaceMapReader) throws -> [UInt64: UInt32] {
        var out: [UInt64: UInt32] = [:]
        for (b, c) in try sm.allCounts().enumerated() where c > 0 { out[UInt64(b)] = c }
        return out
    }
}
