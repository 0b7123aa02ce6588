/// The space maps' counts compared with the references the walk found (all at once, or window
/// by window of data bitmaps when the data references outgrow `dataRefBudget`).
extension MetadataChecker {
    /// Counts in the metadata space map against the pointers found; returns blocks in use.
    func compareMetadata(_ sm: SpaceMapReader, _ entries: [IndexEntry]) throws -> Int {
        var inUse = 0
        let over = overflow[.metadata]!
        for (bi, e) in entries.enumerated() {
            let b = try sm.bitmap(e)
            let base = UInt64(bi) * entriesPerBitmap
            let end = min(metadataLimit, base + entriesPerBitmap)
            var blk = base
            while blk < end {
                let stored = try count(b, Int(blk - base), blk, over, bitmap: e.bitmapBlock, kind: .metadata)
                let found = expectedMetadata[Int(blk)]
                if stored != found {
                    let what = roles[blk].map { " (\($0))" } ?? " (not referenced)"
                    throw MetadataError.check("block \(blk): metadata reference count \(stored) in the space map, but \(found) references found\(what)")
                }
                if stored > 0 { inUse += 1 }
                blk += 1
            }
        }
        return inUse
    }

    /// Counts in the data space map against the mappings found; returns blocks in use.
    func compareData(_ sm: SpaceMapReader) throws -> Int {
        var inUse = 0
        if !windowed {
            dataWindows = 1
            dataRefs.sort()
            var r = 0
            for bi in dataIndex.indices { inUse += try compareDataBitmap(sm, bi, dataRefs, &r) }
            return inUse
        }
        // Windows of consecutive bitmaps whose references fit the budget (at least one bitmap each).
        var first = 0
        while first < dataIndex.count {
            var last = first + 1, refs = refsPerBitmap[first]
            while last < dataIndex.count, refs + refsPerBitmap[last] <= UInt64(dataRefBudget) {
                refs += refsPerBitmap[last]
                last += 1
            }
            let lo = UInt64(first) * entriesPerBitmap, hi = min(dataLimit, UInt64(last) * entriesPerBitmap)
            var window: [UInt64] = []
            window.reserveCapacity(Int(refs))
            for leaf in dataLeaves {
                let n = try Node(decoding: source.validBlock(leaf, kind: .node), location: leaf, leafValueSize: 8)
                n.forEachEntry64 { _, v in
                    let d = v >> 24
                    if d >= lo && d < hi { window.append(d) }
                }
            }
            window.sort()
            var r = 0
            for bi in first..<last { inUse += try compareDataBitmap(sm, bi, window, &r) }
            dataWindows += 1
            first = last
        }
        return inUse
    }

    /// Compares bitmap `bi` with the sorted references `refs` from index `r` on (advanced past
    /// the bitmap's blocks); returns its blocks in use.
    private func compareDataBitmap(_ sm: SpaceMapReader, _ bi: Int, _ refs: [UInt64], _ r: inout Int) throws -> Int {
        let e = dataIndex[bi]
        let over = overflow[.data]!
        let b = try sm.bitmap(e)
        let base = UInt64(bi) * entriesPerBitmap
        let end = min(dataLimit, base + entriesPerBitmap)
        var inUse = 0
        var blk = base
        while blk < end {
            // Skip whole zero words with no reference in them.
            let e0 = Int(blk - base)
            if e0 % 32 == 0, blk + 32 <= end, b.le64(16 + 8 * (e0 / 32)) == 0,
               r == refs.count || refs[r] >= blk + 32 {
                blk += 32
                continue
            }
            var found: UInt32 = 0
            while r < refs.count, refs[r] == blk { found += 1; r += 1 }
            let stored = try count(b, e0, blk, over, bitmap: e.bitmapBlock, kind: .data)
            if stored != found {
                throw MetadataError.check("data block \(blk): reference count \(stored) in the data space map (bitmap block \(e.bitmapBlock)), but \(found) mappings in distinct leaves reference it")
            }
            if stored > 0 { inUse += 1 }
            blk += 1
        }
        return inUse
    }

    @inline(__always)
    private func count(_ b: [UInt8], _ e: Int, _ blk: UInt64, _ over: [UInt64: UInt32], bitmap: UInt64, kind: SpaceMapKind) throws -> UInt32 {
        let v = SpaceMapReader.bitmapValue(b, e)
        if v < 3 { return v }
        guard let c = over[blk] else {
            throw MetadataError.check("block \(bitmap): \(kind) block \(blk) marked as overflow (count ≥ 3) in its bitmap but missing from the overflow tree")
        }
        guard c >= 3 else {
            throw MetadataError.check("block \(bitmap): \(kind) block \(blk) has overflow count \(c) (< 3) in the overflow tree")
        }
        return c
    }
}
