/// The in-core reference counts of one space map (metadata or data blocks).
///
/// Counts below 255 live in a byte array, larger ones in a dictionary. The
/// in-core counts are authoritative during a transaction; the on-disk bitmaps,
/// index and overflow tree are brought up to date at commit (FORMAT.md §4, §5.1).
///
/// Allocation follows FORMAT.md §4.5: a block is handed out only when it is free now
/// **and** was not freed in this transaction (so it is also free in the last
/// committed space map); the search starts after the last allocation and wraps.
struct RefCounts: Sendable {
    private var small: [UInt8]
    private var big: [UInt64: UInt32] = [:]
    /// Blocks managed.
    private(set) var blockCount: UInt64
    /// Blocks with a non-zero count.
    private(set) var allocatedCount: UInt64 = 0
    /// Blocks whose count dropped to zero in this transaction (not reusable before commit).
    private(set) var freedThisTransaction = Set<UInt64>()
    /// Bitmaps (index = block / 16320) whose counts changed since the last commit.
    internal(set) var dirtyBitmaps = Set<Int>()
    /// Bumped by every count change (the commit's fixpoint loop watches it).
    private(set) var changeCounter: UInt64 = 0
    private var cursor: UInt64 = 0
    /// Zero-count blocks per bitmap range (lets allocation skip full ranges).
    private var freeInBitmap: [UInt32] = []

    init(blockCount: UInt64) {
        self.blockCount = blockCount
        small = [UInt8](repeating: 0, count: Int(blockCount))
        freeInBitmap = RefCounts.freeCounts(from: 0, to: blockCount)
    }

    private static func freeCounts(from: UInt64, to: UInt64) -> [UInt32] {
        var out: [UInt32] = []
        var b = from
        while b < to {
            let end = min(to, (b / entriesPerBitmap + 1) * entriesPerBitmap)
            out.append(UInt32(end - b))
            b = end
        }
        return out
    }

    /// Blocks free now (count 0), including those freed in this transaction.
    var freeCount: UInt64 { blockCount - allocatedCount }
    /// Blocks that `allocate()` may hand out now.
    var allocatableCount: UInt64 { blockCount - allocatedCount - UInt64(freedThisTransaction.count) }

    subscript(_ b: UInt64) -> UInt32 {
        let s = small[Int(b)]
        return s == 255 ? big[b]! : UInt32(s)
    }

    /// Sets a count directly (loading from disk, bootstrap).
    mutating func set(_ b: UInt64, _ c: UInt32) {
        let old = self[b]
        if old == c { return }
        if c >= 255 { small[Int(b)] = 255; big[b] = c } else { small[Int(b)] = UInt8(c); big[b] = nil }
        if old == 0 {
            allocatedCount += 1
            freeInBitmap[Int(b / entriesPerBitmap)] -= 1
            if !freedThisTransaction.isEmpty { freedThisTransaction.remove(b) }
        }
        if c == 0 {
            allocatedCount -= 1
            freeInBitmap[Int(b / entriesPerBitmap)] += 1
            freedThisTransaction.insert(b)
        }
        dirtyBitmaps.insert(Int(b / entriesPerBitmap))
        changeCounter &+= 1
    }

    /// The count of block `b`; a block outside the map (a pointer read from damaged metadata) is an error.
    func count(_ b: UInt64) throws(MetadataError) -> UInt32 {
        guard b < blockCount else {
            throw .badSpaceMap(block: b, reason: "metadata block \(b) lies beyond the metadata space map (\(blockCount) blocks)")
        }
        return self[b]
    }

    /// Adds `n` references to block `b` (checked: in the map, no count beyond 2^32 - 1).
    mutating func inc(_ b: UInt64, by n: UInt32 = 1) throws(MetadataError) {
        let c = try count(b)
        guard c <= UInt32.max - n else {
            throw .badSpaceMap(block: b, reason: "reference count of block \(b) would exceed \(UInt32.max)")
        }
        set(b, c + n)
    }

    /// Decrements and returns the new count. A free block or one outside the map is damaged metadata.
    @discardableResult
    mutating func dec(_ b: UInt64) throws(MetadataError) -> UInt32 {
        let c = try count(b)
        guard c > 0 else { throw .badSpaceMap(block: b, reason: "reference count of block \(b) would drop below zero") }
        set(b, c - 1)
        return c - 1
    }

