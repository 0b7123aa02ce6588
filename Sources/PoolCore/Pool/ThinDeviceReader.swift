/// A thin device's bytes, rebuilt read-only from a metadata view (live or held
/// snapshot) and the pool's data device: a mapped virtual block reads its data
/// block, an unmapped one reads as zeros.
///
/// The metadata does not store a device's size, so the caller gives it.
struct ThinDeviceReader {
    public let view: MetadataView
    public let data: RandomAccessFile
    public let device: UInt64
    /// Bytes per data block (the superblock's data block size × 512).
    let blockBytes: Int

    public init(view: MetadataView, data: RandomAccessFile, device: UInt64) {
        self.view = view
        self.data = data
        self.device = device
        blockBytes = Int(view.superblock.dataBlockSize) * 512
    }

    /// Every (virtual block, data block) of the device, ascending.
    public func mappings() throws -> [(virtual: UInt64, data: UInt64)] {
        var out: [(UInt64, UInt64)] = []
        try view.forEachMapping(of: device) { v, bt in out.append((v, bt.dataBlock)) }
        return out
    }

    /// Virtual block `vblock` (a whole data block; zeros when unmapped).
    public func block(_ vblock: UInt64) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: blockBytes)
        guard let bt = try view.mappingTree(of: device).lookup64(vblock).map({ BlockTime(raw: $0) }) else { return out }
        let bs = UInt64(blockBytes)
        let (at, over) = bt.dataBlock.multipliedReportingOverflow(by: bs)
        let got = over ? 0 : try out.withUnsafeMutableBytes { try data.read(into: $0, at: at) }
        guard got == blockBytes else {
            throw DeviceReadError.dataBlockBeyondEnd(device: device, virtual: vblock, data: bt.dataBlock,
                                                     dataBlocks: try data.size() / bs)
        }
        return out
    }

    /// Streams the first `size` bytes of the device, in order, one data block
    /// (or the final partial block) per call of `body`.
    public func read(size: UInt64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let bs = UInt64(blockBytes)
        let dataBytes = try data.size()
        let maps = try mappings()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blockBytes, alignment: 4096)
        defer { buffer.deallocate() }
        var next = 0
        var offset: UInt64 = 0
        var vblock: UInt64 = 0
        while offset < size {
            let len = Int(min(bs, size - offset))
            while next < maps.count, maps[next].virtual < vblock { next += 1 }
            if next < maps.count, maps[next].virtual == vblock {
                let db = maps[next].data
                // db < dataBytes / bs: the block lies inside the data device (no overflow for any db).
                guard db < dataBytes / bs else {
                    throw DeviceReadError.dataBlockBeyondEnd(device: device, virtual: vblock, data: db,
                                                             dataBlocks: dataBytes / bs)
                }
                let got = try data.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0 ..< len]),
                                        at: db * bs)
                guard got == len else {
                    throw DeviceReadError.dataBlockBeyondEnd(device: device, virtual: vblock, data: db,
                                                             dataBlocks: dataBytes / bs)
                }
            } else {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
            }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0 ..< len]))
            offset += UInt64(len)
            vblock += 1
        }
    }
}

/// A mapping that the data device cannot satisfy.
enum DeviceReadError: Error, Equatable, Sendable, CustomStringConvertible {
    case dataBlockBeyondEnd(device: UInt64, virtual: UInt64, data: UInt64, dataBlocks: UInt64)

    public var description: String {
        switch self {
        case let .dataBlockBeyondEnd(dev, v, d, n):
            return "thin device \(dev) block \(v): maps data block \(d), beyond the data device (\(n) blocks)"
        }
    }
}
