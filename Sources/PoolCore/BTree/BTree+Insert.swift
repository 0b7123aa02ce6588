/// Insert and overwrite with copy-on-write and node splitting (FORMAT.md §3.7).
extension BTree {
    /// Inserts or overwrites `key`; returns the new root.
    @discardableResult
    func insert(root: UInt64, key: UInt64, value: [UInt8]) throws -> UInt64 {
        try update(root: root, key: key) { _ in value }.root
    }

    /// Inserts or overwrites `key` with what `body` computes from the old value. `body` runs
    /// after the leaf was shadowed (so a two-level update shadows top-down, like the kernel).
    /// Returns the new root and the old value.
    func update(root: UInt64, key: UInt64, _ body: ([UInt8]?) throws -> [UInt8]) throws -> (root: UInt64, old: [UInt8]?) {
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

    typealias Part = (key: UInt64, block: UInt64)

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
}
