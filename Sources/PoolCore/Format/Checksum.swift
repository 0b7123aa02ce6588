internal import CSys

/// The four kinds of checksummed metadata block; each has its own salt.
public enum BlockKind: String, Sendable, CustomStringConvertible {
    case superblock, node, index, bitmap

    /// XOR constant mixed into the CRC (on disk: `*_CSUM_XOR`).
    public var salt: UInt32 {
        switch self {
        case .superblock: return 160774
        case .node: return 121107
        case .index: return 160478
        case .bitmap: return 240779
        }
    }

    public var description: String {
        switch self {
        case .superblock: return "superblock"
        case .node: return "B-tree node"
        case .index: return "space-map index"
        case .bitmap: return "space-map bitmap"
        }
    }
}

/// CRC-32C as dm-persistent-data uses it: register starts at ~0, no final inversion.
public enum Checksum {
    /// Raw CRC-32C register over `bytes`, starting from 0xFFFFFFFF, not inverted.
    public static func raw(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        csys_crc32c_update(0xFFFF_FFFF, bytes.baseAddress, bytes.count)
    }

    public static func raw(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { raw($0) }
    }

    /// The value stored at offset 0 of a block of `kind`: CRC of bytes 4..<4096, XOR the salt
    /// (a whole block: callers hold validated or freshly built blocks).
    static func block(_ block: [UInt8], kind: BlockKind) -> UInt32 {
        block.withUnsafeBytes { raw(UnsafeRawBufferPointer(rebasing: $0[4...])) } ^ kind.salt
    }

    /// Writes the own-location field and the checksum into a block about to be written.
    /// (Public for writers outside PoolCore: the fuzz driver reseals damaged blocks.)
    public static func seal(_ block: inout [UInt8], kind: BlockKind, location: UInt64) {
        precondition(block.count == metadataBlockSize, "seal needs a whole 4096-byte block")
        block.setLE64(8, location)
        block.setLE32(0, Checksum.block(block, kind: kind))
    }
}

extension Checksum {
    /// Continues a raw CRC-32C register over `bytes` (no inversion), for chained checksums.
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        csys_crc32c_update(crc, bytes.baseAddress, bytes.count)
    }

    /// `update` from lookup tables only, never the CPU's CRC instructions (tests check one against the other).
    static func updatePortable(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        csys_crc32c_update_portable(crc, bytes.baseAddress, bytes.count)
    }
}
