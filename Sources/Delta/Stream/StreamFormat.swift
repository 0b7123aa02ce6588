/// Constants of the delta stream format (docs/STREAM.md).
public enum StreamFormat {
    /// The first 8 bytes of every stream.
    public static let magic: [UInt8] = Array("TBDELTA\u{1}".utf8)
    /// Format version written in the header; a reader refuses any other.
    public static let version: UInt32 = 1
    /// Format version of an encrypted stream (docs/STREAM.md, "Encryption").
    public static let encryptedVersion: UInt32 = 2
    /// Bytes of a record frame's head (type, flags, reserved, length, sequence, head CRC).
    public static let headSize = 20
    /// Bytes of the CRC that ends every record.
    public static let tailSize = 4
    /// Raw bytes of block data one data record carries at most (a whole number of blocks, at least one).
    public static let targetRecordRaw = 4 << 20
    /// Initial value of the CRC chain.
    public static let chainSeed: UInt32 = 0xFFFF_FFFF

    /// Largest raw payload for `blockSize`: whole blocks, at least one.
    public static func maxRecordRaw(blockSize: UInt32) -> Int {
        let b = Int(blockSize)
        return max(b, (targetRecordRaw / b) * b)
    }
}

/// Record types (on disk: the `type` byte; bit 7 marks a record a reader may skip when it does not know it).
public enum RecordType: UInt8, Sendable {
    case header = 1
    case data = 2
    case zero = 3
    case discard = 4
    case trailer = 5
    /// Version 2 only, sequence 1: the identities the encrypted header leaves out, sealed.
    case sealedHeader = 6

    public static let optionalBit: UInt8 = 0x80
}

/// 128 bits, printed as 32 hex digits (high half first).
public struct Digest128: Hashable, Sendable, Codable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    public static let zero = Digest128(high: 0, low: 0)

    public var description: String { hex16(high) + hex16(low) }

    /// Parses 32 hex digits.
    public init?(hex: String) {
        let s = Array(hex.utf8)
        guard s.count == 32, let h = UInt64(String(decoding: s[0..<16], as: UTF8.self), radix: 16),
              let l = UInt64(String(decoding: s[16..<32], as: UTF8.self), radix: 16) else { return nil }
        high = h; low = l
    }
}

func hex16(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 16 - s.count) + s
}

/// Which thin device a stream was made from, as the sender's pool knows it.
///
/// A device id can be reused after a delete; the creation time and transaction id
/// from its device details tell two devices with the same id apart.
public struct SnapshotIdentity: Hashable, Sendable, Codable, CustomStringConvertible {
    public var device: UInt64
    /// on disk (device details): `creation_time`.
    public var creationTime: UInt32
    /// on disk: `snapshotted_time`.
    public var snapshottedTime: UInt32
    /// on disk: `transaction_id`, the pool's transaction when the device was created.
    public var transactionID: UInt64

    public init(device: UInt64, creationTime: UInt32, snapshottedTime: UInt32, transactionID: UInt64) {
        self.device = device
        self.creationTime = creationTime
        self.snapshottedTime = snapshottedTime
        self.transactionID = transactionID
    }

    public static let none = SnapshotIdentity(device: 0, creationTime: 0, snapshottedTime: 0, transactionID: 0)

    public var description: String {
        "device \(device) (created at time \(creationTime), transaction \(transactionID))"
    }
}
