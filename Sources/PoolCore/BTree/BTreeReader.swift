/// Read access to one B-tree: lookup and ordered, validated walks. The one read path:
/// metadata on disk, a held snapshot and the open transaction are all read through it.
public struct BTreeReader {
    public let source: any BlockReading
    public let root: UInt64
    /// Bytes per leaf value (8 mapping/top level, 24 details, 16 data index, 4 overflow).
    public let leafValueSize: Int
    /// Depth beyond which a walk is treated as a cycle (a real tree is < 10 deep).
    public static let maxDepth = 32

    public init(source: any BlockReading, root: UInt64, leafValueSize: Int) {
        self.source = source
        self.root = root
        self.leafValueSize = leafValueSize
    }

    /// Reads and validates the node at `block`, reached from `from` (for the error message).
    public func node(_ block: UInt64, from: UInt64? = nil) throws(MetadataError) -> Node {
        if block >= source.blockCount || block == 0 {
            throw .pointerOutOfRange(from: from ?? block, to: block, blockCount: source.blockCount)
        }
        return try Node(decoding: source.validBlock(block, kind: .node), location: block, leafValueSize: leafValueSize)
    }

    /// The leaf node and entry index holding `key`, or nil.
    public func find(_ key: UInt64) throws(MetadataError) -> (node: Node, index: Int)? {
        var block = root
        var depth = 0
        while true {
            let n = try node(block)
            let i = n.lowerBound(key)
            if n.isLeaf {
                return (i >= 0 && n.key(i) == key) ? (n, i) : nil
            }
            if i < 0 { return nil }
            depth += 1
            if depth > BTreeReader.maxDepth { throw .cycle(block: block) }
            block = n.value64(i)
        }
    }

    /// The 8-byte value stored under `key`, or nil.
    public func lookup64(_ key: UInt64) throws(MetadataError) -> UInt64? {
        guard let (n, i) = try find(key) else { return nil }
        return n.value64(i)
    }

    /// The raw value bytes stored under `key`, or nil.
    public func lookup(_ key: UInt64) throws(MetadataError) -> [UInt8]? {
        guard let (n, i) = try find(key) else { return nil }
        return Array(n.valueBytes(i))
    }

    /// What a node visitor tells the walk to do with an internal node's children.
    enum Descend { case children, skip }

    /// Depth-first walk in key order. `visit` sees every node once per path that
    /// reaches it; it may skip an internal node's children (e.g. a shared subtree).
    /// Keys are checked against the range the parent gives; cycles are detected.
    func walkNodes(_ visit: (Node, _ depth: Int) throws -> Descend) throws {
        var path = Set<UInt64>()
        try walk(root, from: nil, low: nil, high: nil, depth: 0, path: &path, visit)
    }

    private func walk(_ block: UInt64, from: UInt64?, low: UInt64?, high: UInt64?, depth: Int,
                      path: inout Set<UInt64>, _ visit: (Node, Int) throws -> Descend) throws {
        if path.contains(block) || depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: block) }
        let n = try node(block, from: from)
        let c = n.count
        if c > 0 {
            if let low, n.key(0) < low { throw MetadataError.keysOutOfOrder(block: block, index: 0) }
            if let high, n.key(c - 1) >= high { throw MetadataError.keysOutOfOrder(block: block, index: c - 1) }
        } else if n.isInternal {
            throw MetadataError.badNode(block: block, reason: "internal node with no entries")
        }
        guard try visit(n, depth) == .children, n.isInternal else { return }
        path.insert(block)
        for i in 0..<c {
            let childHigh = i + 1 < c ? n.key(i + 1) : high
            // Removals may leave an internal key below its child's minimum, never above.
            try walk(n.value64(i), from: block, low: n.key(i), high: childHigh, depth: depth + 1, path: &path, visit)
        }
        path.remove(block)
    }

    /// Every leaf entry in ascending key order.
    func forEachEntry(_ body: (_ key: UInt64, _ leaf: Node, _ index: Int) throws -> Void) throws {
        try walkNodes { n, _ in
            if n.isLeaf { for i in 0..<n.count { try body(n.key(i), n, i) } }
            return .children
        }
    }

    /// Every (key, 8-byte value) with the key in `range`, ascending; reads only the nodes
    /// whose key range meets `range`.
    func entries64(in range: Range<UInt64>) throws -> [(UInt64, UInt64)] {
        var out: [(UInt64, UInt64)] = []
        try forEachLeafEntry(in: range) { k, n, i in out.append((k, n.value64(i))) }
        return out
    }

    /// Every leaf entry with the key in `range`, ascending; reads only the nodes whose key range
    /// meets `range`.
    func forEachLeafEntry(in range: Range<UInt64>, _ body: (_ key: UInt64, _ leaf: Node, _ index: Int) throws -> Void) throws {
        try visit(root, range, depth: 0, body)
    }

    private func visit(_ b: UInt64, _ r: Range<UInt64>, depth: Int, _ body: (UInt64, Node, Int) throws -> Void) throws {
        if depth > BTreeReader.maxDepth { throw MetadataError.cycle(block: b) }
        let n = try node(b)
        var i = max(0, n.lowerBound(r.lowerBound))
        while i < n.count {
            let k = n.key(i)
            if k >= r.upperBound { break }
            if n.isInternal { try visit(n.value64(i), r, depth: depth + 1, body) } else if k >= r.lowerBound { try body(k, n, i) }
            i += 1
        }
    }

    /// Every (key, decoded value) in ascending key order.
    func entries<T>(_ decode: (Node, Int) -> T) throws -> [(UInt64, T)] {
        var out: [(UInt64, T)] = []
        try forEachEntry { k, n, i in out.append((k, decode(n, i))) }
        return out
    }

    /// Every (key, 8-byte value) in ascending key order.
    func entries64() throws -> [(UInt64, UInt64)] { try entries { n, i in n.value64(i) } }
}
