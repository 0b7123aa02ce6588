import Delta

/// An in-memory ReceivingPool with transactions: `committed` is what a reopen would see.
final class MemoryReceivingPool: ReceivingPool {
    struct Device: Equatable {
        var size: UInt64
        var blocks: [UInt64: [UInt8]] = [:]
        /// Bumped by every write or discard (stands for the mapping tree changing).
        var generation: UInt64 = 0
    }

    struct State: Equatable {
        var devices: [UInt64: Device] = [:]
        var receipts: [UInt64: Receipt] = [:]
        var transactionID: UInt64 = 0
    }

    let blockSize: Int
    private(set) var committed = State()
    private(set) var open = State()
    /// Fails the Nth write from now (crash-safety tests).
    var failWritesAfter: Int?
    var commits = 0
    /// Devices keep versions (an LVM volume): an increment onto the version a device holds replaces it.
    var versioned = false
    var keepsVersions: Bool { versioned }

    init(blockSize: Int) { self.blockSize = blockSize }

    struct Injected: Error {}

    func deviceExists(_ dev: UInt64) throws -> Bool { open.devices[dev] != nil }

    func createThin(_ dev: UInt64, virtualSize: UInt64) throws {
        precondition(open.devices[dev] == nil)
        open.devices[dev] = Device(size: virtualSize)
    }

    func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {
        guard var d = open.devices[origin] else { throw Injected() }
        d.size = virtualSize
        d.generation = 0
        d.blocks = d.blocks.filter { $0.key * UInt64(blockSize) < virtualSize }
        open.devices[dev] = d
    }

    func virtualSize(of dev: UInt64) throws -> UInt64 { open.devices[dev]!.size }

    /// Writes by byte: a partly covered block keeps the rest of its bytes (zeros when it was unmapped).
    func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {
        if let n = failWritesAfter {
            if n == 0 { throw Injected() }
            failWritesAfter = n - 1
        }
        var d = open.devices[dev]!
        precondition(offset + UInt64(bytes.count) <= d.size, "write beyond the device")
        let bs = UInt64(blockSize)
        var at = 0
        while at < bytes.count {
            let pos = offset + UInt64(at)
            let v = pos / bs, inBlock = Int(pos % bs)
            let n = min(blockSize - inBlock, bytes.count - at)
            var blk = d.blocks[v] ?? [UInt8](repeating: 0, count: blockSize)
            blk.replaceSubrange(inBlock..<inBlock + n, with: bytes[at..<at + n])
            d.blocks[v] = blk
            at += n
        }
        d.generation += 1
        open.devices[dev] = d
    }

    func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let d = open.devices[dev]!
        precondition(offset + UInt64(buffer.count) <= d.size, "read beyond the device")
        let bs = UInt64(blockSize)
        var at = 0
        while at < buffer.count {
            let pos = offset + UInt64(at)
            let v = pos / bs, inBlock = Int(pos % bs)
            let n = min(blockSize - inBlock, buffer.count - at)
            let dst = UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + n])
            if let src = d.blocks[v] {
                src[inBlock..<inBlock + n].withUnsafeBytes { dst.copyMemory(from: $0) }
            } else {
                dst.initializeMemory(as: UInt8.self, repeating: 0)
            }
            at += n
        }
    }

    /// Counts what it was asked to unmap, by whole receiver blocks (thin-stays-thin tests).
    private(set) var unmappedBlocks: UInt64 = 0

    func discard(_ dev: UInt64, bytes: Range<UInt64>) throws {
        try zeroEdges(dev, bytes) { blocks in
            var d = open.devices[dev]!
            for b in blocks { d.blocks[b] = nil }
            d.generation += 1
            open.devices[dev] = d
            unmappedBlocks += UInt64(blocks.count)
        }
    }

    /// Mapped blocks of a committed device.
    func mappedCount(_ dev: UInt64) -> Int { committed.devices[dev]!.blocks.count }

    func mappingDigest(of dev: UInt64) throws -> Digest128 {
        let d = open.devices[dev]!
        return Digest128(high: d.generation, low: UInt64(d.blocks.count))
    }

    func receipts() throws -> [UInt64: Receipt] { open.receipts }

    func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws { open.receipts[dev] = receipt }

    func commitReceive() throws {
        open.transactionID += 1
        committed = open
        commits += 1
    }

    func abortReceive() throws { open = committed }

    /// A device's bytes as committed.
    func image(_ dev: UInt64) -> [UInt8] {
        let d = committed.devices[dev]!
        var out = [UInt8](repeating: 0, count: Int(d.size))
        for (b, bytes) in d.blocks {
            let a = Int(b) * blockSize
            out.replaceSubrange(a..<min(a + blockSize, out.count), with: bytes.prefix(out.count - a))
        }
        return out
    }

    /// A local change to a device outside any receive.
    func scribble(_ dev: UInt64, block: UInt64) throws {
        let junk = [UInt8](repeating: 0xAB, count: blockSize)
        try junk.withUnsafeBytes { try write(dev, offset: block * UInt64(blockSize), $0) }
        try commitReceive()
    }
}

/// A ByteSource over bytes in memory, handing out at most `chunk` bytes a call, failing after `failAfter` bytes.
final class MemorySource: ByteSource {
    let bytes: [UInt8]
    var at = 0
    let chunk: Int
    let failAfter: Int?
    struct Cut: Error {}
    init(_ bytes: [UInt8], chunk: Int = 1 << 20, failAfter: Int? = nil) {
        self.bytes = bytes
        self.chunk = chunk
        self.failAfter = failAfter
    }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let f = failAfter, at >= f { throw Cut() }
        var n = min(buffer.count, chunk, bytes.count - at)
        if let f = failAfter { n = min(n, f - at) }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<at + n])) }
        at += n
        return n
    }
}
