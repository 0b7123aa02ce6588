/// Whole-block writes in two steps: the mappings first (`place`, on the pool's thread), the bytes
/// later and from any thread (`PlacedWrite.perform`). A receive places each record as it reads it
/// and lets the thread that decompressed the record write it.
extension ThinPool {
    /// Maps the whole blocks of `dev` in bytes `offset..<offset + count` as `write` would (a block
    /// provisioned in this transaction and not shared is written in place, any other gets a new data
    /// block), without writing them: their data blocks hold whatever they held until `perform`.
    ///
    /// For a caller that commits only after every `perform` returned, and aborts the transaction
    /// when one fails: a commit in between would map blocks whose bytes were never written. Out of
    /// data space is found before anything changes; out of metadata space rolls back to the last
    /// commit (as `write`).
    public func place(_ dev: UInt64, offset: UInt64, count: Int) throws -> PlacedWrite {
        try checkWritable()
        let size = try virtualSize(of: dev)
        let bs = dataBlockSize
        guard count >= 0, offset <= size, UInt64(count) <= size - offset else {
            throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(UInt64(max(count, 0))), size: size)
        }
        guard offset % bs == 0, UInt64(count) % bs == 0 else {
            throw PoolError.invalid("a placed write covers whole blocks: \(count) bytes at \(offset), blocks of \(bs)")
        }
        var extents: [PlacedWrite.Extent] = []
        if count == 0 { return PlacedWrite(file: dataFile, count: 0, extents: extents) }
        try noteWritten(dev)
        let first = offset / bs, n = UInt64(count) / bs
        let existing = try metadata.view.mappings(of: dev, in: first..<(first + n))
        let snapTime = try metadata.details(of: dev).snapshottedTime
        // The data block each virtual block keeps (written in place), by index; nil: a new one.
        var keep = [UInt64?](repeating: nil, count: Int(n))
        for e in existing where canWriteInPlace(e.mapping, snapTime) { keep[Int(e.vblock - first)] = e.mapping.dataBlock }
        let need = UInt64(keep.lazy.filter { $0 == nil }.count)
        if need > metadata.allocatableDataBlocks {
            mode = .readOnly(.outOfDataSpace)
            raiseEvents()
            throw PoolError.outOfDataSpace
        }
        func add(_ data: UInt64, at index: Int) {
            let src = index * Int(bs)
            if let last = extents.last, last.source + last.count == src, last.data + UInt64(last.count) == data * bs {
                extents[extents.count - 1].count += Int(bs)
            } else {
                extents.append(PlacedWrite.Extent(source: src, data: data * bs, count: Int(bs)))
            }
        }
        var i = 0
        while i < Int(n) {
            if let d = keep[i] { add(d, at: i); i += 1; continue }
            var j = i + 1
            while j < Int(n), keep[j] == nil, j - i < ThinPool.maxRun { j += 1 }
            let blocks = try mapNewBlocks(dev, first: first + UInt64(i), count: j - i)
            for (k, d) in blocks.enumerated() { add(d, at: i + k) }
            i = j
        }
        raiseEvents()
        return PlacedWrite(file: dataFile, count: count, extents: extents)
    }

    /// Allocates `count` new data blocks and maps them at `first`, `first + 1`, … in one B-tree pass.
    private func mapNewBlocks(_ dev: UInt64, first: UInt64, count: Int) throws -> [UInt64] {
        try metadataStep {
            let blocks = try allocateDataBlocks(count)
            for d in blocks { provisionedThisTransaction.insert(d) }
            let t = metadata.time
            try metadata.insertMappings(dev, first: first, blocks.map { BlockTime(dataBlock: $0, time: t) })
            return blocks
        }
    }
}

/// Where the bytes of a placed write go (`ThinPool.place`): write them with `perform`, from any thread.
public struct PlacedWrite: Sendable {
    /// `count` bytes from byte `source` of the write go to byte `data` of the data device.
    public struct Extent: Sendable, Equatable {
        public var source: Int
        public var data: UInt64
        public var count: Int
    }

    let file: RandomAccessFile
    /// The write's size in bytes.
    public let count: Int
    /// In the write's order; consecutive data blocks are one extent.
    public let extents: [Extent]

    /// Writes `bytes` (the write's `count` bytes) where they were placed, and starts their
    /// writeback so that the commit's data sync waits for little. Placed writes from several threads
    /// take turns (`RandomAccessFile.writeInTurn`).
    public func perform(_ bytes: UnsafeRawBufferPointer) throws {
        guard bytes.count == count else {
            throw PoolError.invalid("a placed write of \(count) bytes was given \(bytes.count)")
        }
        for e in extents {
            try file.writeInTurn(UnsafeRawBufferPointer(rebasing: bytes[e.source..<(e.source + e.count)]), at: e.data)
            file.startWriteback(offset: e.data, length: UInt64(e.count))
        }
    }
}
