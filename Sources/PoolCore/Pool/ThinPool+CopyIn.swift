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
        let vsize = try virtualSize(of: dev)
        guard offset <= vsize, length <= vsize - offset else {
            throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(length), size: vsize)
        }
        var at: UInt64 = 0
        try copyIn(length: length, to: dev, offset: offset, commitEvery: commitEvery, dirtyLimit: dirtyLimit, onCommit: onCommit) { buf in
            let n = try source.read(into: buf, at: at)
            guard n == buf.count else { throw PoolError.invalid("input ended early: short read at byte \(at)") }
            at += UInt64(n)
            return n
        }
    }

    /// Copies what `read` yields (sequentially, until it returns 0: a pipe, FIFO or character
    /// device) into `dev` at `offset`, with the same commits. With `length` nil the input runs
    /// to its end; input reaching past the device's end is refused before that chunk is written
    /// (chunks committed before stay). Returns the bytes copied.
    @discardableResult
    public func copyIn(length: UInt64? = nil, to dev: UInt64, offset: UInt64,
                       commitEvery: UInt64 = ThinPool.defaultCommitInterval,
                       dirtyLimit: Int = ThinPool.dirtyMetadataLimit,
                       onCommit: ((UInt64) -> Void)? = nil,
                       read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> UInt64 {
        guard commitEvery > 0 else { throw PoolError.invalid("the commit interval must be at least one byte") }
        try checkWritable()
        let vsize = try virtualSize(of: dev)
        guard offset <= vsize else { throw PoolError.beyondEnd(dev: dev, offset: offset, size: vsize) }
        let room = vsize - offset
        if let length, length > room { throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(length), size: vsize) }
        let limit = length ?? room
        let bs = dataBlockSize
        let chunk = max(bs, (8 << 20) / bs * bs)
        var buf = [UInt8](repeating: 0, count: Int(chunk))
        var done: UInt64 = 0, sinceCommit: UInt64 = 0
        var ended = false
        while !ended {
            // Fill a chunk (a pipe returns short reads); one byte more than the room left tells overflow.
            let want = Int(min(chunk, commitEvery - sinceCommit, limit - done + (length == nil ? 1 : 0)))
            var have = 0
            while have < want {
                let n = try buf.withUnsafeMutableBytes { try read(UnsafeMutableRawBufferPointer(rebasing: $0[have..<want])) }
                if n == 0 { ended = true; break }
                have += n
            }
            if length != nil && done + UInt64(have) == limit { ended = true }
            guard UInt64(have) <= limit - done else {
                throw PoolError.invalid("the input goes on past the end of thin device \(dev) (\(vsize) bytes) from offset \(offset): "
                                        + "\(done) bytes were written and committed, the rest refused")
            }
            if have > 0 {
                try buf.withUnsafeBytes { try write(dev, offset: offset + done, UnsafeRawBufferPointer(rebasing: $0[0..<have])) }
            }
            done += UInt64(have)
            sinceCommit += UInt64(have)
            if sinceCommit == commitEvery || metadata.tm.pendingBlockCount >= dirtyLimit || (ended && sinceCommit > 0) {
                try commit()
                sinceCommit = 0
                onCommit?(done)
            }
        }
        if let length, done < length { throw PoolError.invalid("input ended early: short read at byte \(done)") }
        return done
    }
}