    /// A free block not freed in this transaction, now counted 1; nil when none is left.
    mutating func allocate() -> UInt64? {
        guard allocatableCount > 0 else { return nil }
        let n = blockCount
        var b = cursor < n ? cursor : 0
        var scanned: UInt64 = 0
        while scanned < n {
            // Skip the rest of a range with no zero count.
            if freeInBitmap[Int(b / entriesPerBitmap)] == 0 {
                let next = min(n, (b / entriesPerBitmap + 1) * entriesPerBitmap)
                scanned += next - b
                b = next == n ? 0 : next
                continue
            }
            if small[Int(b)] == 0 && !freedThisTransaction.contains(b) {
                set(b, 1)
                cursor = b + 1
                return b
            }
            scanned += 1
            b += 1
            if b == n { b = 0 }
        }
        return nil
    }

    /// Called after a commit: freed blocks become allocatable, nothing is dirty.
    mutating func committed() {
        freedThisTransaction.removeAll(keepingCapacity: true)
        dirtyBitmaps.removeAll(keepingCapacity: true)
    }

    /// Grows the map (resize); new blocks are free; the bitmaps covering them are dirty.
    mutating func grow(to n: UInt64) {
        guard n > blockCount else { return }
        let oldBitmaps = bitmapsCovering(blockCount)
        small.append(contentsOf: [UInt8](repeating: 0, count: Int(n - blockCount)))
        // The partial last range gains the new blocks; whole new ranges follow.
        var b = blockCount
        if b % entriesPerBitmap != 0 {
            let end = min(n, (b / entriesPerBitmap + 1) * entriesPerBitmap)
            freeInBitmap[Int(b / entriesPerBitmap)] += UInt32(end - b)
            b = end
        }
        freeInBitmap += RefCounts.freeCounts(from: b, to: n)
        let first = Int(blockCount / entriesPerBitmap)
        blockCount = n
        let newBitmaps = bitmapsCovering(n)
        for i in min(first, oldBitmaps)..<newBitmaps { dirtyBitmaps.insert(i) }
        changeCounter &+= 1
    }

    var bitmapCount: Int { bitmapsCovering(blockCount) }

    /// Renders bitmap `i` (unsealed) and its index entry's free count and hint (FORMAT.md §4.2, §4.3; kernel convention).
    func renderBitmap(_ i: Int, location: UInt64) -> (block: [UInt8], entry: IndexEntry) {
        var b = [UInt8].zeroBlock()
        let base = UInt64(i) * entriesPerBitmap
        let end = min(blockCount, base + entriesPerBitmap)
        var used: UInt32 = 0
        var firstFree: UInt32 = UInt32(end - base)
        b.withUnsafeMutableBytes { raw in
            let words = raw.baseAddress!.advanced(by: 16)
            var e = 0
            var blk = base
            while blk < end {
                let s = small[Int(blk)]
                if s != 0 {
                    used += 1
                    let v: UInt64 = s >= 3 ? 3 : UInt64(s)
                    // Lower-numbered bit carries 2, higher carries 1 (FORMAT.md §4.3).
                    let hiLo: UInt64 = (v >> 1) | ((v & 1) << 1)
                    let w = e / 32, p = UInt64(2 * (e % 32))
                    let ptr = words.advanced(by: 8 * w)
                    let cur = UInt64(littleEndian: ptr.loadUnaligned(as: UInt64.self))
                    ptr.storeBytes(of: (cur | (hiLo << p)).littleEndian, as: UInt64.self)
                } else if firstFree == UInt32(end - base) {
                    firstFree = UInt32(e)
                }
                e += 1
                blk += 1
            }
        }
        if firstFree == UInt32(end - base) && end - base < entriesPerBitmap { firstFree = UInt32(end - base) }
        let entry = IndexEntry(bitmapBlock: location, freeCount: UInt32(entriesPerBitmap) - used, noneFreeBefore: firstFree)
        return (b, entry)
    }

    /// Blocks of bitmap `i` with a count ≥ 3 (what its range of the overflow tree must hold).
    func overflowEntries(ofBitmap i: Int) -> [UInt64: UInt32] {
        let base = UInt64(i) * entriesPerBitmap
        let end = min(blockCount, base + entriesPerBitmap)
        var out: [UInt64: UInt32] = [:]
        var blk = base
        while blk < end {
            if small[Int(blk)] >= 3 { out[blk] = self[blk] }
            blk += 1
        }
        return out
    }
}
