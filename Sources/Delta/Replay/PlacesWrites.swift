public import PoolCore

/// A receiving pool whose whole-block writes can be placed first and written later from another
/// thread: a receive places each data record as it reads it, and the thread that decompressed the
/// record writes its bytes (`FramePipeline.onWorker`), so that the receiving thread neither copies
/// nor waits for them. The receive commits only after every record was written, and aborts the
/// transaction when a write fails.
public protocol PlacesWrites: ReceivingPool {
    /// Changes the mappings of `dev`'s bytes `offset..<offset + count` (whole receiver blocks, inside
    /// the device) as `write` would, and returns what writes the bytes there: callable once, from any
    /// thread, before the commit.
    func placeWrite(_ dev: UInt64, offset: UInt64, count: Int) throws -> @Sendable (UnsafeRawBufferPointer) throws -> Void
}

extension ThinPool: PlacesWrites {
    public func placeWrite(_ dev: UInt64, offset: UInt64, count: Int) throws -> @Sendable (UnsafeRawBufferPointer) throws -> Void {
        let placed = try place(dev, offset: offset, count: count)
        return { try placed.perform($0) }
    }
}
