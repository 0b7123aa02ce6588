/// The data space map of an open transaction, read from its on-disk bitmaps on demand
/// (FORMAT.md §4): no per-data-block array in memory, so a pool of 2^30 data blocks opens
/// with a few MiB. In core: the index entries (16 bytes per bitmap of 16320 blocks), the
/// free count of every bitmap, and a cache of bitmap pages.
///
/// A page changed in this transaction stays in core until the commit writes it to a new
/// block (copy on write, `TransactionManager.commitDataSpaceMap`); unchanged pages are
/// dropped when the cache is full and read again when needed. The committed bitmaps and
/// overflow tree are never written in place, so reading them from the device is always right.
///
/// Allocation follows FORMAT.md §4.5 as `RefCounts` does: a block is handed out only when its
/// count is 0 and it was not freed in this transaction; the search starts after the last
/// allocation and wraps, skipping bitmaps with nothing to hand out.
final class DataSpaceMap {
    /// One bitmap's counts: 2-bit values as on disk, counts ≥ 3 beside them.
    final class Page {
        /// 510 words of 2-bit counts (FORMAT.md §4.3); entries beyond `blockCount` are 0.
        var bits: [UInt64]
        /// Entry → count for counts ≥ 3 (their bitmap value is 3).
        var overflow: [UInt32: UInt32]
        /// The overflow entries as the committed tree holds them (set when the page first changes).
        var committedOverflow: [UInt32: UInt32]?
        /// One bit per entry freed in this transaction (not reusable before the commit).
        var freed: [UInt64]?
        var changed: Bool { committedOverflow != nil }

        init(bits: [UInt64], overflow: [UInt32: UInt32]) {
            self.bits = bits
            self.overflow = overflow
        }

        @inline(__always) func value(_ e: Int) -> UInt32 {
            let w = bits[e >> 5], p = UInt64(2 * (e & 31))
            return UInt32(((w >> p) & 1) << 1 | ((w >> (p + 1)) & 1))
        }

        @inline(__always) func count(_ e: Int) -> UInt32 {
            let v = value(e)
            return v == 3 ? overflow[UInt32(e)]! : v
        }

        @inline(__always) func setValue(_ e: Int, _ v: UInt32) {
            let p = UInt64(2 * (e & 31))
            let hiLo = UInt64(v >> 1) | (UInt64(v & 1) << 1)
            bits[e >> 5] = (bits[e >> 5] & ~(3 << p)) | (hiLo << p)
        }

        @inline(__always) func isFreed(_ e: Int) -> Bool {
            guard let f = freed else { return false }
            return f[e >> 6] & (1 << UInt64(e & 63)) != 0
        }

        func setFreed(_ e: Int, _ on: Bool) {
            if freed == nil { freed = [UInt64](repeating: 0, count: 255) }
            if on { freed![e >> 6] |= 1 << UInt64(e & 63) } else { freed![e >> 6] &= ~(1 << UInt64(e & 63)) }
        }
    }

    static let wordsPerBitmap = 510
    /// Unchanged pages kept in core (4 KiB each); changed pages are kept until the commit.
    static let cleanPageLimit = 256

    let device: any BlockReading
    private(set) var blockCount: UInt64
    /// Blocks with a non-zero count.
    private(set) var allocatedCount: UInt64 = 0
    /// Blocks freed in this transaction and still at count 0.
    private(set) var freedCount: UInt64 = 0
    /// Bumped by every count change.
    private(set) var changeCounter: UInt64 = 0
    /// Index entries as last committed (bitmap location 0: a bitmap not on disk yet, all zero).
    var entries: [IndexEntry]
    /// Root of the committed overflow tree (read from the device).
    var committedOverflowRoot: UInt64
    /// Zero counts per bitmap, in range (lets allocation skip full bitmaps).
    private var freeIn: [UInt32]
    /// Bitmaps whose counts changed (or that are new) since the last commit.
    private(set) var dirtyBitmaps = Set<Int>()
    private var pages: [Int: Page] = [:]
    private var changedPages = 0
    private var cursor: UInt64 = 0
    /// Pages read from the device (tests count them).
    private(set) var pageReads = 0

    /// The committed data space map of `root`: only its index is read now.
    init(device: any BlockReading, root: SpaceMapRoot) throws {
        self.device = device
        blockCount = root.blockCount
        committedOverflowRoot = root.refCountRoot
        let reader = SpaceMapReader(source: device, root: root, kind: .data)
        entries = try reader.indexEntries()
        freeIn = []
        freeIn.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() {
            let inRange = inRangeCount(i)
            // Full bitmaps: nr_free is exact under both conventions (FORMAT.md §4.2); the last one is counted below.
            freeIn.append(min(e.freeCount, inRange))
        }
        // Each free count is at most its bitmap's range, so this cannot underflow.
        allocatedCount = blockCount - freeIn.reduce(0) { $0 + UInt64($1) }
        if let last = entries.indices.last, inRangeCount(last) < UInt32(entriesPerBitmap) {
            _ = try page(last)  // counts its free entries exactly (and corrects allocatedCount)
        }
    }

