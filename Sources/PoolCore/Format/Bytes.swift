/// Little-endian integer access to metadata blocks, inside PoolCore only.
///
/// Every block reaching a decoder was checked to be 4096 bytes (`BlockValidator`, and the
/// public decoders throw `MetadataError.shortBlock` otherwise), and every offset is computed
/// from validated header fields; the precondition below only catches a bug in PoolCore.
extension Array where Element == UInt8 {
    @inline(__always)
    func le32(_ offset: Int) -> UInt32 {
        precondition(offset >= 0 && offset + 4 <= count)
        return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian }
    }

    @inline(__always)
    func le64(_ offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= count)
        return withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian }
    }

    @inline(__always)
    mutating func setLE32(_ offset: Int, _ value: UInt32) {
        precondition(offset >= 0 && offset + 4 <= count)
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }

    @inline(__always)
    mutating func setLE64(_ offset: Int, _ value: UInt64) {
        precondition(offset >= 0 && offset + 8 <= count)
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self) }
    }

    /// A zero-filled metadata block.
    static func zeroBlock() -> [UInt8] { [UInt8](repeating: 0, count: metadataBlockSize) }
}

/// Size of every metadata block, in bytes.
let metadataBlockSize = 4096
