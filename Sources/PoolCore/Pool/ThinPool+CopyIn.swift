/// Copying a large input into a thin device with periodic commits.
extension ThinPool {
    /// Bytes `copyIn` writes between two commits unless told otherwise.
    public static let defaultCommitInterval: UInt64 = 64 << 20
    /// Dirty metadata blocks (held in memory until a commit) at which `copyIn` commits early.
    public static let dirtyMetadataLimit = 4096

    /// Copies `length` bytes of `source` (from byte 0) into `dev` at `offset`. Commits after
    /// every `commitEvery` bytes, earlier when the open transaction holds `dirtyLimit`
    /// dirty metadata blocks (checked after each chunk of at most 8 MiB), and at the end, so memory stays bounded and a crash loses at
    /// most the bytes since the last commit. `onCommit(bytesDone)` runs after each commit.
    /// A range past the device's end is refused before anything is written.
    public func copyIn(from source: RandomAccessFile, length: UInt64, to dev: UInt64, offset: UInt64,
                       commitEvery: UInt64 = ThinPool.defaultCommitInterval,
                       dirtyLimit: Int = ThinPool.dirtyMetadataLimit,
                       onCommit: ((UInt64) -> Void)? = nil) throws {
        guard commitEvery > 0 else { throw PoolError.invalid("the commit interval must be at least one byte") }
        try checkWritable()
        let vsize = try virtualSize(of: dev)
        guard offset <= vsize, length <= vsize - offset else {
            throw PoolError.beyondEnd(dev: dev, offset: offset + length, size: vsize)
        }
        let bs = dataBlockSize
        let chunk = max(bs, (8 << 20) / bs * bs)
        var buf = [UInt8](repeating: 0, count: Int(chunk))
        var done: UInt64 = 0, sinceCommit: UInt64 = 0
        while done < length {
            let want = Int(min(chunk, length - done, commitEvery - sinceCommit))
            let n = try buf.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: done) }
            guard n == want else { throw PoolError.invalid("input ended early: short read at byte \(done)") }
            try buf.withUnsafeBytes { try write(dev, offset: offset + done, UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
            done += UInt64(want)
            sinceCommit += UInt64(want)
            if sinceCommit == commitEvery || metadata.tm.dirty.count >= dirtyLimit || done == length {
                try commit()
                sinceCommit = 0
                onCommit?(done)
            }
        }
    }
}
