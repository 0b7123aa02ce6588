/// The one check a metadata block read from a device passes before anything decodes it
/// (FORMAT.md §1.1, §2): a whole block, the checksum of its kind, its own location.
/// Decoders (`Node`, `Superblock`, the space-map readers) check only their structure.
enum BlockValidator {
    /// `block` as read from `location`, or the first thing wrong with it.
    @discardableResult
    public static func check(_ block: [UInt8], kind: BlockKind, location: UInt64) throws(MetadataError) -> [UInt8] {
        guard block.count == metadataBlockSize else { throw .shortBlock(block: location, size: block.count) }
        if kind == .superblock, location == 0, block.allSatisfy({ $0 == 0 }) { throw .unformatted }
        let stored = block.le32(0)
        let computed = Checksum.block(block, kind: kind)
        if stored != computed {
            throw .badChecksum(block: location, kind: kind, stored: stored, computed: computed)
        }
        let found = block.le64(8)
        if found != location {
            throw .wrongLocation(block: location, kind: kind, found: found)
        }
        return block
    }
}
