/// The pool's operating mode (FORMAT.md §6.8).
public enum PoolMode: Equatable, Sendable, CustomStringConvertible {
    /// Normal operation.
    case write
    /// Changes refused; reads work. `resize` leaves it when the reason was lack of space;
    /// after a failed metadata operation (NEEDS_CHECK set) only a clean check that clears
    /// the flag and a reopen bring the pool back to write mode.
    case readOnly(ReadOnlyReason)
    /// Everything refused except close (a rollback itself failed).
    case fail(String)

    public enum ReadOnlyReason: Equatable, Sendable, CustomStringConvertible {
        /// No free data block for a write (the kernel's OUT_OF_DATA_SPACE): only writes that
        /// need new data blocks are refused; discards, deletes and snapshots still work, and
        /// the next commit that finds free data blocks (after a discard or a resize) returns
        /// to write mode.
        case outOfDataSpace
        /// Out of metadata space: every change refused until the metadata device grows.
        case outOfMetadataSpace
        case requested
        /// A metadata operation failed in this session: rolled back, NEEDS_CHECK set (FORMAT.md §5.5).
        case failedOperation(String)
        /// Opened with NEEDS_CHECK set in the superblock: write mode is refused until the
        /// flag is cleared after a clean check (FORMAT.md §6.8).
        case needsCheck
        public var description: String {
            switch self {
            case .outOfDataSpace: return "out of data space"
            case .outOfMetadataSpace: return "out of metadata space"
            case .requested: return "opened read-only"
            case let .failedOperation(m):
                return "a metadata operation failed and was rolled back to the last commit, NEEDS_CHECK is set: \(m)"
            case .needsCheck:
                return "the metadata has NEEDS_CHECK set; check it and clear the flag with `thin-backup pool check --metadata M --clear-needs-check` or thin_check --clear-needs-check-flag"
            }
        }
    }

    public var description: String {
        switch self {
        case .write: return "rw"
        case let .readOnly(r): return "ro (\(r))"
        case let .fail(m): return "fail (\(m))"
        }
    }
}

/// A low-space event (FORMAT.md §6.9), raised once when free space crosses the threshold and
/// re-armed by a resize.
public enum PoolEvent: Equatable, Sendable, CustomStringConvertible {
    /// Free metadata blocks ≤ threshold = min(1024 blocks, metadata blocks / 4).
    case metadataLow(freeBlocks: UInt64, threshold: UInt64)
    /// Free data blocks ≤ the data low-water mark.
    case dataLow(freeBlocks: UInt64, lowWaterMark: UInt64)

    public var description: String {
        switch self {
        case let .metadataLow(f, t):
            return "metadata space low: \(f) free metadata blocks (threshold \(t))"
        case let .dataLow(f, m):
            return "data space low: \(f) free data blocks (low-water mark \(m))"
        }
    }
}
