/// The first record: what the stream is and what it applies to (docs/STREAM.md, "Header").
public struct StreamHeader: Equatable, Sendable, Codable {
    /// Data block size of the sending pool, in bytes.
    public var blockSize: UInt32
    /// Size of the target device, in bytes.
    public var virtualSize: UInt64
    /// zstd level the sender used (informational).
    public var level: Int32
    /// Raw bytes one data record holds at most; bounds the receiver's memory.
    public var maxRecordRaw: UInt32
    /// Random per send; ties a resumed stream to the interrupted one.
    public var streamID: Digest128
    /// UUID of the sending pool's superblock (all zero for pools without one).
    public var sourcePool: Digest128
    public var target: SnapshotIdentity
    /// For an incremental stream: the snapshot it applies onto.
    public var base: SnapshotIdentity?
    /// For an incremental stream: the content digest of the base (ContentDigest).
    public var baseFingerprint: Digest128
    /// 0 for a whole stream; N when this stream resumes an interrupted one at record N.
    public var resumeSequence: UInt64
    /// Blocks the sender expects to carry (data + zero), for progress estimates only.
    public var expectedBlocks: UInt64
    /// Set for an encrypted stream (format version 2): which key, and the sender run's nonce salt.
    public var encryption: StreamEncryption?
    /// What an unmapped block of the target reads as (header flag bit 2): false, zeros; true, the bytes
    /// of the target's external origin at the same offset. Blocks a full stream does not name and
    /// discarded blocks are unmapped; zero records always mean zeros.
    public var readsOrigin: Bool

    public static let bodySize = 160
    /// Body of the sealed header record of an encrypted stream (before sealing).
    static let sealedBodySize = 96

    public init(blockSize: UInt32, virtualSize: UInt64, level: Int32 = 3, maxRecordRaw: UInt32? = nil,
                streamID: Digest128, sourcePool: Digest128, target: SnapshotIdentity,
                base: SnapshotIdentity? = nil, baseFingerprint: Digest128 = .zero,
                resumeSequence: UInt64 = 0, expectedBlocks: UInt64 = 0, readsOrigin: Bool = false) {
        self.blockSize = blockSize
        self.virtualSize = virtualSize
        self.level = level
        self.maxRecordRaw = maxRecordRaw ?? UInt32(StreamFormat.maxRecordRaw(blockSize: blockSize))
        self.streamID = streamID
        self.sourcePool = sourcePool
        self.target = target
        self.base = base
        self.baseFingerprint = baseFingerprint
        self.resumeSequence = resumeSequence
        self.expectedBlocks = expectedBlocks
        self.readsOrigin = readsOrigin
    }

    private enum CodingKeys: String, CodingKey {
        case blockSize, virtualSize, level, maxRecordRaw, streamID, sourcePool, target, base, baseFingerprint
        case resumeSequence, expectedBlocks, readsOrigin, encryption
    }

