/// Whole-tree delete (`dm_btree_del`).
extension BTree {
    /// Drops one reference to the tree at `root` (`dm_btree_del`): shared nodes are only
    /// decremented; exclusive ones are freed after their children/values are released.
    func deleteTree(root: UInt64) throws {
        try del(root, depth: 0)
    }

    private func del(_ b: UInt64, depth: Int) throws {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        if try tm.metadataCounts.count(b) > 1 { try tm.decMetadata(b); return }
        let n = try tm.node(b, leafValueSize: leafValueSize)
        if n.isInternal {
            for i in 0..<n.count { try del(n.value64(i), depth: depth + 1) }
        } else {
            switch policy {
            case .none: break
            case .dataBlocks: for i in 0..<n.count { try tm.decData(n.value64(i) >> 24) }
            case .subtrees:
                let bottom = BTree(tm: tm, leafValueSize: 8, policy: .dataBlocks)
                for i in 0..<n.count { try bottom.deleteTree(root: n.value64(i)) }
            }
        }
        try tm.decMetadata(b)
    }
}
