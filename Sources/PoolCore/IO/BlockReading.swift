/// Anything that hands out metadata blocks by number: a device, or a transaction
/// (`TransactionManager`, whose changed blocks are not on disk yet).
public protocol BlockReading: AnyObject {
    var blockCount: UInt64 { get }
    /// The raw bytes of `block`, unchecked.
    func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8]
    /// `block` as a block of `kind`, checked by `BlockValidator` when it comes from a device.
    /// Every reader (B-trees, space maps, superblocks) reads through this.
    func validBlock(_ block: UInt64, kind: BlockKind) throws(MetadataError) -> [UInt8]
}

extension BlockReading {
    public func validBlock(_ block: UInt64, kind: BlockKind) throws(MetadataError) -> [UInt8] {
        try BlockValidator.check(readBlock(block), kind: kind, location: block)
    }
}

/// Counts the blocks read through it (tests and benchmarks of the diff's cost).
public final class CountingReader: BlockReading, @unchecked Sendable {
    public let base: any BlockReading
    public private(set) var reads = 0
    public private(set) var distinct = Set<UInt64>()
    public init(_ base: any BlockReading) { self.base = base }
    public var blockCount: UInt64 { base.blockCount }
    public func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] {
        reads += 1
        distinct.insert(block)
        return try base.readBlock(block)
    }
    public func validBlock(_ block: UInt64, kind: BlockKind) throws(MetadataError) -> [UInt8] {
        reads += 1
        distinct.insert(block)
        return try base.validBlock(block, kind: kind)
    }
}
