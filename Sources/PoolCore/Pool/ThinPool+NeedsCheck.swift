/// Clearing NEEDS_CHECK (FORMAT.md §6.8): what `thin_check --clear-needs-check-flag` does, for a pool
/// that is not open.
extension ThinPool {
    /// Checks the metadata at `metadataPath` fully (checksums, trees, every metadata and data
    /// reference count) and, only when it is clean, clears NEEDS_CHECK in its superblock.
    /// Throws the first problem found (the flag then stays set). Refused while the pool is
    /// open elsewhere. Returns the check's report (its `needsCheck` as found before clearing).
    @discardableResult
    public static func clearNeedsCheck(metadataPath: String) throws -> MetadataChecker.Report {
        let f = try RandomAccessFile(path: metadataPath, writable: true)
        defer { f.close() }
        guard f.tryLock(exclusive: true, waitingUpTo: 0.5) else {
            throw PoolError.busy(metadataPath)
        }
        let dev = try FileMetadataDevice(file: f)
        let report = try MetadataChecker(source: dev).check()
        if report.needsCheck { try PoolMetadata(device: dev, name: metadataPath).setNeedsCheck(false) }
        return report
    }
}
