/// Reading and writing thin devices, by block and by byte.
extension ThinPool {
    // MARK: raw data

    /// The bytes of data block `block` on the data device.
    public func readData(block: UInt64) throws -> [UInt8] {
        guard block < metadata.dataBlockCount else {
            throw PoolError.invalid("data block \(block) beyond the data device (\(metadata.dataBlockCount) blocks)")
        }
        var buf = [UInt8](repeating: 0, count: Int(dataBlockSize))
        _ = try buf.withUnsafeMutableBytes { try dataFile.read(into: $0, at: block * dataBlockSize) }
        return buf
    }

    func writeData(block: UInt64, _ bytes: UnsafeRawBufferPointer, at offset: Int = 0) throws {
        try dataFile.write(bytes, at: block * dataBlockSize + UInt64(offset))
    }

    /// What an unprovisioned block of `dev` reads as: the external origin's bytes or zeros.
    func unprovisioned(_ dev: UInt64, _ vblock: UInt64) throws -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: Int(dataBlockSize))
        if let path = originFile(of: dev) {
            let f = try origin(path)
            _ = try buf.withUnsafeMutableBytes { try f.read(into: $0, at: vblock * dataBlockSize) }
        }
        return buf
    }

    // MARK: block level

    /// Virtual block `vblock` of `dev` (a full data block; zeros or origin bytes when unprovisioned).
    public func readBlock(_ dev: UInt64, _ vblock: UInt64) throws -> [UInt8] {
        try checkNotFailed()
        guard vblock < (try virtualBlocks(of: dev)) else {
            let (at, over) = vblock.multipliedReportingOverflow(by: dataBlockSize)
            throw PoolError.beyondEnd(dev: dev, offset: over ? UInt64.max : at, size: try virtualSize(of: dev))
        }
        if let m = try metadata.mapping(dev, vblock) { return try readData(block: m.dataBlock) }
        return try unprovisioned(dev, vblock)
    }

    /// Writes a whole block (`bytes.count` == data block size): provisions on first write,
    /// copies on write when the block is (maybe) shared or was committed.
    public func writeBlock(_ dev: UInt64, _ vblock: UInt64, _ bytes: [UInt8]) throws {
        guard bytes.count == Int(dataBlockSize) else {
            throw PoolError.invalid("writeBlock needs exactly \(dataBlockSize) bytes, got \(bytes.count)")
        }
        let (offset, over) = vblock.multipliedReportingOverflow(by: dataBlockSize)
        guard !over else { throw PoolError.beyondEnd(dev: dev, offset: UInt64.max, size: try virtualSize(of: dev)) }
        try write(dev, offset: offset, bytes)
    }

    /// Unmaps virtual blocks `range` of `dev` (dropping data references); blocks whose count
    /// reaches zero are passed down (hole punched) after the next commit.
    public func discard(_ dev: UInt64, blocks range: Range<UInt64>) throws {
        try checkWritable()
        guard try metadata.exists(dev) else { throw PoolError.unknownDevice(dev) }
        let maps = try metadata.view.mappings(of: dev, in: range)
        if !maps.isEmpty { try noteWritten(dev) }
        try metadataStep {
            for (v, _) in maps {
                if let old = try metadata.removeMapping(dev, v), discardPassdown, try metadata.dataRefCount(old.dataBlock) == 0 {
                    pendingPassdown.insert(old.dataBlock)
                }
            }
        }
        raiseEvents()
    }

    // MARK: byte level

    /// Reads `count` bytes of `dev` at `offset`.
    public func read(_ dev: UInt64, offset: UInt64, count: Int) throws -> [UInt8] {
        try checkNotFailed()
        let size = try virtualSize(of: dev)
        guard offset <= size, UInt64(count) <= size - offset else { throw PoolError.beyondEnd(dev: dev, offset: offset, size: size) }
        var out = [UInt8]()
        out.reserveCapacity(count)
        let bs = dataBlockSize
        var pos = offset
        let end = offset + UInt64(count)
        while pos < end {
            let v = pos / bs, inBlock = Int(pos % bs)
            let n = Int(min(bs - UInt64(inBlock), end - pos))
            let blk: [UInt8]
            if let m = try metadata.mapping(dev, v) { blk = try readData(block: m.dataBlock) } else { blk = try unprovisioned(dev, v) }
            out.append(contentsOf: blk[inBlock..<(inBlock + n)])
            pos += UInt64(n)
        }
        return out
    }

    /// Writes `bytes` to `dev` at `offset`. Either the whole write is done or, on an error
    /// before any change (read-only, beyond the end, out of data space), nothing is.
    /// Out of metadata space rolls back to the last commit (see `PoolError`).
    public func write(_ dev: UInt64, offset: UInt64, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(dev, offset: offset, $0) }
    }

    public func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        try checkWritable()
        let size = try virtualSize(of: dev)
        guard offset <= size, UInt64(bytes.count) <= size - offset else {
            throw PoolError.beyondEnd(dev: dev, offset: offset.saturatingAdd(UInt64(bytes.count)), size: size)
        }
        if bytes.isEmpty { return }
        try noteWritten(dev)
        let bs = dataBlockSize
        let first = offset / bs, last = (offset + UInt64(bytes.count) - 1) / bs
        // Data space is checked up front so an out-of-space write changes nothing.
        let nblocks = last - first + 1
        if nblocks > metadata.allocatableDataBlocks {
            let snapTime = try metadata.details(of: dev).snapshottedTime
            var need: UInt64 = 0
            for v in first...last where !(try canWriteInPlace(try metadata.mapping(dev, v), snapTime)) { need += 1 }
            if need > metadata.allocatableDataBlocks {
                mode = .readOnly(.outOfDataSpace)
                raiseEvents()
                throw PoolError.outOfDataSpace
            }
        }
        // Whole blocks that need a new data block are gathered into runs of consecutive virtual
        // blocks, each mapped in one B-tree pass (`insertRun`); the rest goes block by block.
        let existing = try metadata.view.mappings(of: dev, in: first..<(last + 1))
        let snapTime = try metadata.details(of: dev).snapshottedTime
        var next = 0  // index into `existing`
        var run: (first: UInt64, start: Int, count: Int)? = nil
        var pos = offset
        let end = offset + UInt64(bytes.count)
        while pos < end {
            let v = pos / bs, inBlock = Int(pos % bs)
            let n = Int(min(bs - UInt64(inBlock), end - pos))
            let start = Int(pos - offset)
            while next < existing.count, existing[next].vblock < v { next += 1 }
            let m = next < existing.count && existing[next].vblock == v ? existing[next].mapping : nil
            if n == Int(bs), !canWriteInPlace(m, snapTime) {
                if let r = run, r.first + UInt64(r.count) == v, r.count < ThinPool.maxRun {
                    run!.count += 1
                } else {
                    if let r = run { try writeRun(dev, r.first, UnsafeRawBufferPointer(rebasing: bytes[r.start..<(r.start + r.count * n)])) }
                    run = (v, start, 1)
                }
            } else {
                if let r = run { try writeRun(dev, r.first, UnsafeRawBufferPointer(rebasing: bytes[r.start..<(r.start + r.count * Int(bs))])) }
                run = nil
                try writeInBlock(dev, v, inBlock, UnsafeRawBufferPointer(rebasing: bytes[start..<(start + n)]))
            }
            pos += UInt64(n)
        }
        if let r = run { try writeRun(dev, r.first, UnsafeRawBufferPointer(rebasing: bytes[r.start..<(r.start + r.count * Int(bs))])) }
        raiseEvents()
    }

    /// Blocks mapped by one B-tree pass at most (bounds the metadata blocks one step may take
    /// beyond the reserve check of `metadataStep`).
    static let maxRun = 256

    /// Writes whole blocks `bytes` to new data blocks and maps them at `first`, `first + 1`, …
    /// in one pass (`PoolMetadata.insertMappings`); contiguous data blocks take one write.
    private func writeRun(_ dev: UInt64, _ first: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        let bs = Int(dataBlockSize), count = bytes.count / bs
        let blocks = try metadataStep { try allocateDataBlocks(count) }
        // As in `writeInBlock`: a failed data write gives the blocks back (punched), the metadata stays sound.
        do {
            var j = 0
            while j < count {
                var k = j
                while k + 1 < count, blocks[k + 1] == blocks[k] + 1 { k += 1 }
                try writeData(block: blocks[j], UnsafeRawBufferPointer(rebasing: bytes[(j * bs)..<((k + 1) * bs)]))
                // The commit's data sync then waits for little: the disk writes while the caller goes on.
                dataFile.startWriteback(offset: blocks[j] * dataBlockSize, length: UInt64(k + 1 - j) * dataBlockSize)
                j = k + 1
            }
        } catch {
            for d in blocks {
                _ = try? metadata.tm.decData(d)
                try? dataFile.discard(offset: d * dataBlockSize, length: dataBlockSize)
            }
            throw error
        }
        try metadataStep {
            for d in blocks { provisionedThisTransaction.insert(d) }
            let t = metadata.time
            try metadata.insertMappings(dev, first: first, blocks.map { BlockTime(dataBlock: $0, time: t) })
        }
    }

    /// `count` new data blocks (inside a `metadataStep`); out of data space makes the pool read-only.
    func allocateDataBlocks(_ count: Int) throws -> [UInt64] {
        var blocks: [UInt64] = []
        blocks.reserveCapacity(count)
        for _ in 0..<count {
            guard let d = try metadata.allocateDataBlock() else {
                mode = .readOnly(.outOfDataSpace)
                throw PoolError.outOfDataSpace
            }
            blocks.append(d)
        }
        return blocks
    }

    /// A block may be written in place only when it was provisioned in this transaction and
    /// is not (maybe) shared; anything else is copied on write.
    func canWriteInPlace(_ m: BlockTime?, _ snapshottedTime: UInt32) -> Bool {
        guard let m else { return false }
        return provisionedThisTransaction.contains(m.dataBlock) && m.time >= snapshottedTime
    }

    private func writeInBlock(_ dev: UInt64, _ v: UInt64, _ inBlock: Int, _ part: UnsafeRawBufferPointer) throws {
        let m = try metadata.mapping(dev, v)
        let snapTime = try metadata.details(of: dev).snapshottedTime
        if let m, canWriteInPlace(m, snapTime) {
            try writeData(block: m.dataBlock, part, at: inBlock)
            return
        }
        let d = try metadataStep {
            guard let d = try metadata.allocateDataBlock() else {
                mode = .readOnly(.outOfDataSpace)
                throw PoolError.outOfDataSpace
            }
            return d
        }
        // A data write that fails (the host out of space, an I/O error) is not a metadata failure: the
        // block is given back and punched (a write may fail half way), and the metadata stays sound.
        do {
            if part.count == Int(dataBlockSize) {
                try writeData(block: d, part)
            } else {
                var blk = try m.map { try readData(block: $0.dataBlock) } ?? unprovisioned(dev, v)
                blk.withUnsafeMutableBytes { dst in
                    dst.baseAddress!.advanced(by: inBlock).copyMemory(from: part.baseAddress!, byteCount: part.count)
                }
                try blk.withUnsafeBytes { try writeData(block: d, $0) }
            }
        } catch {
            _ = try? metadata.tm.decData(d)
            try? dataFile.discard(offset: d * dataBlockSize, length: dataBlockSize)
            throw error
        }
        try metadataStep {
            provisionedThisTransaction.insert(d)
            try metadata.insertMapping(dev, v, BlockTime(dataBlock: d, time: metadata.time))
        }
    }
}
