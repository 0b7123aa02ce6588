/// The space-map writer (FORMAT.md §4, §5.1 steps 3–4): at commit, the changed data bitmaps
/// and the in-core metadata counts go back to disk as bitmaps, the data index tree, the
/// metadata index block and the two overflow trees. The readers are `SpaceMapReader` and
/// `DataSpaceMap`; loading the metadata counts into core at open is `LoadedSpaceMap`.
extension TransactionManager {
    /// Step 3–4 of FORMAT.md §5.1 for both space maps: write back dirty bitmaps, the data index tree,
    /// both overflow trees and a new metadata index block. Returns the two space-map roots.
    func commitSpaceMaps() throws -> (data: SpaceMapRoot, metadata: SpaceMapRoot) {
        try commitDataSpaceMap()
        // Metadata space map: iterate until its own updates stop changing counts.
        if !newThisTransaction.contains(metadataIndexBlock) {
            let nb = try allocateMetadata()
            try decMetadata(metadataIndexBlock)
            metadataIndexBlock = nb
        }
        var rounds = 0
        while true {
            rounds += 1
            if rounds > 1000 { throw MetadataError.badSpaceMap(block: metadataIndexBlock, reason: "metadata space map commit does not converge") }
            let before = metadataCounts.changeCounter
            for i in metadataCounts.dirtyBitmaps.sorted() where i < metadataCounts.bitmapCount {
                while metadataBitmaps.count <= i { metadataBitmaps.append(0) }
                let old = metadataBitmaps[i]
                if old == 0 || !newThisTransaction.contains(old) {
                    let nb = try allocateMetadata()
                    if old != 0 { try decMetadata(old) }
                    metadataBitmaps[i] = nb
                }
            }
            for i in metadataCounts.dirtyBitmaps.sorted() where i < metadataCounts.bitmapCount {
                metadataOverflowRoot = try syncOverflow(root: metadataOverflowRoot, onDisk: &metadataOverflowOnDisk,
                                                        want: metadataCounts.overflowEntries(ofBitmap: i), bitmap: i)
            }
            if metadataCounts.changeCounter == before { break }
        }
        var index = [UInt8].zeroBlock()
        for i in metadataCounts.dirtyBitmaps.sorted() where i < metadataCounts.bitmapCount {
            let (block, _) = metadataCounts.renderBitmap(i, location: metadataBitmaps[i])
            put(block, at: metadataBitmaps[i])
        }
        for i in 0..<metadataCounts.bitmapCount {
            let (_, entry) = metadataCounts.renderBitmap(i, location: metadataBitmaps[i])
            entry.encode(into: &index, at: 16 + 16 * i)
        }
        put(index, at: metadataIndexBlock)
        let d = SpaceMapRoot(blockCount: dataMap.blockCount, allocatedCount: dataMap.allocatedCount,
                             bitmapRoot: dataIndexRoot, refCountRoot: dataOverflowRoot)
        let m = SpaceMapRoot(blockCount: metadataCounts.blockCount, allocatedCount: metadataCounts.allocatedCount,
                             bitmapRoot: metadataIndexBlock, refCountRoot: metadataOverflowRoot)
        return (d, m)
    }

    /// Data space map (its tree updates allocate metadata blocks, so it goes first): each changed
    /// bitmap goes to a block new in this transaction (copy on write), written straight to the
    /// device (no committed superblock reaches it, and the commit's flush covers it) so that a
    /// transaction touching every bitmap does not hold them all in memory; then its index entry
    /// and overflow entries.
    private func commitDataSpaceMap() throws {
        let index = BTree(tm: self, leafValueSize: IndexEntry.diskSize, policy: .none)
        let overflow = BTree(tm: self, leafValueSize: 4, policy: .none)
        for i in dataMap.dirtyBitmaps.sorted() where i < dataMap.bitmapCount {
            let old = dataMap.entries[i].bitmapBlock
            var loc = old
            if old == 0 || !newThisTransaction.contains(old) {
                loc = try allocateMetadata()
                if old != 0 { try decMetadata(old) }
            }
            var r = try dataMap.render(i, location: loc)
            Checksum.seal(&r.block, kind: .bitmap, location: loc)
            try device.writeBlock(loc, r.block)
            dataMap.entries[i] = r.entry
            var v = [UInt8](repeating: 0, count: IndexEntry.diskSize)
            r.entry.encode(into: &v, at: 0)
            dataIndexRoot = try index.insert(root: dataIndexRoot, key: UInt64(i), value: v)
            for k in r.overflowRemoved { dataOverflowRoot = try overflow.remove(root: dataOverflowRoot, key: k).root }
            for (k, c) in r.overflowSet {
                var cv = [UInt8](repeating: 0, count: 4)
                cv.setLE32(0, c)
                dataOverflowRoot = try overflow.insert(root: dataOverflowRoot, key: k, value: cv)
            }
        }
    }

    /// Brings the overflow tree's entries for bitmap `i` in line with `want`.
    private func syncOverflow(root: UInt64, onDisk: inout [UInt64: UInt32], want: [UInt64: UInt32], bitmap i: Int) throws -> UInt64 {
        let base = UInt64(i) * entriesPerBitmap, end = base + entriesPerBitmap
        var root = root
        let tree = BTree(tm: self, leafValueSize: 4, policy: .none)
        let stale = onDisk.keys.filter { $0 >= base && $0 < end && want[$0] == nil }.sorted()
        for k in stale {
            root = try tree.remove(root: root, key: k).root
            onDisk[k] = nil
        }
        for k in want.keys.sorted() where onDisk[k] != want[k] {
            var v = [UInt8](repeating: 0, count: 4)
            v.setLE32(0, want[k]!)
            root = try tree.insert(root: root, key: k, value: v)
            onDisk[k] = want[k]
        }
        return root
    }
}

/// One space map as read from disk: every count, the bitmap locations, the overflow tree's contents.
/// The counts go straight from each bitmap into `counts` (no transient array of every count).
struct LoadedSpaceMap {
    var counts: RefCounts
    var bitmaps: [UInt64]
    var overflow: [UInt64: UInt32]

    init(_ device: any MetadataDevice, _ root: SpaceMapRoot, _ kind: SpaceMapKind) throws {
        let reader = SpaceMapReader(source: device, root: root, kind: kind)
        bitmaps = try reader.indexEntries().map(\.bitmapBlock)
        overflow = try reader.overflowCounts()
        var loaded = RefCounts(blockCount: root.blockCount)
        try reader.forEachNonZeroCount(overflow: overflow) { b, c in loaded.set(b, c) }
        counts = loaded
    }
}
