/// A B-tree node block, FORMAT.md §3.1: 32-byte header, `maxEntries` keys, then `maxEntries` values.
///
/// The node keeps its raw 4096 bytes; accessors decode on demand. Decoding with
/// `init(decoding:location:leafValueSize:)` checks everything the accessors rely on, so
/// they never read outside the block.
public struct Node: Sendable {
    static let internalFlag: UInt32 = 1
    static let leafFlag: UInt32 = 2
    static let headerSize = 32

    public private(set) var bytes: [UInt8]
    /// Where the node was read from (or will be written to).
    public var location: UInt64

    public var flags: UInt32 { bytes.le32(4) }
    public var isLeaf: Bool { flags & Node.leafFlag != 0 }
    public var isInternal: Bool { !isLeaf }
    /// on disk: `nr_entries`.
    public var count: Int { Int(bytes.le32(16)) }
    /// on disk: `max_entries`.
    var maxEntries: Int { Int(bytes.le32(20)) }
    /// on disk: `value_size`.
    var valueSize: Int { Int(bytes.le32(24)) }

    /// Largest multiple of 3 entries that fits a block for `valueSize`-byte values (FORMAT.md §3.2).
    static func maxEntries(valueSize: Int) -> Int {
        let n = (metadataBlockSize - headerSize) / (8 + valueSize)
        return 3 * (n / 3)
    }

    /// Decodes a node read from `location` for a tree whose leaves hold `valueSize`-byte
    /// values (internal nodes always hold 8-byte child pointers) and checks its structure:
    /// flags, value size, capacity, count, ascending keys. The checksum and location were
    /// checked where the block was read (`BlockValidator`).
    public init(decoding block: [UInt8], location: UInt64, leafValueSize: Int) throws(MetadataError) {
        guard block.count == metadataBlockSize else { throw .shortBlock(block: location, size: block.count) }
        bytes = block
        self.location = location
        let f = flags
        guard f & (Node.internalFlag | Node.leafFlag) != 0 else {
            throw .badNode(block: location, reason: "flags \(f) mark neither internal nor leaf")
        }
        guard f & Node.internalFlag == 0 || f & Node.leafFlag == 0 else {
            throw .badNode(block: location, reason: "flags \(f) mark both internal and leaf")
        }
        let vs = valueSize, maxE = maxEntries, n = count
        let expected = isLeaf ? leafValueSize : 8
        guard vs == expected else { throw .valueSize(block: location, expected: expected, found: vs) }
        guard maxE > 0, Node.headerSize + (8 + vs) * maxE <= metadataBlockSize else {
            throw .badNode(block: location, reason: "max_entries \(maxE) does not fit a block with \(vs)-byte values")
        }
        guard n <= maxE else {
            throw .badNode(block: location, reason: "nr_entries \(n) exceeds max_entries \(maxE)")
        }
        if n > 1 {
            var prev = key(0)
            for i in 1..<n {
                let k = key(i)
                guard k > prev else { throw .keysOutOfOrder(block: location, index: i) }
                prev = k
            }
        }
    }

    /// A new empty node (zero-filled, unsealed).
    init(emptyLeaf: Bool, valueSize: Int, location: UInt64) {
        bytes = .zeroBlock()
        self.location = location
        bytes.setLE32(4, emptyLeaf ? Node.leafFlag : Node.internalFlag)
        bytes.setLE32(20, UInt32(Node.maxEntries(valueSize: valueSize)))
        bytes.setLE32(24, UInt32(valueSize))
    }

    /// Wraps bytes already validated (e.g. a copy of a node being shadowed).
    init(unchecked bytes: [UInt8], location: UInt64) {
        self.bytes = bytes
        self.location = location
    }

    @inline(__always) public func key(_ i: Int) -> UInt64 { bytes.le64(Node.headerSize + 8 * i) }

    @inline(__always) func valueOffset(_ i: Int) -> Int {
        Node.headerSize + 8 * maxEntries + valueSize * i
    }

    /// The 8-byte value at `i` (child pointer, mapping, subtree root).
    @inline(__always) public func value64(_ i: Int) -> UInt64 { bytes.le64(valueOffset(i)) }

    /// The `valueSize` bytes of value `i`.
    func valueBytes(_ i: Int) -> ArraySlice<UInt8> {
        let o = valueOffset(i)
        return bytes[o..<(o + valueSize)]
    }

    public var keys: [UInt64] { (0..<count).map(key) }

    /// Index of the largest key ≤ `target`, or -1 (kernel `lower_bound`).
    public func lowerBound(_ target: UInt64) -> Int {
        var lo = -1, hi = count
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if key(mid) <= target { lo = mid } else { hi = mid }
        }
        return lo
    }

    // MARK: mutation (write path)

    mutating func setCount(_ n: Int) { bytes.setLE32(16, UInt32(n)) }
    mutating func setKey(_ i: Int, _ k: UInt64) { bytes.setLE64(Node.headerSize + 8 * i, k) }
    mutating func setValue64(_ i: Int, _ v: UInt64) { bytes.setLE64(valueOffset(i), v) }
    mutating func setValueBytes(_ i: Int, _ v: some Collection<UInt8>) {
        precondition(v.count == valueSize)
        let o = valueOffset(i)
        bytes.replaceSubrange(o..<(o + valueSize), with: v)
    }

    /// Moves `length` bytes inside the block (overlap allowed).
    mutating func shift(from: Int, to: Int, length: Int) {
        guard length > 0 else { return }
        bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            base.advanced(by: to).copyMemory(from: base.advanced(by: from), byteCount: length)
        }
    }

    @inline(__always) mutating func setByte(_ i: Int, _ b: UInt8) { bytes[i] = b }

    /// The block to write: own location and checksum filled in.
    func sealed() -> [UInt8] {
        var b = bytes
        Checksum.seal(&b, kind: .node, location: location)
        return b
    }
}