    /// Decodes a header kept in a receipt; one written before `readsOrigin` existed reads zeros.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        blockSize = try c.decode(UInt32.self, forKey: .blockSize)
        virtualSize = try c.decode(UInt64.self, forKey: .virtualSize)
        level = try c.decode(Int32.self, forKey: .level)
        maxRecordRaw = try c.decode(UInt32.self, forKey: .maxRecordRaw)
        streamID = try c.decode(Digest128.self, forKey: .streamID)
        sourcePool = try c.decode(Digest128.self, forKey: .sourcePool)
        target = try c.decode(SnapshotIdentity.self, forKey: .target)
        base = try c.decodeIfPresent(SnapshotIdentity.self, forKey: .base)
        baseFingerprint = try c.decode(Digest128.self, forKey: .baseFingerprint)
        resumeSequence = try c.decode(UInt64.self, forKey: .resumeSequence)
        expectedBlocks = try c.decode(UInt64.self, forKey: .expectedBlocks)
        readsOrigin = try c.decodeIfPresent(Bool.self, forKey: .readsOrigin) ?? false
        encryption = try c.decodeIfPresent(StreamEncryption.self, forKey: .encryption)
    }

    public var isIncremental: Bool { base != nil }
    public var isEncrypted: Bool { encryption != nil }
    /// Whole blocks of the target (the last one may be partial on a device whose size is not a multiple).
    /// Virtual size in whole blocks, rounded up (no overflow for any size a header may carry).
    public var blockCount: UInt64 {
        virtualSize / UInt64(blockSize) + (virtualSize % UInt64(blockSize) == 0 ? 0 : 1)
    }

    func encode() -> [UInt8] {
        var w = FieldWriter()
        w.u32(encryption == nil ? StreamFormat.version : StreamFormat.encryptedVersion)
        w.u32(blockSize)
        w.u64(virtualSize)
        w.u32((base != nil ? 1 : 0) | (resumeSequence != 0 ? 2 : 0) | (readsOrigin ? 4 : 0))
        w.u32(UInt32(bitPattern: level))
        w.u32(maxRecordRaw)
        if let e = encryption {
            // Version 2: the identities travel in the sealed header record; the key's parameters take their place.
            switch e.derivation {
            case .keyFile:
                w.u32(1); w.digest(streamID); w.digest(e.keyID)
                w.pad(to: 96)
            case let .argon2id(salt, ops, mem):
                w.u32(2); w.digest(streamID); w.digest(e.keyID)
                w.digest(Digest128(bytes: salt)); w.u64(ops); w.u64(mem)
            }
            w.pad(to: 128)
            w.u64(resumeSequence)
            w.u64(expectedBlocks)
            w.digest(e.nonceSalt)
            return w.bytes
        }
        w.u32(0)
        w.digest(streamID)
        w.digest(sourcePool)
        w.identity(target)
        w.identity(base ?? .none)
        w.digest(baseFingerprint)
        w.u64(resumeSequence)
        w.u64(expectedBlocks)
        w.pad(to: Self.bodySize)
        return w.bytes
    }

    /// The header as every record's associated data covers it: without the fields a resumed stream changes.
    func canonicalBody() -> [UInt8] {
        var h = self
        h.resumeSequence = 0
        h.encryption?.nonceSalt = .zero
        return h.encode()
    }

    /// The sealed header record's body: the identities a version 2 header leaves out.
    func encodeSealed() -> [UInt8] {
        var w = FieldWriter()
        w.digest(sourcePool)
        w.identity(target)
        w.identity(base ?? .none)
        w.digest(baseFingerprint)
        w.pad(to: Self.sealedBodySize)
        return w.bytes
    }

    /// Fills in the identities from an opened sealed header record.
    mutating func decodeSealed(_ body: [UInt8], sequence: UInt64) throws(StreamError) {
        var r = FieldReader(body, sequence: sequence)
        guard body.count == Self.sealedBodySize else { throw .badRecord(sequence: sequence, reason: "sealed header of \(body.count) bytes") }
        sourcePool = try r.digest()
        target = try r.identity()
        let b = try r.identity()
        if base != nil { base = b }
        baseFingerprint = try r.digest()
    }

    init(decoding body: [UInt8], from offset: Int, end: Int) throws(StreamError) {
        var r = FieldReader(body, from: offset, end: end, sequence: 0)
        let version = try r.u32()
        guard version == StreamFormat.version || version == StreamFormat.encryptedVersion else { throw .unsupportedVersion(version) }
        blockSize = try r.u32()
        virtualSize = try r.u64()
        let flags = try r.u32()
        level = Int32(bitPattern: try r.u32())
        maxRecordRaw = try r.u32()
        let kind = try r.u32()
        streamID = try r.digest()
        if version == StreamFormat.encryptedVersion {
            let keyID = try r.digest()
            let derivation: KeyDerivation
            switch kind {
            case 1:
                derivation = .keyFile
                _ = try r.digest(); _ = try r.u64(); _ = try r.u64()
            case 2:
                let salt = try r.digest().bytes
                let ops = try r.u64(), mem = try r.u64()
                derivation = .argon2id(salt: salt, opsLimit: ops, memLimit: mem)
            default:
                throw .badRecord(sequence: 0, reason: "unknown key kind \(kind)")
            }
            _ = try r.digest(); _ = try r.digest()
            resumeSequence = try r.u64()
            expectedBlocks = try r.u64()
            let salt = try r.digest()
            encryption = StreamEncryption(keyID: keyID, derivation: derivation, nonceSalt: salt)
            // The identities come with the sealed header record.
            sourcePool = .zero
            target = .none
            base = flags & 1 != 0 ? SnapshotIdentity.none : nil
            baseFingerprint = .zero
        } else {
            sourcePool = try r.digest()
            target = try r.identity()
            let b = try r.identity()
            base = flags & 1 != 0 ? b : nil
            baseFingerprint = try r.digest()
            resumeSequence = try r.u64()
            expectedBlocks = try r.u64()
            encryption = nil
        }
        readsOrigin = flags & 4 != 0
        // Sanity: block sizes the kernel allows are multiples of 64 KiB up to 1 GiB; accept any multiple of 4 KiB.
        guard blockSize >= 4096, blockSize % 4096 == 0, blockSize <= 1 << 30 else {
            throw .badRecord(sequence: 0, reason: "block size \(blockSize) is not a multiple of 4 KiB up to 1 GiB")
        }
        // No device is larger than 8 EiB (2^63 bytes, PoolCore's limit): every byte offset in it stays representable.
        guard virtualSize <= 1 << 63 else {
            throw .badRecord(sequence: 0, reason: "device size \(virtualSize) bytes is beyond 8 EiB")
        }
        guard maxRecordRaw >= blockSize, maxRecordRaw % blockSize == 0, maxRecordRaw <= max(64 << 20, blockSize) else {
            throw .badRecord(sequence: 0, reason: "bad record size limit \(maxRecordRaw)")
        }
        guard (flags & 2 != 0) == (resumeSequence != 0), flags & ~7 == 0 else {
            throw .badRecord(sequence: 0, reason: "bad header flags \(flags)")
        }
    }
}

