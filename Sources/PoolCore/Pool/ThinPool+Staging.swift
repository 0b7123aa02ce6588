/// Data written beside the transaction and mapped later: several writers (the receives `serve`
/// runs at once into one pool) write their data blocks in parallel, each into blocks set aside
/// for it, and map them in a short metadata transaction of their own.
///
/// Set-aside blocks stay free in the space maps (a commit never records them, so a crash leaks
/// nothing); keeping them from being handed out twice is the caller's job (`excluding`). They
/// were free at the last commit too, so writing them never touches committed data.
extension ThinPool {
    /// Up to `count` data blocks free in the open transaction and at the last commit, none of
    /// `excluding`, ascending where the space map allows. They stay free: the caller sets them
    /// aside until `mapWritten` maps them, or gives them up (`punchUnreferenced`).
    public func freeDataBlocks(upTo count: Int, excluding: Set<UInt64>) throws -> [UInt64] {
        try checkWritable()
        var found: [UInt64] = []
        var taken: [UInt64] = []
        // allocate() never returns a block freed in this transaction (still referenced by the
        // last commit); each block it returns is given back at once (count 0 again, and skipped by
        // allocate() for the rest of the transaction).
        while found.count < count, let b = try metadata.allocateDataBlock() {
            taken.append(b)
            if !excluding.contains(b) { found.append(b) }
        }
        for b in taken { _ = try metadata.tm.decData(b) }
        return found
    }

    /// Maps `vblock` of `dev` to data block `block`, which the caller set aside with
    /// `freeDataBlocks` and wrote (the mapping replaces any earlier one, as a write does).
    public func mapWritten(_ dev: UInt64, _ vblock: UInt64, dataBlock block: UInt64) throws {
        try checkWritable()
        guard vblock < (try virtualBlocks(of: dev)) else {
            let (at, over) = vblock.multipliedReportingOverflow(by: dataBlockSize)
            throw PoolError.beyondEnd(dev: dev, offset: over ? UInt64.max : at, size: try virtualSize(of: dev))
        }
        guard block < metadata.dataBlockCount, try metadata.dataRefCount(block) == 0 else {
            throw PoolError.invalid("data block \(block) is not free: it cannot take written data")
        }
        try noteWritten(dev)
        try metadataStep {
            try metadata.tm.incData(block)
            provisionedThisTransaction.insert(block)
            try metadata.insertMapping(dev, vblock, BlockTime(dataBlock: block, time: metadata.time))
        }
    }

    /// Punches (discards) the data of `blocks` that nothing references in the open transaction:
    /// set-aside blocks given up, so the host filesystem gets their space back.
    public func punchUnreferenced(_ blocks: [UInt64]) {
        punch(blocks.filter { $0 < metadata.dataBlockCount && (try? metadata.dataRefCount($0)) == 0 })
    }
}
