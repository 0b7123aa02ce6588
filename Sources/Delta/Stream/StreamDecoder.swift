internal import PoolCore

/// Turns stream bytes into records. A pure state machine: `feed` hands it
/// bytes in any split, `next` returns a verified record or nil for "need more",
/// `finish` is called at end of input and throws when the stream was cut short.
///
/// It checks every byte (magic, head and record CRCs chained from the first
/// byte, sequence numbers, field ranges, block order, the trailer's counts and
/// stream digest). It does not decompress payloads: see `PayloadDecoder`.
/// Memory: the bytes of one record at most (bounded by the header's record size).
public struct StreamDecoder: Sendable {
    public private(set) var header: StreamHeader?
    public private(set) var trailer: StreamTrailer?
    public private(set) var progress: StreamProgress
    private var buffer: [UInt8] = []
    private var start = 0
    /// Offset in the stream of buffer[start].
    private var offset: UInt64 = 0
    private var sawMagic = false
    private var resumeAt: StreamProgress?

    /// Decodes a whole stream.
    public init() {
        progress = StreamProgress(streamID: .zero)
    }

    /// Decodes a stream that resumes an interrupted one at `resume` (the receiver's own checkpoint):
    /// either a resumed stream (`send --resume-from`), whose records continue the checkpoint's chain, or
    /// the whole interrupted stream again, decoded from the start (the caller skips records below the checkpoint).
    public init(resumingAt resume: StreamProgress) {
        progress = resume
        resumeAt = resume
    }

    /// Continues an interrupted stream from byte `offset`, where record `progress.nextSequence`
    /// starts: the bytes fed are the stream's from that offset on (no magic, no header).
    public init(continuing header: StreamHeader, at progress: StreamProgress, offset: UInt64) {
        self.progress = progress
        self.header = header
        self.offset = offset
        sawMagic = true
    }

    /// Bytes consumed into returned records so far (the stream offset of the next record).
    public var consumedBytes: UInt64 { offset }
    public var isComplete: Bool { trailer != nil }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    private var available: Int { buffer.count - start }

