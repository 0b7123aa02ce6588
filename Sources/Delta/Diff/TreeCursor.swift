import PoolCore

/// A position in one bottom-level mapping tree, read lazily: the current item
/// is either a subtree not yet read (a block and the key range its parent
/// gives it) or one leaf entry. `expand()` reads a subtree's node and moves
/// onto its first child or entry; `advance()` moves past the current item.
///
/// Memory is one node per level. Every node read is validated (checksum, own
/// location, value size, key order, keys inside the parent's range); a block
/// met again below itself is a cycle.
struct TreeCursor {
    enum Item {
        /// An unread subtree: `block` holds keys in `[low, high)` (nil: unbounded).
        case subtree(block: UInt64, low: UInt64?, high: UInt64?, parent: UInt64?)
        /// A leaf entry: virtual block `key` maps to data block `data`.
        case entry(key: UInt64, data: UInt64)
    }

    private struct Frame {
        let node: Node
        var index: Int
        let high: UInt64?
    }

    private let tree: BTreeReader
    private var frames: [Frame] = []
    /// The item under the cursor; nil once the tree is exhausted.
    private(set) var current: Item?
    /// Depth of the leaves (root = 0), known once a leaf was read.
    private(set) var leafDepth: Int?

    /// A cursor on the tree rooted at `root`.
    init(source: any BlockReading, root: UInt64) {
        tree = BTreeReader(source: source, root: root, leafValueSize: 8)
        current = .subtree(block: root, low: nil, high: nil, parent: nil)
    }

    /// A cursor over one subtree with the bounds its parent gives it.
    init(source: any BlockReading, block: UInt64, low: UInt64?, high: UInt64?, parent: UInt64?) {
        tree = BTreeReader(source: source, root: block, leafValueSize: 8)
        current = .subtree(block: block, low: low, high: high, parent: parent)
    }

    /// Depth of the current item (the root item is at depth 0).
    var depth: Int { frames.count }

    /// Height of the current item above the leaves (leaf = 0), when the leaf depth is known.
    var height: Int? { leafDepth.map { $0 - depth } }

    /// Reads the current subtree's node and moves onto its first item.
    mutating func expand() throws(MetadataError) {
        guard case let .subtree(block, low, high, parent)? = current else {
            preconditionFailure("expand() needs an unread subtree under the cursor")
        }
        if frames.count >= BTreeReader.maxDepth || frames.contains(where: { $0.node.location == block }) {
            throw .cycle(block: block)
        }
        let n = try tree.node(block, from: parent)
        let c = n.count
        if c > 0 {
            if let low, n.key(0) < low { throw .keysOutOfOrder(block: block, index: 0) }
            if let high, n.key(c - 1) >= high { throw .keysOutOfOrder(block: block, index: c - 1) }
        } else if n.isInternal {
            throw .badNode(block: block, reason: "internal node with no entries")
        }
        if n.isLeaf && leafDepth == nil { leafDepth = frames.count }
        frames.append(Frame(node: n, index: 0, high: high))
        settle()
    }

    /// Moves past the current item (a whole subtree, read or not, or one entry).
    mutating func advance() {
        precondition(current != nil, "advance() past the end")
        // An unread root has no frame: moving past it ends the walk.
        if frames.isEmpty { current = nil; return }
        frames[frames.count - 1].index += 1
        settle()
    }

    /// Makes `current` the item at the top frame's index, popping exhausted frames.
    private mutating func settle() {
        while let top = frames.last {
            if top.index < top.node.count {
                current = item(top)
                return
            }
            frames.removeLast()
            if !frames.isEmpty { frames[frames.count - 1].index += 1 }
        }
        current = nil
    }

    private func item(_ f: Frame) -> Item {
        let n = f.node, i = f.index
        if n.isLeaf { return .entry(key: n.key(i), data: BlockTime(raw: n.value64(i)).dataBlock) }
        let high = i + 1 < n.count ? n.key(i + 1) : f.high
        return .subtree(block: n.value64(i), low: n.key(i), high: high, parent: n.location)
    }
}