    /// A new, empty data space map of `blockCount` blocks (formatting); every bitmap is written at the first commit.
    init(device: any BlockReading, formattingWith blockCount: UInt64) {
        self.device = device
        self.blockCount = 0
        committedOverflowRoot = 0
        entries = []
        freeIn = []
        grow(to: blockCount)
    }

    var bitmapCount: Int { bitmapsCovering(blockCount) }
    var freeCount: UInt64 { blockCount - allocatedCount }
    var allocatableCount: UInt64 { blockCount - allocatedCount - freedCount }
    /// Pages changed in this transaction (held in core until the commit).
    var changedPageCount: Int { changedPages }

    private func inRangeCount(_ i: Int) -> UInt32 {
        let base = UInt64(i) * entriesPerBitmap
        return UInt32(min(entriesPerBitmap, blockCount - base))
    }

    // MARK: pages

    /// Bitmap `i` in core, read from the device when not cached.
    func page(_ i: Int) throws -> Page {
        if let p = pages[i] { return p }
        if pages.count - changedPages >= DataSpaceMap.cleanPageLimit {
            pages = pages.filter { $0.value.changed }
        }
        let p = try readPage(i)
        pages[i] = p
        return p
    }

    /// Reads bitmap `i` and its overflow entries as committed, and fixes its free count.
    private func readPage(_ i: Int) throws -> Page {
        let loc = entries[i].bitmapBlock
        let n = Int(inRangeCount(i))
        var bits = [UInt64](repeating: 0, count: DataSpaceMap.wordsPerBitmap)
        var overflow: [UInt32: UInt32] = [:]
        if loc != 0 {
            guard loc < device.blockCount else {
                throw MetadataError.pointerOutOfRange(from: 0, to: loc, blockCount: device.blockCount)
            }
            let b = try device.validBlock(loc, kind: .bitmap)
            pageReads += 1
            var any3 = false
            for w in 0..<DataSpaceMap.wordsPerBitmap {
                var word = b.le64(16 + 8 * w)
                let first = w * 32
                if first + 32 > n { word = first >= n ? 0 : word & ((1 << UInt64(2 * (n - first))) - 1) }
                bits[w] = word
                if word & (word >> 1) & 0x5555_5555_5555_5555 != 0 { any3 = true }
            }
            if any3 {
                let base = UInt64(i) * entriesPerBitmap
                let tree = BTreeReader(source: device, root: committedOverflowRoot, leafValueSize: 4)
                try tree.forEachEntry(in: base..<(base + UInt64(n))) { k, c in overflow[UInt32(k - base)] = c }
            }
        }
        let p = Page(bits: bits, overflow: overflow)
        var zeros: UInt32 = 0
        for e in 0..<n where p.value(e) == 0 { zeros += 1 }
        for e in 0..<n where p.value(e) == 3 && p.overflow[UInt32(e)] == nil {
            throw MetadataError.badSpaceMap(block: loc, reason: "data block \(UInt64(i) * entriesPerBitmap + UInt64(e)) marked overflow but missing from the overflow tree")
        }
        if zeros != freeIn[i] {
            // The index's nr_free disagreed (or this is the last, partial bitmap): the bitmap is the truth.
            allocatedCount = allocatedCount + UInt64(freeIn[i]) - UInt64(zeros)
            freeIn[i] = zeros
        }
        return p
    }

    // MARK: counts

    func count(_ b: UInt64) throws -> UInt32 {
        guard b < blockCount else { throw MetadataError.badSpaceMap(block: b, reason: "data block \(b) beyond the data device") }
        return try page(Int(b / entriesPerBitmap)).count(Int(b % entriesPerBitmap))
    }

    /// Sets a count (the write path's only change).
    func set(_ b: UInt64, _ c: UInt32) throws {
        let i = Int(b / entriesPerBitmap), e = Int(b % entriesPerBitmap)
        let p = try page(i)
        let old = p.count(e)
        if old == c { return }
        if !p.changed {
            p.committedOverflow = p.overflow
            changedPages += 1
        }
        p.setValue(e, min(c, 3))
        p.overflow[UInt32(e)] = c >= 3 ? c : nil
        if old == 0 {
            allocatedCount += 1
            freeIn[i] -= 1
            if p.isFreed(e) { p.setFreed(e, false); freedCount -= 1 }
        }
        if c == 0 {
            allocatedCount -= 1
            freeIn[i] += 1
            p.setFreed(e, true)
            freedCount += 1
        }
        dirtyBitmaps.insert(i)
        changeCounter &+= 1
    }

    func inc(_ b: UInt64) throws {
        let c = try count(b)
        guard c < UInt32.max else { throw MetadataError.badSpaceMap(block: b, reason: "reference count of data block \(b) would exceed \(UInt32.max)") }
        try set(b, c + 1)
    }

