/// Little-endian fields for record bodies: a bounds-checked reader and an appending writer.
struct FieldReader {
    let bytes: [UInt8]
    var offset: Int
    let end: Int
    let sequence: UInt64

    init(_ bytes: [UInt8], from offset: Int = 0, end: Int? = nil, sequence: UInt64) {
        self.bytes = bytes
        self.offset = offset
        self.end = end ?? bytes.count
        self.sequence = sequence
    }

    private mutating func take(_ n: Int) throws(StreamError) -> Int {
        guard offset + n <= end else { throw .badRecord(sequence: sequence, reason: "body too short") }
        defer { offset += n }
        return offset
    }

    mutating func u32() throws(StreamError) -> UInt32 {
        let o = try take(4)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt32.self).littleEndian }
    }

    mutating func u64() throws(StreamError) -> UInt64 {
        let o = try take(8)
        return bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: o, as: UInt64.self).littleEndian }
    }

    mutating func digest() throws(StreamError) -> Digest128 {
        let h = try u64()
        let l = try u64()
        return Digest128(high: h, low: l)
    }

    mutating func identity() throws(StreamError) -> SnapshotIdentity {
        let d = try u64(), c = try u32(), s = try u32(), t = try u64()
        return SnapshotIdentity(device: d, creationTime: c, snapshottedTime: s, transactionID: t)
    }
}

struct FieldWriter {
    var bytes: [UInt8] = []

    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func digest(_ d: Digest128) { u64(d.high); u64(d.low) }
    mutating func identity(_ i: SnapshotIdentity) {
        u64(i.device); u32(i.creationTime); u32(i.snapshottedTime); u64(i.transactionID)
    }
    mutating func pad(to n: Int) { if bytes.count < n { bytes.append(contentsOf: repeatElement(0, count: n - bytes.count)) } }
}
