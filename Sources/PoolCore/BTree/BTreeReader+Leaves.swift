/// Fast ordered iteration over leaves (dump, ls, check): no per-entry copies.
extension BTreeReader {
    /// Every leaf in ascending key order, validated as `walkNodes` validates them.
    public func forEachLeaf(_ body: (Node) throws -> Void) throws {
        try walkNodes { n, _ in
            if n.isLeaf { try body(n) }
            return .children
        }
    }
}

extension Node {
    /// Each (key, 8-byte value) of this node in order, read straight from the block bytes.
    @inline(__always)
    public func forEachEntry64(_ body: (UInt64, UInt64) throws -> Void) rethrows {
        precondition(valueSize >= 8, "forEachEntry64 on a node with \(valueSize)-byte values")
        let n = count
        let valuesAt = Node.headerSize + 8 * maxEntries
        try bytes.withUnsafeBytes { raw in
            for i in 0..<n {
                let k = raw.loadUnaligned(fromByteOffset: Node.headerSize + 8 * i, as: UInt64.self).littleEndian
                let v = raw.loadUnaligned(fromByteOffset: valuesAt + 8 * i, as: UInt64.self).littleEndian
                try body(k, v)
            }
        }
    }
}