    /// Decrements and returns the new count; a free block is an error in the metadata.
    @discardableResult
    func dec(_ b: UInt64) throws -> UInt32 {
        let c = try count(b)
        guard c > 0 else { throw MetadataError.badSpaceMap(block: b, reason: "reference count of data block \(b) would drop below zero") }
        try set(b, c - 1)
        return c - 1
    }

    /// A free block not freed in this transaction, now counted 1; nil when none is left.
    func allocate() throws -> UInt64? {
        guard allocatableCount > 0 else { return nil }
        let n = blockCount
        var b = cursor < n ? cursor : 0
        var scanned: UInt64 = 0
        while scanned < n {
            let i = Int(b / entriesPerBitmap)
            let base = UInt64(i) * entriesPerBitmap, end = min(n, base + entriesPerBitmap)
            if freeIn[i] > 0, let e = try firstAllocatable(in: page(i), from: Int(b - base), to: Int(end - base)) {
                let found = base + UInt64(e)
                try set(found, 1)
                cursor = found + 1
                return found
            }
            scanned += end - b
            b = end == n ? 0 : end
        }
        return nil
    }

    /// The first entry in `from..<to` with count 0 that was not freed in this transaction.
    private func firstAllocatable(in p: Page, from: Int, to: Int) -> Int? {
        var w = from >> 5
        while w * 32 < to {
            let word = p.bits[w]
            // A pair is zero when neither of its bits is set.
            var zero = ~(word | (word >> 1)) & 0x5555_5555_5555_5555
            if w == from >> 5 { zero &= ~((1 << UInt64(2 * (from & 31))) &- 1) }
            while zero != 0 {
                let e = w * 32 + zero.trailingZeroBitCount / 2
                if e >= to { return nil }
                if !p.isFreed(e) { return e }
                zero &= zero &- 1
            }
            w += 1
        }
        return nil
    }

    // MARK: growth and commit

    /// Grows the map (resize); new blocks are free, the bitmaps covering them dirty.
    func grow(to newCount: UInt64) {
        guard newCount > blockCount else { return }
        let first = Int(blockCount / entriesPerBitmap)
        let old = blockCount
        blockCount = newCount
        if old % entriesPerBitmap != 0 {
            let i = Int(old / entriesPerBitmap)
            freeIn[i] += UInt32(min(newCount, UInt64(i + 1) * entriesPerBitmap) - old)
        }
        while entries.count < bitmapCount {
            entries.append(IndexEntry(bitmapBlock: 0, freeCount: UInt32(entriesPerBitmap), noneFreeBefore: 0))
            freeIn.append(inRangeCount(freeIn.count))
        }
        for i in first..<bitmapCount { dirtyBitmaps.insert(i) }
        changeCounter &+= 1
    }

    /// Bitmap `i` as it stands (unsealed), its index entry at `location` (kernel convention:
    /// entries beyond the end count as free) and the overflow changes to make in the tree.
    func render(_ i: Int, location: UInt64) throws -> (block: [UInt8], entry: IndexEntry, overflowRemoved: [UInt64], overflowSet: [(UInt64, UInt32)]) {
        let p = try page(i)
        let n = Int(inRangeCount(i))
        var block = [UInt8].zeroBlock()
        for w in 0..<DataSpaceMap.wordsPerBitmap where p.bits[w] != 0 { block.setLE64(16 + 8 * w, p.bits[w]) }
        var firstFree = UInt32(n)
        for e in 0..<n where p.value(e) == 0 { firstFree = UInt32(e); break }
        let used = UInt32(n) - freeIn[i]
        let entry = IndexEntry(bitmapBlock: location, freeCount: UInt32(entriesPerBitmap) - used, noneFreeBefore: firstFree)
        let base = UInt64(i) * entriesPerBitmap
        let before = p.committedOverflow ?? p.overflow
        let removed = before.keys.filter { p.overflow[$0] == nil }.sorted().map { base + UInt64($0) }
        let set = p.overflow.filter { before[$0.key] != $0.value }.sorted { $0.key < $1.key }.map { (base + UInt64($0.key), $0.value) }
        return (block, entry, removed, set)
    }

    /// After a commit: the new index entries and overflow root are the committed ones; changed
    /// pages become clean, freed blocks allocatable.
    func committed(overflowRoot: UInt64) {
        committedOverflowRoot = overflowRoot
        for (_, p) in pages where p.changed {
            p.committedOverflow = nil
            p.freed = nil
        }
        changedPages = 0
        freedCount = 0
        dirtyBitmaps.removeAll(keepingCapacity: true)
    }
}

extension BTreeReader {
    /// Every (key, u32 value) with the key in `range`, ascending (overflow trees).
    func forEachEntry(in range: Range<UInt64>, _ body: (UInt64, UInt32) throws -> Void) throws {
        try forEachLeafEntry(in: range) { k, n, i in try body(k, n.bytes.le32(n.valueOffset(i))) }
    }
}
