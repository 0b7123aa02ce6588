/// Copy-on-write B-tree operations on one tree of the metadata (§3.6, §3.7).
///
/// Every change shadows the path from the root down (`TransactionManager.shadow`), so the
/// committed tree stays intact; the new root is returned and stored by the caller.
/// Leaf values are opaque bytes; `policy` only says what a copied shared leaf references.
/// Keeping references right for inserted/overwritten/removed values is the caller's job
/// (insert/remove hand back the old value).
public struct BTree {
    public let tm: TransactionManager
    public let leafValueSize: Int
    public let policy: ValuePolicy

    public init(tm: TransactionManager, leafValueSize: Int, policy: ValuePolicy) {
        self.tm = tm
        self.leafValueSize = leafValueSize
        self.policy = policy
    }

    var leafMax: Int { Node.maxEntries(valueSize: leafValueSize) }

    /// Non-root nodes keep at least a third of their capacity (0.9.0 thin_check: "too few entries").
    static func minEntries(_ n: Node) -> Int { n.maxEntries / 3 }

    // MARK: lookup

    /// The value under `key`, or nil.
    public func lookup(root: UInt64, key: UInt64) throws -> [UInt8]? {
        var b = root
        for _ in 0..<BTreeReader.maxDepth {
            let n = try tm.node(b, leafValueSize: leafValueSize)
            let i = n.lowerBound(key)
            if n.isLeaf { return (i >= 0 && n.key(i) == key) ? Array(n.valueBytes(i)) : nil }
            if i < 0 { return nil }
            b = n.value64(i)
        }
        throw MetadataError.cycle(block: b)
    }

    public func lookup64(root: UInt64, key: UInt64) throws -> UInt64? {
        guard let v = try lookup(root: root, key: key) else { return nil }
        return v.le64(0)
    }

    /// Keys (with 8-byte values) in `range`, ascending.
    public func entries64(root: UInt64, in range: Range<UInt64>) throws -> [(UInt64, UInt64)] {
        var out: [(UInt64, UInt64)] = []
        try collect(root, range, depth: 0, &out)
        return out
    }

    private func collect(_ b: UInt64, _ r: Range<UInt64>, depth: Int, _ out: inout [(UInt64, UInt64)]) throws {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        let n = try tm.node(b, leafValueSize: leafValueSize)
        let c = n.count
        if n.isLeaf {
            var i = max(0, n.lowerBound(r.lowerBound))
            while i < c {
                let k = n.key(i)
                if k >= r.upperBound { break }
                if k >= r.lowerBound { out.append((k, n.value64(i))) }
                i += 1
            }
            return
        }
        var i = max(0, n.lowerBound(r.lowerBound))
        while i < c {
            if n.key(i) >= r.upperBound { break }
            try collect(n.value64(i), r, depth: depth + 1, &out)
            i += 1
        }
    }

    /// Number of nodes on the path to `key` (tree depth).
    public func depth(root: UInt64, key: UInt64) throws -> Int {
        var b = root, d = 1
        while true {
            let n = try tm.node(b, leafValueSize: leafValueSize)
            if n.isLeaf { return d }
            b = n.value64(max(0, n.lowerBound(key)))
            d += 1
            if d > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        }
    }

    // MARK: new tree

    /// A new empty tree (one empty leaf); returns its root.
    public func create() throws -> UInt64 {
        try tm.newNode(leaf: true, valueSize: leafValueSize).location
    }

    // MARK: insert

    /// Inserts or overwrites `key`; returns the new root.
    @discardableResult
    public func insert(root: UInt64, key: UInt64, value: [UInt8]) throws -> UInt64 {
        try update(root: root, key: key) { _ in value }.root
    }