    /// The next verified record, or nil when more bytes are needed.
    public mutating func next() throws(StreamError) -> StreamRecord? {
        if !sawMagic {
            let m = StreamFormat.magic
            let n = min(available, m.count)
            guard buffer[start..<start + n].elementsEqual(m.prefix(n)) else { throw .notAStream }
            if n < m.count { return nil }
            sawMagic = true
            start += m.count
            offset += UInt64(m.count)
            progress.chain = m.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
        }
        if trailer != nil {
            if available > 0 { throw .trailingBytes(offset: offset) }
            return nil
        }
        let hs = StreamFormat.headSize
        guard available >= hs else { return nil }
        let expected = header == nil ? 0 : progress.nextSequence
        let (type, flags, length, seq, headCRC) = buffer.withUnsafeBytes { b in
            (b[start], b[start + 1], Int(b.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self).littleEndian),
             b.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self).littleEndian,
             b.loadUnaligned(fromByteOffset: start + 16, as: UInt32.self).littleEndian)
        }
        let computedHead = buffer.withUnsafeBytes { Checksum.update(progress.chain, UnsafeRawBufferPointer(rebasing: $0[start..<start + 16])) }
        guard computedHead == headCRC else {
            if seq != expected { throw .outOfOrder(expected: expected, found: seq, offset: offset) }
            throw .badHeadChecksum(sequence: expected, offset: offset)
        }
        // The head is intact from here on: its fields can be trusted to size the read.
        guard seq == expected else { throw .outOfOrder(expected: expected, found: seq, offset: offset) }
        guard length <= maxBodyLength(type) else {
            throw .badRecord(sequence: seq, reason: "body of \(length) bytes exceeds the limit for its type")
        }
        let total = hs + length + StreamFormat.tailSize
        guard available >= total else { return nil }
        let (crc, stored) = buffer.withUnsafeBytes { b in
            (Checksum.update(progress.chain, UnsafeRawBufferPointer(rebasing: b[start..<start + hs + length])),
             b.loadUnaligned(fromByteOffset: start + hs + length, as: UInt32.self).littleEndian)
        }
        guard crc == stored else { throw .badChecksum(sequence: seq, offset: offset) }
        let recordStart = start
        let record = try decodeBody(type: type, flags: flags, seq: seq, bodyAt: start + hs, length: length)
        start += total
        offset += UInt64(total)
        switch record {
        case .trailer:
            break
        case .header where resumeAt != nil:
            // A resumed stream's header stands outside the chain: continue the checkpoint's chain.
            if let r = resumeAt { progress = r }
        default:
            buffer.withUnsafeBytes { b in
                progress.account(UnsafeRawBufferPointer(rebasing: b[recordStart..<recordStart + total]), sequence: seq, crc: crc)
            }
        }
        return record
    }

    /// Call at end of input: throws unless the trailer was seen and nothing follows it.
    public func finish() throws(StreamError) {
        if !sawMagic && available < StreamFormat.magic.count { throw available == 0 ? .truncated(offset: 0) : .notAStream }
        guard trailer != nil else { throw .truncated(offset: offset + UInt64(available)) }
        if available > 0 { throw .trailingBytes(offset: offset) }
    }

    private func maxBodyLength(_ type: UInt8) -> Int {
        switch RecordType(rawValue: type) {
        case .header: return StreamHeader.bodySize
        case .trailer: return StreamTrailer.bodySize
        case .zero, .discard: return 16
        case .data: return 16 + ZstdCompressor.bound(Int(header?.maxRecordRaw ?? 0))
        case nil: return type & RecordType.optionalBit != 0 ? 1 << 20 : 0
        }
    }

    private mutating func decodeBody(type: UInt8, flags: UInt8, seq: UInt64, bodyAt: Int, length: Int) throws(StreamError) -> StreamRecord {
        let bodyEnd = bodyAt + length
        guard let kind = RecordType(rawValue: type) else {
            throw .unknownRecord(type: type, sequence: seq)
        }
        guard flags == 0 else { throw .badRecord(sequence: seq, reason: "unknown flags \(flags)") }
        if kind == .header {
            guard header == nil else { throw .badRecord(sequence: seq, reason: "second header") }
            let h = try StreamHeader(decoding: buffer, from: bodyAt, end: bodyEnd)
            if let r = resumeAt, h.resumeSequence == 0 {
                // The whole interrupted stream again: decoded from the start; the caller skips what it applied.
                guard h.streamID == r.streamID else {
                    throw .badRecord(sequence: 0, reason: "this is not the interrupted stream (stream \(h.streamID), expected \(r.streamID))")
                }
                resumeAt = nil
                progress = StreamProgress(streamID: h.streamID)
                progress.chain = StreamFormat.magic.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
            } else if let r = resumeAt {
                guard h.resumeSequence == r.nextSequence, h.streamID == r.streamID else {
                    throw .badRecord(sequence: 0, reason: "this stream does not resume the interrupted one "
                        + "(it resumes \(h.streamID) at record \(h.resumeSequence), expected \(r.streamID) at \(r.nextSequence))")
                }
            } else {
                guard h.resumeSequence == 0 else {
                    throw .badRecord(sequence: 0, reason: "a resumed stream (from record \(h.resumeSequence)) needs receive --resume")
                }
                progress.streamID = h.streamID
            }
            header = h
            return .header(h)
        }
        guard let h = header else { throw .badRecord(sequence: seq, reason: "record before the header") }
        var r = FieldReader(buffer, from: bodyAt, end: bodyEnd, sequence: seq)
        switch kind {
        case .header:
            fatalError("handled above")
        case .data:
            let first = try r.u64(), count = try r.u32()
            _ = try r.u32()
            try checkRange(first, UInt64(count), h, seq)
            let raw = UInt64(count) * UInt64(h.blockSize)
            guard raw <= UInt64(h.maxRecordRaw) else { throw .badRecord(sequence: seq, reason: "\(count) blocks exceed the record size limit") }
            let frame = Array(buffer[bodyAt + 16..<bodyEnd])
            let declared = frame.withUnsafeBytes { ZstdDecompressor.contentSize(of: $0) }
            guard declared == raw else { throw .payload(sequence: seq, reason: "is not a zstd frame of \(raw) bytes") }
            progress.nextBlock = first + UInt64(count)
            progress.dataBlocks += UInt64(count)
            progress.rawBytes += raw
            progress.payloadBytes += UInt64(frame.count)
            return .data(firstBlock: first, blockCount: count, frame: frame)
        case .zero, .discard:
            let first = try r.u64(), count = try r.u64()
            try checkRange(first, count, h, seq)
            progress.nextBlock = first + count
            if kind == .zero {
                progress.zeroBlocks += count
                return .zero(firstBlock: first, blockCount: count)
            }
            progress.discardBlocks += count
            return .discard(firstBlock: first, blockCount: count)
        case .trailer:
            let t = try StreamTrailer(decoding: buffer, from: bodyAt, end: bodyEnd, sequence: seq)
            if let why = t.countsEqual(progress.trailer(targetDigest: nil)) { throw .trailerMismatch(why) }
            trailer = t
            return .trailer(t)
        }
    }

    private func checkRange(_ first: UInt64, _ count: UInt64, _ h: StreamHeader, _ seq: UInt64) throws(StreamError) {
        guard count > 0 else { throw .badRecord(sequence: seq, reason: "empty block range") }
        guard first >= progress.nextBlock else {
            throw .badRecord(sequence: seq, reason: "block \(first) is out of order (records must ascend)")
        }
        let (end, over) = first.addingReportingOverflow(count)
        guard !over, end <= h.blockCount else {
            throw .badRecord(sequence: seq, reason: "blocks \(first)+\(count) lie beyond the device's \(h.blockCount) blocks")
        }
    }
}
