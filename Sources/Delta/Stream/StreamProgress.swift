/// Where a stream stands after some records: the CRC chain, the next sequence
/// number, the running counts and digest. Encoder and decoder keep one each; a
/// receiver's checkpoint and a resume token are one.
public struct StreamProgress: Equatable, Sendable, Codable {
    public var streamID: Digest128
    /// CRC-32C register after the last record (the next record's seed).
    public var chain: UInt32
    public var nextSequence: UInt64
    /// No later record may start below this virtual block.
    public var nextBlock: UInt64
    public var records: UInt64 = 0
    public var dataBlocks: UInt64 = 0
    public var zeroBlocks: UInt64 = 0
    public var discardBlocks: UInt64 = 0
    public var rawBytes: UInt64 = 0
    public var payloadBytes: UInt64 = 0
    public var streamDigest: UInt64 = 0

    public init(streamID: Digest128) {
        self.streamID = streamID
        chain = StreamFormat.chainSeed
        nextSequence = 0
        nextBlock = 0
    }

    /// The trailer these counts call for.
    func trailer(targetDigest: Digest128?) -> StreamTrailer {
        var t = StreamTrailer()
        t.records = records; t.dataBlocks = dataBlocks; t.zeroBlocks = zeroBlocks; t.discardBlocks = discardBlocks
        t.rawBytes = rawBytes; t.payloadBytes = payloadBytes; t.streamDigest = streamDigest
        t.targetDigest = targetDigest
        return t
    }

    /// Accounts for one complete record (its bytes are `record`).
    mutating func account(_ record: UnsafeRawBufferPointer, sequence: UInt64, crc: UInt32) {
        account(recordHash: XXHash64.hash(record, seed: sequence), sequence: sequence, crc: crc)
    }

    /// Accounts for one complete record whose XXH64 (seeded with its sequence) is `recordHash`.
    mutating func account(recordHash: UInt64, sequence: UInt64, crc: UInt32) {
        chain = crc
        nextSequence = sequence + 1
        records += 1
        streamDigest &+= recordHash
    }

    /// A resume token: one printable word carrying this progress.
    public var token: String {
        let fields: [UInt64] = [nextSequence, UInt64(chain), nextBlock, records, dataBlocks, zeroBlocks, discardBlocks,
                                rawBytes, payloadBytes, streamDigest]
        return "tb1-\(streamID)-" + fields.map { String($0, radix: 16) }.joined(separator: "-")
    }

    public init?(token: String) {
        let parts = token.split(separator: "-").map(String.init)
        guard parts.count == 12, parts[0] == "tb1", let id = Digest128(hex: parts[1]) else { return nil }
        var v: [UInt64] = []
        for p in parts[2...] {
            guard let x = UInt64(p, radix: 16) else { return nil }
            v.append(x)
        }
        guard v[1] <= UInt64(UInt32.max), v[0] >= 1 else { return nil }
        streamID = id
        nextSequence = v[0]; chain = UInt32(v[1]); nextBlock = v[2]; records = v[3]; dataBlocks = v[4]
        zeroBlocks = v[5]; discardBlocks = v[6]; rawBytes = v[7]; payloadBytes = v[8]; streamDigest = v[9]
    }
}
