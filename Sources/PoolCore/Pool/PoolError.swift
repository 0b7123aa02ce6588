/// Why a pool operation was refused. One clear line each; nothing was changed when thrown
/// before an operation started (see each case).
public enum PoolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No free data block: the pool switched to read-only; `resize(dataBlocks:)` brings it back.
    case outOfDataSpace
    /// No free metadata block: the transaction was rolled back and the pool is read-only.
    case outOfMetadataSpace
    /// The pool refuses changes (`reason` says why).
    case readOnly(reason: String)
    /// The pool is in fail mode.
    case failMode(reason: String)
    case deviceExists(UInt64)
    case unknownDevice(UInt64)
    /// An I/O range is past the end of a thin device.
    case beyondEnd(dev: UInt64, offset: UInt64, size: UInt64)
    case metadataSnapshotHeld(UInt64)
    case noMetadataSnapshot
    /// The metadata device holds no superblock (format it first).
    case unformatted(String)
    case invalid(String)
    /// Another process holds the pool (its metadata file is locked): try again later.
    case busy(String)

    public var description: String {
        switch self {
        case .outOfDataSpace:
            return "pool out of data space: no free data block (pool is now read-only; grow it with pool resize --data-size)"
        case .outOfMetadataSpace:
            return "pool out of metadata space: the open transaction was rolled back to the last commit (pool is now read-only; grow it with pool resize --metadata-size)"
        case let .readOnly(reason):
            return "pool is read-only (\(reason)): change refused"
        case let .failMode(reason):
            return "pool is in fail mode (\(reason)): operation refused"
        case let .deviceExists(id):
            return "thin device \(id) already exists"
        case let .unknownDevice(id):
            return "thin device \(id) not found in the pool"
        case let .beyondEnd(dev, offset, size):
            return "thin device \(dev): offset \(offset) is beyond its end (\(size) bytes)"
        case let .metadataSnapshotHeld(b):
            return "a metadata snapshot is already held (block \(b)); release it first"
        case .noMetadataSnapshot:
            return "no metadata snapshot is held"
        case let .unformatted(path):
            return "\(path): the metadata device is not formatted (create the pool first)"
        case let .invalid(msg):
            return msg
        case let .busy(path):
            return "\(path): the pool is in use by another process"
        }
    }
}

extension UInt64 {
    /// `self + other`, or `UInt64.max` when that overflows (for naming where a range ends in an error).
    public func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, over) = addingReportingOverflow(other)
        return over ? .max : sum
    }

    /// `self * other`, or `UInt64.max` when that overflows (progress totals from numbers a stream's header gives).
    public func saturatingMultiplied(by other: UInt64) -> UInt64 {
        let (product, over) = multipliedReportingOverflow(by: other)
        return over ? .max : product
    }
}