    /// Inserts or overwrites `key` with what `body` computes from the old value. `body` runs
    /// after the leaf was shadowed (so a two-level update shadows top-down, like the kernel).
    /// Returns the new root and the old value.
    public func update(root: UInt64, key: UInt64, _ body: ([UInt8]?) throws -> [UInt8]) throws -> (root: UInt64, old: [UInt8]?) {
        var old: [UInt8]? = nil
        let parts = try insertRec(root, key, body, &old, depth: 0)
        if parts.count == 1 { return (parts[0].block, old) }
        var r = try tm.newNode(leaf: false, valueSize: 8)
        for (i, p) in parts.enumerated() {
            var v = [UInt8](repeating: 0, count: 8)
            v.setLE64(0, p.block)
            r.insertEntry(at: i, key: p.key, value: v)
        }
        tm.put(r)
        return (r.location, old)
    }

    private typealias Part = (key: UInt64, block: UInt64)

    private func insertRec(_ b: UInt64, _ key: UInt64, _ body: ([UInt8]?) throws -> [UInt8], _ old: inout [UInt8]?, depth: Int) throws -> [Part] {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        var n = try tm.shadow(b, leafValueSize: leafValueSize, policy: policy)
        if n.isLeaf {
            let i = n.lowerBound(key)
            if i >= 0 && n.key(i) == key {
                let o = Array(n.valueBytes(i))
                old = o
                let v = try body(o)
                n = try tm.node(n.location, leafValueSize: leafValueSize)  // body may not touch this node, but re-read to be safe
                n.setValueBytes(i, v)
                tm.put(n)
                return [(n.key(0), n.location)]
            }
            let v = try body(nil)
            n = try tm.node(n.location, leafValueSize: leafValueSize)
            return try insertAt(&n, i + 1, key, v)
        }
        var i = n.lowerBound(key)
        if i < 0 { i = 0; n.setKey(0, key) }
        tm.put(n)
        let parts = try insertRec(n.value64(i), key, body, &old, depth: depth + 1)
        n = try tm.node(n.location, leafValueSize: leafValueSize)
        n.setKey(i, parts[0].key)
        n.setValue64(i, parts[0].block)
        if parts.count == 1 {
            tm.put(n)
            return [(n.key(0), n.location)]
        }
        var v = [UInt8](repeating: 0, count: 8)
        v.setLE64(0, parts[1].block)
        return try insertAt(&n, i + 1, parts[1].key, v)
    }

    /// Inserts into a shadowed node, splitting it in two when full.
    private func insertAt(_ n: inout Node, _ i: Int, _ key: UInt64, _ value: [UInt8]) throws -> [Part] {
        if n.count < n.maxEntries {
            n.insertEntry(at: i, key: key, value: value)
            tm.put(n)
            return [(n.key(0), n.location)]
        }
        var right = try tm.newNode(leaf: n.isLeaf, valueSize: n.valueSize)
        let c = n.count, half = c / 2
        right.setEntries(keys: n.keysRaw(half..<c), values: n.valuesRaw(half..<c))
        n.setCount(half)
        if i <= half { n.insertEntry(at: i, key: key, value: value) }
        else { right.insertEntry(at: i - half, key: key, value: value) }
        tm.put(n)
        tm.put(right)
        return [(n.key(0), n.location), (right.key(0), right.location)]
    }

    // MARK: remove

    /// Removes `key` if present; returns the new root and the removed value.
    @discardableResult
    public func remove(root: UInt64, key: UInt64) throws -> (root: UInt64, removed: [UInt8]?) {
        guard try lookup(root: root, key: key) != nil else { return (root, nil) }
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

    // MARK: delete whole tree

    /// Drops one reference to the tree at `root` (`dm_btree_del`): shared nodes are only
    /// decremented; exclusive ones are freed after their children/values are released.
    public func deleteTree(root: UInt64) throws {
        try del(root, depth: 0)
    }

    private func del(_ b: UInt64, depth: Int) throws {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        if tm.metadataCounts[b] > 1 { try tm.decMetadata(b); return }
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
