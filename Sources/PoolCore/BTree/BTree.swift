/// Copy-on-write B-tree operations on one tree of the metadata (FORMAT.md §3.6, §3.7).
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
}
