/// Transactions: commit, abort, the held metadata snapshot, resize.
extension ThinPool {
    /// Makes the open transaction durable: data flush, sidecar, metadata (new blocks, flush,
    /// superblock, flush), then discard passdown of blocks that ended up unreferenced.
    public func commit() throws {
        try checkNotFailed()
        if case .readOnly(.requested) = mode { return }
        guard metadata.changedThisTransaction else {
            // Sidecar-only changes (annotations, low-water mark) are saved on their own.
            if let sidecarPath,
               try PoolSidecar.load(sidecarPath).resolved(transaction: metadata.committedSuperblock.transactionID) != sidecar {
                try sidecar.save(sidecarPath)
            }
            return
        }
        // Once the metadata commit has begun, a failure (a flush that fails after the superblock
        // was written) leaves it unknown whether the new blocks are referenced on disk: the
        // rollback then must not punch them.
        var metadataCommitStarted = false
        do {
            try dataFile.sync()
            // The sidecar is saved with additions before the metadata commit and exact after
            // it (unless the first save already reads as exact), so a crash in between never
            // loses the size of a device that exists.
            // Annotations of a commit that changes the transaction id are atomic with it: saved
            // as pending (the committed ones kept beside them) and taken only if the metadata
            // holds the new id (`PoolSidecar.resolved`). Others are saved before, as additions.
            let committedTransaction = metadata.committedSuperblock.transactionID
            var saved: PoolSidecar?
            if let sidecarPath {
                var merged = try PoolSidecar.load(sidecarPath).resolved(transaction: committedTransaction)
                merged.devices.merge(sidecar.devices) { _, new in new }
                merged.dataLowWaterMark = sidecar.dataLowWaterMark
                if metadata.transactionID != committedTransaction {
                    merged.pending = .init(transaction: metadata.transactionID, annotations: sidecar.annotations ?? [:])
                } else if let a = sidecar.annotations {
                    merged.annotations = (merged.annotations ?? [:]).merging(a) { _, new in new }
                }
                try merged.save(sidecarPath)
                saved = merged
            }
            try FaultInjection.step(.commit)
            metadataCommitStarted = true
            try metadata.commit()
            // Committed: these blocks are referenced now and must never be punched by a rollback.
            provisionedThisTransaction.removeAll()
            try FaultInjection.step(.commit)
            // The file saved above already reads as the exact sidecar once the metadata holds the new
            // transaction id (every device it holds is one the pool holds, its pending annotations taken):
            // it is not written again, which saves its sync, rename and folder sync.
            if let sidecarPath, saved?.resolved(transaction: metadata.committedSuperblock.transactionID) != sidecar {
                try sidecar.save(sidecarPath)
            }
        } catch {
            if metadataCommitStarted { provisionedThisTransaction.removeAll() }
            try rollBack(after: error)
            throw error
        }
        provisionedThisTransaction.removeAll()
        writtenTokens.removeAll()
        punch(pendingPassdown.filter { (try? metadata.dataRefCount($0)) == 0 })
        pendingPassdown.removeAll()
        // The commit itself allocates (space-map blocks): the committed counts are checked too.
        raiseEvents()
        // Like the kernel, out of data space ends at a commit that finds free data blocks.
        if mode == .readOnly(.outOfDataSpace), metadata.allocatableDataBlocks > 0 { mode = .write }
    }

    /// Drops the open transaction; the pool is as it was at the last commit.
    public func abort() throws {
        try checkNotFailed()
        // Data written into blocks allocated by this transaction is unreferenced now: punch it
        // back out (a receive that hit ENOSPC on the host gives the space back).
        punch(provisionedThisTransaction)
        provisionedThisTransaction.removeAll()
        pendingPassdown.removeAll()
        writtenTokens.removeAll()
        try metadata.abort()
        sidecar = (try sidecarPath.map(PoolSidecar.load) ?? PoolSidecar()).resolved(transaction: metadata.committedSuperblock.transactionID)
    }

    /// Punches `blocks` out of the data device, a run of adjacent blocks at a time (best effort).
    func punch<Blocks: Sequence<UInt64>>(_ blocks: Blocks) {
        let sorted = blocks.sorted()
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            try? dataFile.discard(offset: sorted[i] * dataBlockSize, length: UInt64(j - i + 1) * dataBlockSize)
            i = j + 1
        }
    }

    /// Sets the userspace transaction id (compare-and-swap, FORMAT.md §5.3).
    public func setTransactionID(from old: UInt64, to new: UInt64) throws {
        try checkWritable()
        try metadataStep { try metadata.setTransactionID(from: old, to: new) }
    }

    // MARK: metadata snapshot

    /// reserve_metadata_snap (FORMAT.md §6.7): commits and pins the current trees; only one at a time.
    public func reserveMetadataSnapshot() throws {
        try checkWritable()
        if let h = heldMetadataSnapshot { throw PoolError.metadataSnapshotHeld(h) }
        try commit()
        try metadataStep { try metadata.reserveMetadataSnapshot() }
    }

    /// release_metadata_snap: drops the held snapshot and commits.
    public func releaseMetadataSnapshot() throws {
        try checkWritable()
        guard heldMetadataSnapshot != nil else { throw PoolError.noMetadataSnapshot }
        try commit()
        try metadataStep { try metadata.releaseMetadataSnapshot() }
    }

    // MARK: resize

    /// Grows the data device and/or the metadata device (sizes in bytes), takes the space
    /// into the space maps, re-arms low-space events, returns to write mode and commits.
    public func resize(dataSize: UInt64? = nil, metadataSize: UInt64? = nil) throws {
        try checkNotFailed()
        if case .readOnly(.requested) = mode { throw PoolError.readOnly(reason: "opened read-only") }
        if metadata.needsCheck { throw PoolError.readOnly(reason: PoolMode.ReadOnlyReason.needsCheck.description) }
        if let dataSize {
            let blocks = dataSize / dataBlockSize
            guard blocks >= metadata.dataBlockCount else {
                throw PoolError.invalid("data size \(dataSize) is smaller than the pool's \(metadata.dataBlockCount * dataBlockSize) bytes; shrinking is not supported")
            }
            if !dataFile.isBlockDevice { try dataFile.truncate(to: blocks * dataBlockSize) }
            else if try dataFile.size() < blocks * dataBlockSize { throw PoolError.invalid("data device holds only \(try dataFile.size()) bytes") }
            try metadata.growData(to: blocks)
            dataLowArmed = true
        }
        if let metadataSize {
            let blocks = metadataSize / 4096
            guard blocks >= metadata.metadataBlockCount else {
                throw PoolError.invalid("metadata size \(metadataSize) is smaller than the pool's; shrinking is not supported")
            }
            if let mf = metadataFile, !mf.isBlockDevice, try mf.size() < blocks * 4096 { try mf.truncate(to: blocks * 4096) }
            if let fd = metadata.device as? FileMetadataDevice { try fd.refreshSize() }
            if blocks > maxMetadataBlocks {
                warnings.append("metadata size beyond 15.875 GiB: only the first \(maxMetadataBlocks) blocks are used")
            }
            try metadata.growMetadata(to: min(blocks, metadata.device.blockCount))
            metadataLowArmed = true
        }
        if case .readOnly(let r) = mode, r == .outOfDataSpace || r == .outOfMetadataSpace { mode = .write }
        try commit()
    }
}
