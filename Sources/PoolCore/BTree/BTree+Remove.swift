/// Removal with copy-on-write and rebalancing (non-root nodes stay at least a third full).
extension BTree {
    /// Removes `key` if present; returns the new root and the removed value.
    @discardableResult
    func remove(root: UInt64, key: UInt64) throws -> (root: UInt64, removed: [UInt8]?) {
        guard try BTreeReader(source: tm, root: root, leafValueSize: leafValueSize).find(key) != nil else { return (root, nil) }
        var removed: [UInt8]? = nil
        var r = try removeRec(root, key, &removed, depth: 0)
        // A root internal node left with one child hands the tree to that child.
        while true {
            let n = try tm.node(r, leafValueSize: leafValueSize)
            guard n.isInternal, n.count == 1 else { break }
            // The child loses the root's reference and gains the caller's: its count stays.
            let child = n.value64(0)
            try tm.decMetadata(r)
            r = child
        }
        return (r, removed)
    }

    private func removeRec(_ b: UInt64, _ key: UInt64, _ removed: inout [UInt8]?, depth: Int) throws -> UInt64 {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        var n = try tm.shadow(b, leafValueSize: leafValueSize, policy: policy)
        let i = n.lowerBound(key)
        if n.isLeaf {
            guard i >= 0, n.key(i) == key else { return n.location }
            removed = Array(n.valueBytes(i))
            n.removeEntry(at: i)
            tm.put(n)
            return n.location
        }
        guard i >= 0 else { return n.location }
        let nc = try removeRec(n.value64(i), key, &removed, depth: depth + 1)
        n = try tm.node(n.location, leafValueSize: leafValueSize)
        n.setValue64(i, nc)
        tm.put(n)
        try rebalance(&n, child: i)
        tm.put(n)
        return n.location
    }

    /// Restores the minimum fill of child `i` of the shadowed internal node `n` by merging
    /// with or borrowing from a sibling.
    private func rebalance(_ n: inout Node, child i: Int) throws {
        guard n.count >= 2 else { return }
        let c = try tm.node(n.value64(i), leafValueSize: leafValueSize)
        guard c.count < BTree.minEntries(c) else { return }
        let li = i + 1 < n.count ? i : i - 1, ri = li + 1
        // Siblings are one level of one tree: same kind, same capacity (damaged metadata may differ).
        let l0 = try tm.node(n.value64(li), leafValueSize: leafValueSize), r0 = try tm.node(n.value64(ri), leafValueSize: leafValueSize)
        guard l0.isLeaf == r0.isLeaf, l0.maxEntries == r0.maxEntries else {
            throw MetadataError.badNode(block: r0.location, reason: "sibling of block \(l0.location) in parent \(n.location) differs in kind or max_entries")
        }
        var left = try tm.shadow(n.value64(li), leafValueSize: leafValueSize, policy: policy)
        n.setValue64(li, left.location)
        var right = try tm.shadow(n.value64(ri), leafValueSize: leafValueSize, policy: policy)
        n.setValue64(ri, right.location)
        left = try tm.node(left.location, leafValueSize: leafValueSize)
        let lc = left.count, rc = right.count
        if lc + rc <= left.maxEntries {
            var keys = Array(left.keysRaw(0..<lc)); keys += right.keysRaw(0..<rc)
            var vals = Array(left.valuesRaw(0..<lc)); vals += right.valuesRaw(0..<rc)
            left.setEntries(keys: keys, values: vals)
            tm.put(left)
            n.removeEntry(at: ri)
            try tm.decMetadata(right.location)  // children moved to `left`: no recursive free
            return
        }
        let total = lc + rc, nl = total / 2
        var keys = Array(left.keysRaw(0..<lc)); keys += right.keysRaw(0..<rc)
        var vals = Array(left.valuesRaw(0..<lc)); vals += right.valuesRaw(0..<rc)
        let vs = left.valueSize
        left.setEntries(keys: keys[0..<(8 * nl)], values: vals[0..<(vs * nl)])
        right.setEntries(keys: keys[(8 * nl)...], values: vals[(vs * nl)...])
        tm.put(left)
        tm.put(right)
        n.setKey(ri, right.key(0))
    }
}
