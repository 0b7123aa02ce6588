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
        try update(root: root, key: key, body, fill: nil)
    }

    /// Adds more entries to the leaf that just took a key, while they belong to it: the leaf
    /// (shadowed) and the first key not below it (nil: none).
    typealias Fill = (inout Node, UInt64?) throws -> Void

    private func update(root: UInt64, key: UInt64, _ body: ([UInt8]?) throws -> [UInt8], fill: Fill?) throws -> (root: UInt64, old: [UInt8]?) {
        var old: [UInt8]? = nil
        let parts = try insertRec(root, key, body, &old, high: nil, fill: fill, depth: 0)
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

    /// Inserts or overwrites the 8-byte values of keys `first`, `first + 1`, … (a run of
    /// consecutive blocks): one descent per leaf instead of one per key. After a key lands in a
    /// leaf with room, the following keys go into the same leaf while they are below the next
    /// key of its parents and the leaf has room (overwrites need none); a full leaf is split by
    /// the ordinary insert of the next key. Each key thus lands exactly where inserting the keys
    /// one by one in ascending order puts it, and the tree comes out the same.
    /// Returns the new root and the (index in `values`, old value) of overwritten keys.
    func insertRun(root: UInt64, first: UInt64, values: [UInt64]) throws -> (root: UInt64, replaced: [(Int, UInt64)]) {
        precondition(leafValueSize == 8)
        var replaced: [(Int, UInt64)] = []
        var root = root
        var i = 0
        func bytes(_ v: UInt64) -> [UInt8] {
            var b = [UInt8](repeating: 0, count: 8)
            b.setLE64(0, v)
            return b
        }
        while i < values.count {
            root = try update(root: root, key: first + UInt64(i), { old in
                if let old { replaced.append((i, old.le64(0))) }
                i += 1
                return bytes(values[i - 1])
            }, fill: { n, high in
                while i < values.count {
                    let k = first + UInt64(i)
                    if let high, k >= high { return }
                    let at = n.lowerBound(k)
                    if at >= 0 && n.key(at) == k {
                        replaced.append((i, n.value64(at)))
                        n.setValue64(at, values[i])
                    } else if n.count < n.maxEntries {
                        n.insertEntry(at: at + 1, key: k, value: bytes(values[i]))
                    } else {
                        return
                    }
                    i += 1
                }
            }).root
        }
        return (root, replaced)
    }

    private func insertRec(_ b: UInt64, _ key: UInt64, _ body: ([UInt8]?) throws -> [UInt8], _ old: inout [UInt8]?,
                           high: UInt64?, fill: Fill?, depth: Int) throws -> [Part] {
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
                try fill?(&n, high)
                tm.put(n)
                return [(n.key(0), n.location)]
            }
            let v = try body(nil)
            n = try tm.node(n.location, leafValueSize: leafValueSize)
            if let fill, n.count < n.maxEntries {
                n.insertEntry(at: i + 1, key: key, value: v)
                try fill(&n, high)
                tm.put(n)
                return [(n.key(0), n.location)]
            }
            return try insertAt(&n, i + 1, key, v)
        }
        var i = n.lowerBound(key)
        if i < 0 { i = 0; n.setKey(0, key) }
        tm.put(n)
        let childHigh = i + 1 < n.count ? n.key(i + 1) : high
        let parts = try insertRec(n.value64(i), key, body, &old, high: childHigh, fill: fill, depth: depth + 1)
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
