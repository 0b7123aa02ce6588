/// Mappings: lookups, the exact sharing rule, and inserting and removing mappings with their data references.
extension PoolMetadata {
    /// The mapping of `vblock` of `dev` in this transaction, or nil; `PoolError` for an unknown device.
    func mapping(_ dev: UInt64, _ vblock: UInt64) throws -> BlockTime? {
        do { return try view.mapping(of: dev, at: vblock) } catch .unknownDevice { throw PoolError.unknownDevice(dev) }
    }

    /// Whether the block mapped at `vblock` is really shared (FORMAT.md §6.4 exact rule): its data
    /// count is above 1, or a node on the path to it (bottom root, internal nodes, leaf)
    /// has a metadata count above 1. A held metadata snapshot counts as an owner.
    /// Nil when unmapped.
    func isShared(_ dev: UInt64, _ vblock: UInt64) throws -> Bool? {
        guard let m = try mapping(dev, vblock) else { return nil }
        if try tm.dataMap.count(m.dataBlock) > 1 { return true }
        // The top-level path: a shared top-level leaf shares every subtree it holds.
        var b = superblock.dataMappingRoot
        while true {
            if try tm.metadataCounts.count(b) > 1 { return true }
            let n = try tm.node(b, leafValueSize: 8)
            if n.isLeaf { break }
            b = n.value64(max(0, n.lowerBound(dev)))
        }
        b = try view.mappingRoot(of: dev)
        while true {
            if try tm.metadataCounts.count(b) > 1 { return true }
            let n = try tm.node(b, leafValueSize: 8)
            if n.isLeaf { return false }
            b = n.value64(max(0, n.lowerBound(vblock)))
        }
    }

    /// Maps `vblock` of `dev` to `mapping` (the data block must already carry this
    /// mapping's reference). Returns the replaced mapping, whose data block was decremented
    /// unless it is the same block.
    @discardableResult
    func insertMapping(_ dev: UInt64, _ vblock: UInt64, _ mapping: BlockTime) throws -> BlockTime? {
        guard try exists(dev) else { throw PoolError.unknownDevice(dev) }
        var old: BlockTime? = nil
        var v = [UInt8](repeating: 0, count: 8)
        v.setLE64(0, mapping.raw)
        try updateBottomTree(dev) { root in
            let (nr, o) = try bottom.update(root: root, key: vblock) { _ in v }
            old = o.map { BlockTime(raw: $0.le64(0)) }
            return nr
        }
        var d = try details(of: dev)
        if let old {
            if old.dataBlock != mapping.dataBlock { try tm.decData(old.dataBlock) }
        } else {
            try PoolMetadata.addMapped(&d, dev, 1)
        }
        pendingDetails[dev] = d
        touch(dev)
        return old
    }

    /// Maps the consecutive virtual blocks `first`, `first + 1`, … of `dev` to `mappings` in one
    /// pass over the bottom tree (`BTree.insertRun`); the metadata comes out as from one
    /// `insertMapping` per block in ascending order. Replaced mappings lose their data reference.
    func insertMappings(_ dev: UInt64, first: UInt64, _ mappings: [BlockTime]) throws {
        guard try exists(dev) else { throw PoolError.unknownDevice(dev) }
        guard !mappings.isEmpty else { return }
        let (_, over) = first.addingReportingOverflow(UInt64(mappings.count - 1))
        guard !over else { throw PoolError.invalid("virtual blocks \(first) + \(mappings.count) overflow") }
        var replaced: [(Int, UInt64)] = []
        try updateBottomTree(dev) { root in
            let (nr, rep) = try bottom.insertRun(root: root, first: first, values: mappings.map(\.raw))
            replaced = rep
            return nr
        }
        var d = try details(of: dev)
        try PoolMetadata.addMapped(&d, dev, mappings.count - replaced.count)
        for (i, raw) in replaced {
            let old = BlockTime(raw: raw)
            if old.dataBlock != mappings[i].dataBlock { try tm.decData(old.dataBlock) }
        }
        pendingDetails[dev] = d
        touch(dev)
    }

    /// Unmaps `vblock` of `dev`; returns the removed mapping (its data block decremented).
    @discardableResult
    func removeMapping(_ dev: UInt64, _ vblock: UInt64) throws -> BlockTime? {
        guard try mapping(dev, vblock) != nil else { return nil }
        var old: BlockTime? = nil
        try updateBottomTree(dev) { root in
            let (nr, o) = try bottom.remove(root: root, key: vblock)
            old = o.map { BlockTime(raw: $0.le64(0)) }
            return nr
        }
        if let old {
            try tm.decData(old.dataBlock)
            var d = try details(of: dev)
            try PoolMetadata.addMapped(&d, dev, -1)
            pendingDetails[dev] = d
        }
        touch(dev)
        return old
    }

    /// Replaces `dev`'s bottom-tree root in the top-level tree by the root `body` makes of it. A
    /// device with details but no top-level entry (damaged metadata) is an error, not a trap.
    private func updateBottomTree(_ dev: UInt64, _ body: (UInt64) throws -> UInt64) throws {
        let (r, _) = try top.update(root: superblock.dataMappingRoot, key: dev) { value in
            guard let value else { throw MetadataError.badDeviceDetails(device: dev, reason: "it has details but no mapping tree") }
            var out = [UInt8](repeating: 0, count: 8)
            out.setLE64(0, try body(value.le64(0)))
            return out
        }
        superblock.dataMappingRoot = r
    }

    /// Changes a device's mapped_blocks by `delta`; a count read from damaged details that would
    /// leave 0 … 2^64 - 1 is an error.
    private static func addMapped(_ d: inout DeviceDetails, _ dev: UInt64, _ delta: Int) throws(MetadataError) {
        let (n, over) = delta >= 0 ? d.mappedBlocks.addingReportingOverflow(UInt64(delta))
                                   : d.mappedBlocks.subtractingReportingOverflow(UInt64(-delta))
        guard !over else {
            throw .badDeviceDetails(device: dev, reason: "mapped_blocks \(d.mappedBlocks) cannot change by \(delta)")
        }
        d.mappedBlocks = n
    }
}
