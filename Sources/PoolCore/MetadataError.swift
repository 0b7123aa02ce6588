/// A fault found in metadata or in the device that holds it.
///
/// Every case names the block it concerns, so the command line can print one
/// line that says what is wrong and where.
public enum MetadataError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed (`call` names it, `detail` what it worked on, `errno` the reason).
    case io(call: String, errno: Int32, detail: String)
    /// The device ends before `block` (it has `blockCount` blocks).
    case truncated(block: UInt64, blockCount: UInt64)
    /// Bytes given as block `block` are `size` long, not a whole 4096-byte block.
    case shortBlock(block: UInt64, size: Int)
    /// The stored checksum of `block` is not the one computed for a `kind` block.
    case badChecksum(block: UInt64, kind: BlockKind, stored: UInt32, computed: UInt32)
    /// The block's own-location field says `found` but it was read from `block`.
    case wrongLocation(block: UInt64, kind: BlockKind, found: UInt64)
    /// The superblock magic is not dm-thin's.
    case badMagic(block: UInt64, found: UInt64)
    /// A superblock field holds a value dm-thin never writes.
    case badSuperblock(block: UInt64, reason: String)
    /// A B-tree node breaks one of the node invariants.
    case badNode(block: UInt64, reason: String)
    /// Keys of a node are not strictly ascending, or lie outside the range its parent gives.
    case keysOutOfOrder(block: UInt64, index: Int)
    /// A node is reached again while it is still on the path from the root.
    case cycle(block: UInt64)
    /// A node's value size is not the one its tree uses.
    case valueSize(block: UInt64, expected: Int, found: Int)
    /// A pointer leads outside the metadata device.
    case pointerOutOfRange(from: UInt64, to: UInt64, blockCount: UInt64)
    /// A space-map structure is inconsistent.
    case badSpaceMap(block: UInt64, reason: String)
    /// A thin device's details disagree with its mappings.
    case badDeviceDetails(device: UInt64, reason: String)
    /// No metadata snapshot is held, or not the one asked for.
    case noMetadataSnapshot
    case metadataSnapshotMismatch(asked: UInt64, held: UInt64)
    /// The device is not in the pool.
    case unknownDevice(UInt64)
    /// The metadata device is all zeros where a superblock should be.
    case unformatted
    /// A block device to be written is held open by someone else (device-mapper, a mount).
    case deviceInUse(path: String, holders: [String])
    /// A fault `pool check` found: one line naming the block, the fault and where it sits.
    case check(String)

    public var description: String {
        switch self {
        case let .io(call, errno, detail):
            return "\(call) failed on \(detail): \(String(cString: strerror(errno))) (errno \(errno))"
        case let .truncated(block, count):
            return "block \(block): beyond the end of the metadata device (\(count) blocks of 4096 bytes)"
        case let .shortBlock(block, size):
            return "block \(block): \(size) bytes where a 4096-byte block was expected"
        case let .badChecksum(block, kind, stored, computed):
            return "block \(block): bad \(kind) checksum (stored 0x\(hex(stored)), computed 0x\(hex(computed)))"
        case let .wrongLocation(block, kind, found):
            return "block \(block): \(kind) says it lives at block \(found)"
        case let .badMagic(block, found):
            return "block \(block): bad superblock magic \(found) (expected 27022010)"
        case let .badSuperblock(block, reason):
            return "block \(block): bad superblock: \(reason)"
        case let .badNode(block, reason):
            return "block \(block): bad B-tree node: \(reason)"
        case let .keysOutOfOrder(block, index):
            return "block \(block): B-tree keys out of order at entry \(index)"
        case let .cycle(block):
            return "block \(block): B-tree cycle (node reached again from below itself)"
        case let .valueSize(block, expected, found):
            return "block \(block): B-tree value size \(found) does not fit this tree (expected \(expected))"
        case let .pointerOutOfRange(from, to, count):
            return "block \(from): points to block \(to), beyond the metadata device (\(count) blocks)"
        case let .badSpaceMap(block, reason):
            return "block \(block): bad space map: \(reason)"
        case let .badDeviceDetails(device, reason):
            return "thin device \(device): bad device details: \(reason)"
        case let .check(line):
            return line
        case .noMetadataSnapshot:
            return "no current metadata snapshot"  // thin_dump 0.9.0: "no current metadata snap"
        case let .metadataSnapshotMismatch(asked, held):
            return "metadata snapshot does not match that in superblock (asked for block \(asked), held at block \(held))"
        case let .unknownDevice(id):
            return "thin device \(id) not found in the pool"
        case .unformatted:
            return "block 0: the metadata device is not formatted (all zeros)"
        case let .deviceInUse(path, holders):
            let by = holders.isEmpty ? "another program" : "device-mapper (\(holders.joined(separator: ", ")))"
            return "\(path) is in use by \(by): ThinBackup never writes a device someone else holds open; "
                + "for a live kernel pool use --dm-pool NAME (or --lv VG/LV), which asks the kernel instead"
        }
    }
}

@inline(__always)
func hex<T: BinaryInteger>(_ v: T) -> String { String(v, radix: 16) }

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
