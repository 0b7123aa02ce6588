internal import PoolCore

/// Turns records into stream bytes. A pure state machine: no I/O; each call
/// returns the bytes of one record (the first also carries the magic).
///
/// Records must come in ascending, non-overlapping block order; the encoder
/// traps a caller that breaks this (a bug), since the decoder would refuse it.
public struct StreamEncoder: Sendable {
    public let header: StreamHeader
    public private(set) var progress: StreamProgress
    private var started = false
    private var resumeAt: StreamProgress?
    /// Set for an encrypted stream (format version 2): every record but the header is sealed.
    private let cipher: RecordCipher?

    /// A whole stream; with `key`, an encrypted one.
    public init(header: StreamHeader, key: StreamKey? = nil) {
        precondition(header.resumeSequence == 0)
        var h = header
        h.encryption = key.map { StreamEncryption(key: $0, nonceSalt: Digest128(bytes: Sodium.randomBytes(16))) }
        self.header = h
        cipher = key.map { RecordCipher(key: $0, header: h) }
        progress = StreamProgress(streamID: header.streamID)
    }

    /// The rest of an interrupted stream, from the point `resume` (a receiver's resume token).
    /// An encrypted one gets a new nonce salt: its records are sealed under nonces never used before.
    public init(header: StreamHeader, resumingAt resume: StreamProgress, key: StreamKey? = nil) {
        var h = header
        h.resumeSequence = resume.nextSequence
        h.streamID = resume.streamID
        h.encryption = key.map { StreamEncryption(key: $0, nonceSalt: Digest128(bytes: Sodium.randomBytes(16))) }
        self.header = h
        cipher = key.map { RecordCipher(key: $0, header: h) }
        progress = StreamProgress(streamID: resume.streamID)
        resumeAt = resume
    }

    /// Sequence number of the first record after the header (and, encrypted, the sealed header).
    public var firstRecordSequence: UInt64 { cipher == nil ? 1 : 2 }

    /// Magic and header record. Call first, once.
    public mutating func start() -> [UInt8] {
        precondition(!started)
        started = true
        var out = StreamFormat.magic
        progress.chain = StreamFormat.magic.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
        out.append(contentsOf: frame(.header, header.encode()))
        if cipher != nil {
            out.append(contentsOf: frame(.sealedHeader, header.encodeSealed()))
        }
        if let r = resumeAt {
            progress = r  // the header of a resumed stream is outside the chain it continues
        }
        return out
    }

    /// A data record: `blockCount` blocks from `firstBlock`, already compressed into `frame` (one zstd frame of `rawBytes`).
    public mutating func data(firstBlock: UInt64, blockCount: UInt32, rawBytes: Int, frame payload: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(started && blockCount > 0 && firstBlock >= progress.nextBlock)
        var w = FieldWriter()
        w.bytes.reserveCapacity(16 + payload.count)
        w.u64(firstBlock); w.u32(blockCount); w.u32(0)
        w.bytes.append(contentsOf: payload)
        progress.nextBlock = firstBlock + UInt64(blockCount)
        progress.dataBlocks += UInt64(blockCount)
        progress.rawBytes += UInt64(rawBytes)
        progress.payloadBytes += UInt64(payload.count)
        return frame(.data, w.bytes)
    }

    /// The same record as `data`, in three pieces so that the frame is never copied: the caller
    /// writes `head` (record head and body fields), then `frame` itself, then `tail` (the CRC).
    /// Clear streams only (an encrypted record is sealed whole).
    public mutating func dataPieces(firstBlock: UInt64, blockCount: UInt32, rawBytes: Int,
                                    frame payload: UnsafeRawBufferPointer) -> (head: [UInt8], tail: [UInt8]) {
        precondition(started && cipher == nil && blockCount > 0 && firstBlock >= progress.nextBlock)
        let seq = progress.nextSequence
        var head = FieldWriter()
        head.bytes.reserveCapacity(StreamFormat.headSize + 16)
        head.bytes.append(RecordType.data.rawValue); head.bytes.append(0); head.bytes.append(0); head.bytes.append(0)
        head.u32(UInt32(16 + payload.count))
        head.u64(seq)
        let headCRC = head.bytes.withUnsafeBytes { Checksum.update(progress.chain, $0) }
        head.u32(headCRC)
        head.u64(firstBlock); head.u32(blockCount); head.u32(0)
        let headAndFields = head.bytes.withUnsafeBytes { Checksum.update(progress.chain, $0) }
        let crc = Checksum.update(headAndFields, payload)
        var tail = FieldWriter()
        tail.u32(crc)
        var h = XXHash64.Streaming(seed: seq)
        head.bytes.withUnsafeBytes { h.update($0) }
        h.update(payload)
        tail.bytes.withUnsafeBytes { h.update($0) }
        progress.account(recordHash: h.finish(), sequence: seq, crc: crc)
        progress.nextBlock = firstBlock + UInt64(blockCount)
        progress.dataBlocks += UInt64(blockCount)
        progress.rawBytes += UInt64(rawBytes)
        progress.payloadBytes += UInt64(payload.count)
        return (head.bytes, tail.bytes)
    }

    /// True for an encrypted stream (whose data records `dataPieces` cannot write).
    public var isEncrypted: Bool { cipher != nil }

    public mutating func zero(firstBlock: UInt64, blockCount: UInt64) -> [UInt8] {
        range(.zero, firstBlock, blockCount)
    }

    public mutating func discard(firstBlock: UInt64, blockCount: UInt64) -> [UInt8] {
        range(.discard, firstBlock, blockCount)
    }

    /// The trailer; `targetDigest` is the content digest of the target, when known.
    public mutating func finish(targetDigest: Digest128?) -> [UInt8] {
        precondition(started)
        return frame(.trailer, progress.trailer(targetDigest: targetDigest).encode())
    }

    private mutating func range(_ type: RecordType, _ first: UInt64, _ count: UInt64) -> [UInt8] {
        precondition(started && count > 0 && first >= progress.nextBlock)
        var w = FieldWriter()
        w.u64(first); w.u64(count)
        progress.nextBlock = first + count
        if type == .zero { progress.zeroBlocks += count } else { progress.discardBlocks += count }
        return frame(type, w.bytes)
    }

    /// Frames a body: head (type, flags, reserved, length, sequence, head CRC), body, CRC; chained to the last record.
    private mutating func frame(_ type: RecordType, _ body: [UInt8]) -> [UInt8] {
        let seq = progress.nextSequence
        var out = FieldWriter()
        out.bytes.reserveCapacity(StreamFormat.headSize + body.count + StreamFormat.tailSize)
        out.bytes.append(type.rawValue); out.bytes.append(0); out.bytes.append(0); out.bytes.append(0)
        let sealing = type == .header ? nil : cipher
        out.u32(UInt32(sealing == nil ? body.count : RecordCipher.sealedSize(body.count)))
        out.u64(seq)
        let head = out.bytes
        let headCRC = out.bytes.withUnsafeBytes { Checksum.update(progress.chain, $0) }
        out.u32(headCRC)
        if let c = sealing {
            // The CRCs cover the sealed bytes: the framing can be checked without the key.
            body.withUnsafeBytes { c.seal($0, head: head, sequence: seq, appendingTo: &out.bytes) }
        } else {
            out.bytes.append(contentsOf: body)
        }
        let crc = out.bytes.withUnsafeBytes { Checksum.update(progress.chain, $0) }
        out.u32(crc)
        if type != .trailer {
            out.bytes.withUnsafeBytes { progress.account($0, sequence: seq, crc: crc) }
        }
        return out.bytes
    }
}