/// The last record: counts and digests of everything before it (docs/STREAM.md, "Trailer").
public struct StreamTrailer: Equatable, Sendable {
    /// Records before the trailer, the header included.
    public var records: UInt64 = 0
    public var dataBlocks: UInt64 = 0
    public var zeroBlocks: UInt64 = 0
    public var discardBlocks: UInt64 = 0
    /// Uncompressed bytes of all data records.
    public var rawBytes: UInt64 = 0
    /// Compressed bytes of all data records (zstd frames).
    public var payloadBytes: UInt64 = 0
    /// Sum (mod 2^64) of XXH64(record bytes, seed: sequence) over every record before the trailer.
    public var streamDigest: UInt64 = 0
    /// Content digest of the target device (ContentDigest), when the sender knew it.
    public var targetDigest: Digest128?

    public static let bodySize = 80

    public init() {}

    func encode() -> [UInt8] {
        var w = FieldWriter()
        w.u64(records); w.u64(dataBlocks); w.u64(zeroBlocks); w.u64(discardBlocks)
        w.u64(rawBytes); w.u64(payloadBytes); w.u64(streamDigest)
        w.u32(targetDigest != nil ? 1 : 0); w.u32(0)
        w.digest(targetDigest ?? .zero)
        return w.bytes
    }

    init(decoding body: [UInt8], from offset: Int, end: Int, sequence: UInt64) throws(StreamError) {
        var r = FieldReader(body, from: offset, end: end, sequence: sequence)
        records = try r.u64(); dataBlocks = try r.u64(); zeroBlocks = try r.u64(); discardBlocks = try r.u64()
        rawBytes = try r.u64(); payloadBytes = try r.u64(); streamDigest = try r.u64()
        let flags = try r.u32()
        _ = try r.u32()
        let d = try r.digest()
        guard flags & ~1 == 0 else { throw .badRecord(sequence: sequence, reason: "bad trailer flags \(flags)") }
        targetDigest = flags & 1 != 0 ? d : nil
    }

    /// Same counts and stream digest (what a decoder checks); the target digest is checked by whoever has the content.
    func countsEqual(_ o: StreamTrailer) -> String? {
        if records != o.records { return "\(o.records) records, trailer says \(records)" }
        if dataBlocks != o.dataBlocks { return "\(o.dataBlocks) data blocks, trailer says \(dataBlocks)" }
        if zeroBlocks != o.zeroBlocks { return "\(o.zeroBlocks) zero blocks, trailer says \(zeroBlocks)" }
        if discardBlocks != o.discardBlocks { return "\(o.discardBlocks) discarded blocks, trailer says \(discardBlocks)" }
        if rawBytes != o.rawBytes || payloadBytes != o.payloadBytes { return "payload byte counts differ" }
        if streamDigest != o.streamDigest { return "stream digest differs" }
        return nil
    }
}

/// One decoded record.
public enum StreamRecord: Equatable, Sendable {
    case header(StreamHeader)
    /// `blockCount` blocks from virtual block `firstBlock`; `frame` is one zstd frame of their bytes.
    case data(firstBlock: UInt64, blockCount: UInt32, frame: [UInt8])
    /// Blocks that are all zeros in the target (no payload).
    case zero(firstBlock: UInt64, blockCount: UInt64)
    /// Blocks mapped in the base and gone from the target.
    case discard(firstBlock: UInt64, blockCount: UInt64)
    case trailer(StreamTrailer)
    /// A record of an encrypted stream read without its key (framing checked only): type, sequence, sealed body size.
    case sealed(type: UInt8, sequence: UInt64, bytes: Int)
}
