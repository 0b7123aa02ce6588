/// Entries covered by one space-map bitmap (4080 bytes of 2-bit counts).
let entriesPerBitmap: UInt64 = 16320
/// Index entries in the single metadata space-map index block.
let metadataIndexCapacity = 255
/// Largest usable metadata device, in blocks (255 × 16320; FORMAT.md §6.10).
let maxMetadataBlocks: UInt64 = UInt64(metadataIndexCapacity) * entriesPerBitmap

/// Bitmaps needed for `blocks` entries, rounded up; exact for any count read from disk (no overflow).
@inline(__always)
func bitmapsCovering(_ blocks: UInt64) -> Int {
    Int(blocks / entriesPerBitmap + (blocks % entriesPerBitmap == 0 ? 0 : 1))
}

/// Which of the pool's two space maps.
enum SpaceMapKind: String, Sendable, CustomStringConvertible {
    case metadata, data
    public var description: String { rawValue }
}

/// Read access to a space map on disk: index, bitmaps and overflow tree (FORMAT.md §4).
struct SpaceMapReader {
    public let source: any BlockReading
    public let root: SpaceMapRoot
    public let kind: SpaceMapKind

    public init(source: any BlockReading, root: SpaceMapRoot, kind: SpaceMapKind) {
        self.source = source
        self.root = root
        self.kind = kind
    }

    var bitmapCount: Int { bitmapsCovering(root.blockCount) }

    /// The index entries, one per bitmap, validated against the bitmap count.
    func indexEntries() throws -> [IndexEntry] {
        switch kind {
        case .metadata:
            let loc = root.bitmapRoot
            guard loc > 0, loc < source.blockCount else {
                throw MetadataError.pointerOutOfRange(from: 0, to: loc, blockCount: source.blockCount)
            }
            let b = try source.validBlock(loc, kind: .index)
            guard bitmapCount <= metadataIndexCapacity else {
                throw MetadataError.badSpaceMap(block: loc, reason: "\(root.blockCount) blocks need more than 255 index entries")
            }
            return (0..<bitmapCount).map { IndexEntry(decoding: b, at: 16 + 16 * $0) }
        case .data:
            let tree = BTreeReader(source: source, root: root.bitmapRoot, leafValueSize: IndexEntry.diskSize)
            var out: [IndexEntry] = []
            try tree.forEachEntry { key, node, i in
                guard key == UInt64(out.count) else {
                    throw MetadataError.badSpaceMap(block: node.location, reason: "index key \(key) where \(out.count) was expected")
                }
                out.append(IndexEntry(decoding: Array(node.valueBytes(i)), at: 0))
            }
            guard out.count == bitmapCount else {
                throw MetadataError.badSpaceMap(block: root.bitmapRoot, reason: "\(out.count) index entries for \(bitmapCount) bitmaps")
            }
            return out
        }
    }

    /// Reads and validates one bitmap block.
    public func bitmap(_ entry: IndexEntry) throws -> [UInt8] {
        let loc = entry.bitmapBlock
        guard loc > 0, loc < source.blockCount else {
            throw MetadataError.pointerOutOfRange(from: root.bitmapRoot, to: loc, blockCount: source.blockCount)
        }
        return try source.validBlock(loc, kind: .bitmap)
    }

    /// The 2-bit value of entry `e` in a bitmap block (lower-numbered bit is worth 2).
    @inline(__always)
    static func bitmapValue(_ b: [UInt8], _ e: Int) -> UInt32 {
        let word = b.le64(16 + 8 * (e / 32))
        let p = UInt64(2 * (e % 32))
        let hi = (word >> p) & 1, lo = (word >> (p + 1)) & 1
        return UInt32(hi << 1 | lo)
    }

    /// The overflow tree: block → count for counts ≥ 3.
    func overflowCounts() throws -> [UInt64: UInt32] {
        var out: [UInt64: UInt32] = [:]
        let tree = BTreeReader(source: source, root: root.refCountRoot, leafValueSize: 4)
        try tree.forEachEntry { k, n, i in out[k] = n.bytes.le32(n.valueOffset(i)) }
        return out
    }

    /// Every non-zero reference count, ascending by block, read one bitmap at a time (no array
    /// of every count: loading the largest metadata space map, 4,161,600 blocks, held 16 MiB of
    /// them). `overflow` is the overflow tree's contents (`overflowCounts()`).
    func forEachNonZeroCount(overflow: [UInt64: UInt32], _ body: (UInt64, UInt32) throws -> Void) throws {
        for (bi, entry) in try indexEntries().enumerated() {
            let base = UInt64(bi) * entriesPerBitmap
            let n = Int(min(root.blockCount, base + entriesPerBitmap) - base)
            let b = try bitmap(entry)
            for w in 0..<((n + 31) / 32) {
                var word = b.le64(16 + 8 * w)
                if w * 32 + 32 > n { word &= (1 << UInt64(2 * (n - w * 32))) - 1 }
                while word != 0 {
                    let e = w * 32 + word.trailingZeroBitCount / 2
                    let v = SpaceMapReader.bitmapValue(b, e)
                    word &= ~(3 << UInt64(2 * (e % 32)))
                    let blk = base + UInt64(e)
                    if v == 3 {
                        guard let c = overflow[blk] else {
                            throw MetadataError.badSpaceMap(block: entry.bitmapBlock, reason: "\(kind) block \(blk) marked overflow but missing from the overflow tree")
                        }
                        try body(blk, c)
                    } else {
                        try body(blk, v)
                    }
                }
            }
        }
    }

    /// Every block's reference count, index 0 ..< blockCount.
    func allCounts() throws -> [UInt32] {
        let entries = try indexEntries()
        let overflow = try overflowCounts()
        var counts = [UInt32](repeating: 0, count: Int(root.blockCount))
        for (bi, e) in entries.enumerated() {
            let b = try bitmap(e)
            let base = bi * Int(entriesPerBitmap)
            let end = min(Int(root.blockCount), base + Int(entriesPerBitmap))
            if base >= end { continue }
            for blk in base..<end {
                let v = SpaceMapReader.bitmapValue(b, blk - base)
                if v == 3 {
                    guard let c = overflow[UInt64(blk)] else {
                        throw MetadataError.badSpaceMap(block: e.bitmapBlock, reason: "\(kind) block \(blk) marked overflow but missing from the overflow tree")
                    }
                    counts[blk] = c
                } else {
                    counts[blk] = v
                }
            }
        }
        return counts
    }

    /// One block's reference count.
    public func count(of block: UInt64) throws -> UInt32 {
        guard block < root.blockCount else {
            throw MetadataError.badSpaceMap(block: root.bitmapRoot, reason: "\(kind) block \(block) beyond \(root.blockCount)")
        }
        let entries = try indexEntries()
        let b = try bitmap(entries[Int(block / entriesPerBitmap)])
        let v = SpaceMapReader.bitmapValue(b, Int(block % entriesPerBitmap))
        if v < 3 { return v }
        let tree = BTreeReader(source: source, root: root.refCountRoot, leafValueSize: 4)
        guard let (n, i) = try tree.find(block) else {
            throw MetadataError.badSpaceMap(block: root.refCountRoot, reason: "\(kind) block \(block) missing from the overflow tree")
        }
        return n.bytes.le32(n.valueOffset(i))
    }
}
