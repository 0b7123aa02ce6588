/// Pool modes (write, read-only, fail), the rollback of a failed metadata step, low-space events.
extension ThinPool {
    func checkNotFailed() throws {
        if case let .fail(m) = mode { throw PoolError.failMode(reason: m) }
    }

    /// Whether metadata may change. Out of data space (the kernel's OUT_OF_DATA_SPACE) only
    /// refuses new data blocks (see `write`): discards, deletes and snapshots still work.
    func checkWritable() throws {
        switch mode {
        case .write, .readOnly(.outOfDataSpace): return
        case let .readOnly(r): throw PoolError.readOnly(reason: r.description)
        case let .fail(m): throw PoolError.failMode(reason: m)
        }
    }

    /// Puts the pool in read-only mode (changes refused until `setWriteMode`/`resize`).
    func setReadOnly() { if mode == .write { mode = .readOnly(.requested) } }

    /// Whether the metadata carries NEEDS_CHECK (set after a failed metadata operation).
    public var needsCheck: Bool { metadata.needsCheck }

    /// Leaves a requested read-only mode; refused while NEEDS_CHECK is set (FORMAT.md §6.8).
    func setWriteMode() throws {
        try checkNotFailed()
        if metadata.needsCheck { throw PoolError.readOnly(reason: PoolMode.ReadOnlyReason.needsCheck.description) }
        if case .readOnly(.requested) = mode { mode = .write }
    }

    /// Runs a metadata-changing step; on out-of-metadata-space or any failure inside it,
    /// rolls back to the last commit and goes read-only (fail if the rollback fails).
    func metadataStep<T>(_ body: () throws -> T) throws -> T {
        guard metadata.allocatableMetadataBlocks > metadataReserve else {
            try rollBack(after: PoolError.outOfMetadataSpace)
            throw PoolError.outOfMetadataSpace
        }
        do {
            return try body()
        } catch let e as PoolError where !e.isStateless {
            try rollBack(after: e)
            throw e
        } catch let e as PoolError {
            throw e
        } catch {
            try rollBack(after: error)
            throw error
        }
    }

    func rollBack(after error: any Error) throws {
        do {
            try abort()
        } catch {
            mode = .fail("rollback failed: \(error)")
            throw PoolError.failMode(reason: "rollback failed: \(error)")
        }
        if case PoolError.outOfMetadataSpace = error {
            mode = .readOnly(.outOfMetadataSpace)
            return
        }
        // A failed metadata operation (FORMAT.md §5.5): like the kernel, flag the metadata for a check
        // and go read-only; if even the flag cannot be written, fail.
        do {
            try metadata.setNeedsCheck(true)
        } catch {
            mode = .fail("setting NEEDS_CHECK failed: \(error)")
            throw PoolError.failMode(reason: "setting NEEDS_CHECK failed: \(error)")
        }
        mode = .readOnly(.failedOperation(String(describing: error)))
    }

    func raiseEvents() {
        // Like the kernel, the reserve is hidden from the free count the threshold sees.
        let mfree = metadata.freeMetadataBlocks > metadataReserve ? metadata.freeMetadataBlocks - metadataReserve : 0
        if metadataLowArmed, mfree <= metadataThreshold {
            metadataLowArmed = false
            emit(.metadataLow(freeBlocks: mfree, threshold: metadataThreshold))
        }
        let dfree = metadata.freeDataBlocks
        if dataLowArmed, dfree <= dataLowWaterMark {
            dataLowArmed = false
            emit(.dataLow(freeBlocks: dfree, lowWaterMark: dataLowWaterMark))
        }
    }

    private func emit(_ e: PoolEvent) {
        events.append(e)
        onEvent?(e)
    }
}


extension PoolError {
    /// Errors thrown before anything changed (no rollback needed).
    var isStateless: Bool {
        switch self {
        case .outOfMetadataSpace: return false
        default: return true
        }
    }
}