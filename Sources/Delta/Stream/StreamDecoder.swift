public import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Turns stream bytes into records. A pure state machine: `feed` hands it
/// bytes in any split, `next` returns a verified record or nil for "need more",
/// `finish` is called at end of input and throws when the stream was cut short.
///
/// It checks every byte (magic, head and record CRCs chained from the first
/// byte, sequence numbers, field ranges, block order, the trailer's counts and
/// stream digest). It does not decompress payloads: see `PayloadDecoder`.
/// Memory: the bytes of one record at most (bounded by the header's record size).
///
/// An encrypted stream (version 2) needs a `keyring`: each record is opened (authenticated and
/// decrypted) before it is parsed, and a record that does not authenticate fails at its sequence
/// number. With `framingOnly` and no key it checks only what is in the clear (magic, CRC chain,
/// sequence numbers, lengths, the trailer's place) and returns the records as `.sealed`.
public struct StreamDecoder: Sendable {
    public private(set) var header: StreamHeader?
    public private(set) var trailer: StreamTrailer?
    public private(set) var progress: StreamProgress
    /// Bytes `start..<end` are fed and not yet consumed (bytes past `end` are never read). Its own
    /// mapping (`PageBuffer`: huge pages, no page faults per 4 KiB as it first fills), shared by copies
    /// of the decoder until one of them feeds it (copied then).
    private var storage = DecoderBytes(count: 0)
    /// The buffer (valid while `storage` is not replaced: until the next `feed` or `fill`).
    private var buffer: UnsafeMutableRawBufferPointer { storage.bytes }
    private var start = 0
    private var end = 0
    /// Data records are returned with an empty frame whose bytes stay in the decoder's buffer, read by
    /// `withPlacedFrame` until the next `feed`, `fill` or `next` (a clear stream's; an encrypted one's
    /// frames are always arrays). Saves allocating and copying an array per frame.
    public var framesInPlace = false
    /// Where the last data record's frame lies in `buffer` (with `framesInPlace`).
    private var placedFrame: Range<Int>?
    /// Offset in the stream of buffer[start].
    private var offset: UInt64 = 0
    private var sawMagic = false
    private var resumeAt: StreamProgress?
    public let keyring: StreamKeyring?
    public let framingOnly: Bool
    private var cipher: RecordCipher?
    /// An encrypted header was read; its sealed header record (sequence 1) comes next.
    private var awaitingSealed = false
    /// A resumed encrypted stream: switch to the checkpoint's chain after the sealed header record.
    private var resumeAfterSealed = false
    /// Framing-only: the (sealed) trailer was seen.
    private var sawTrailer = false

    /// Decodes a whole stream.
    public init(keyring: StreamKeyring? = nil, framingOnly: Bool = false) {
        progress = StreamProgress(streamID: .zero)
        self.keyring = keyring
        self.framingOnly = framingOnly
    }

    /// Decodes a stream that resumes an interrupted one at `resume` (the receiver's own checkpoint):
    /// either a resumed stream (`send --resume-from`), whose records continue the checkpoint's chain, or
    /// the whole interrupted stream again, decoded from the start (the caller skips records below the checkpoint).
    public init(resumingAt resume: StreamProgress, keyring: StreamKeyring? = nil) {
        progress = resume
        resumeAt = resume
        self.keyring = keyring
        framingOnly = false
    }

    /// Continues an interrupted stream from byte `offset`, where record `progress.nextSequence`
    /// starts: the bytes fed are the stream's from that offset on (no magic, no header).
    public init(continuing header: StreamHeader, at progress: StreamProgress, offset: UInt64, keyring: StreamKeyring? = nil) {
        self.progress = progress
        self.header = header
        self.offset = offset
        self.keyring = keyring
        framingOnly = false
        sawMagic = true
    }

    /// Bytes consumed into returned records so far (the stream offset of the next record).
    public var consumedBytes: UInt64 { offset }
    public var isComplete: Bool { trailer != nil || sawTrailer }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        makeRoom(bytes.count)
        UnsafeMutableRawBufferPointer(rebasing: buffer[end..<end + bytes.count]).copyMemory(from: bytes)
        end += bytes.count
    }

    /// Feeds bytes read straight into the decoder's buffer (no copy): `read` gets room for at most
    /// `count` bytes and returns how many it wrote there. Returns that number.
    public mutating func fill(upTo count: Int, _ read: (UnsafeMutableRawBufferPointer) throws -> Int) rethrows -> Int {
        guard count > 0 else { return 0 }
        makeRoom(count)
        let n = try withExtendedLifetime(storage) { try read(UnsafeMutableRawBufferPointer(rebasing: buffer[end..<end + count])) }
        precondition(n >= 0 && n <= count, "a read returned \(n) bytes for room of \(count)")
        end += n
        return n
    }

    /// Decodes the bytes of `mapping` where they lie (a regular file's rest, mapped): nothing is
    /// copied, and data records' frames stay valid as long as the mapping (`framesAreStable`). Only
    /// for a decoder that holds no unconsumed bytes (else nothing changes and false is returned);
    /// bytes fed later are copied after the mapping's as usual.
    public mutating func feed(mapping: FileMapping) -> Bool {
        guard available == 0 else { return false }
        storage = DecoderBytes(mapping: mapping)
        releasedBelow = 0
        start = 0
        end = mapping.bytes.count
        placedFrame = nil
        return true
    }

    /// Frames handed out by `withPlacedFrame` stay valid for as long as the mapping fed (`feed(mapping:)`)
    /// lives, not only during the call: a caller may read them later, on another thread.
    public var framesAreStable: Bool { storage.mapping != nil }

    /// Lets the pages of the fed mapping before stream offset `streamOffset` go (their bytes stay in the
    /// page cache), a few MiB at a time: bounds what a long mapped stream holds resident. The caller
    /// reads no frame there any more (it gives the offset of the oldest record it still uses).
    public mutating func releaseMapped(before streamOffset: UInt64) {
        guard let m = storage.mapping, streamOffset <= offset else { return }
        let upTo = start - Int(offset - streamOffset)
        guard upTo >= releasedBelow + Self.releaseStep else { return }
        m.release(from: releasedBelow, below: upTo)
        releasedBelow = upTo
    }

    /// The fed mapping's bytes below this were released (`releaseMapped`).
    private var releasedBelow = 0
    /// Pages are released this many bytes at a time.
    static let releaseStep = 16 << 20

    /// Makes room for `count` more bytes after `end`: moves the unconsumed bytes to the front once
    /// they are the smaller half, and grows the buffer, once the header is known, to hold the largest
    /// record beside what is fed (grown by doubling, it was allocated, copied and first touched at
    /// 1, 2, 4… MiB in turn).
    private mutating func makeRoom(_ count: Int) {
        placedFrame = nil
        if storage.mapping != nil {
            // A mapping is read-only: what is left of it moves to a buffer of the decoder's own.
            storage = storage.copy(start..<end, room: end - start + count)
            end -= start
            start = 0
        }
        if !isKnownUniquelyReferenced(&storage) {
            // A copy of this decoder holds the buffer too: this one takes its own.
            storage = storage.copy(start..<end, room: buffer.count)
            end -= start
            start = 0
        }
        if start > 0 && (start >= end / 2 || end + count > buffer.count) {
            let n = end - start
            if n > 0 { _ = memmove(buffer.baseAddress!, buffer.baseAddress! + start, n) }
            start = 0
            end = n
        }
        guard end + count > buffer.count else { return }
        var room = max(end + count, 2 * buffer.count, 64 << 10)
        if header != nil {
            room = end + count
            room += StreamFormat.headSize + maxBodyLength(RecordType.data.rawValue) + StreamFormat.tailSize
        }
        storage = storage.copy(0..<end, room: room)
    }

    /// The frame of the data record `next` returned last, when it stayed in the decoder's buffer
    /// (`framesInPlace`): `body` reads it (valid during the call); nil otherwise.
    public func withPlacedFrame<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R? {
        guard let r = placedFrame else { return nil }
        return try withExtendedLifetime(storage) { try body(UnsafeRawBufferPointer(rebasing: buffer[r])) }
    }

    public mutating func feed(_ bytes: [UInt8]) { bytes.withUnsafeBytes { feed($0) } }

    private var available: Int { end - start }

    /// The next verified record, or nil when more bytes are needed.
    public mutating func next() throws(StreamError) -> StreamRecord? {
        while true {
            switch try step() {
            case .needMore: return nil
            case .consumed: continue
            case .record(let r): return r
            }
        }
    }

    private enum Step { case needMore, consumed, record(StreamRecord) }

    private mutating func step() throws(StreamError) -> Step {
        placedFrame = nil
        if !sawMagic {
            let m = StreamFormat.magic
            let n = min(available, m.count)
            guard UnsafeRawBufferPointer(rebasing: buffer[start..<start + n]).elementsEqual(m.prefix(n)) else { throw .notAStream }
            if n < m.count { return .needMore }
            sawMagic = true
            start += m.count
            offset += UInt64(m.count)
            progress.chain = m.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
        }
        if isComplete {
            if available > 0 { throw .trailingBytes(offset: offset) }
            return .needMore
        }
        let hs = StreamFormat.headSize
        guard available >= hs else { return .needMore }
        let expected = header == nil ? 0 : progress.nextSequence
        let b = UnsafeRawBufferPointer(buffer)
        let (type, flags, length, seq, headCRC) = (
            b[start], b[start + 1], Int(b.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self).littleEndian),
             b.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self).littleEndian,
             b.loadUnaligned(fromByteOffset: start + 16, as: UInt32.self).littleEndian)
        let computedHead = Checksum.update(progress.chain, UnsafeRawBufferPointer(rebasing: b[start..<start + 16]))
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
        guard available >= total else { return .needMore }
        let (crc, stored) = (Checksum.update(progress.chain, UnsafeRawBufferPointer(rebasing: b[start..<start + hs + length])),
                             b.loadUnaligned(fromByteOffset: start + hs + length, as: UInt32.self).littleEndian)
        guard crc == stored else { throw .badChecksum(sequence: seq, offset: offset) }
        let recordStart = start
        let record: StreamRecord?
        if type != RecordType.header.rawValue, header?.isEncrypted == true {
            if framingOnly {
                guard RecordType(rawValue: type) != nil else { throw .unknownRecord(type: type, sequence: seq) }
                if type == RecordType.trailer.rawValue { sawTrailer = true }
                record = .sealed(type: type, sequence: seq, bytes: length)
            } else {
                try prepareCipher()
                let head = Array(b[start..<start + 16])
                let opened = cipher!.open(UnsafeRawBufferPointer(rebasing: b[start + hs..<start + hs + length]), head: head, sequence: seq)
                guard let plain = opened else { throw .authenticationFailed(sequence: seq, offset: offset) }
                record = try decodeBody(type: type, flags: flags, seq: seq, bytes: plain, bodyAt: 0, length: plain.count, inBuffer: nil)
            }
        } else {
            // The fields as an array of their own; a data record's frame is read where it lies.
            let isData = type == RecordType.data.rawValue
            let fields = Array(b[start + hs..<start + hs + (isData ? min(length, 16) : length)])
            record = try decodeBody(type: type, flags: flags, seq: seq, bytes: fields, bodyAt: 0, length: fields.count,
                                    inBuffer: isData ? start + hs..<start + hs + length : nil)
        }
        start += total
        offset += UInt64(total)
        switch record {
        case .trailer?:
            break
        case .header? where resumeAt != nil && header?.isEncrypted != true,
             .header? where resumeAfterSealed:
            // A resumed stream's header stands outside the chain: continue the checkpoint's chain.
            // (Encrypted: after its sealed header record, which follows the header outside the chain too.)
            if let r = resumeAt { progress = r }
            resumeAfterSealed = false
        case .sealed(let t, _, _)? where t == RecordType.trailer.rawValue:
            break
        default:
            progress.account(UnsafeRawBufferPointer(rebasing: b[recordStart..<recordStart + total]), sequence: seq, crc: crc)
        }
        return record.map { .record($0) } ?? .consumed
    }

    /// Finds the key for an encrypted header (once): refuses a missing or wrong key, and a key for a clear stream.
    private mutating func prepareCipher() throws(StreamError) {
        guard cipher == nil, let h = header else { return }
        guard let e = h.encryption else {
            if keyring != nil { throw .notEncrypted }
            return
        }
        guard let keyring else { throw .keyRequired(keyID: e.keyID) }
        let key: StreamKey
        do { key = try keyring.key(for: e.derivation) } catch { throw .key(error.message) }
        guard key.id == e.keyID else { throw .wrongKey(stream: e.keyID, given: key.id) }
        cipher = RecordCipher(key: key, header: h)
    }

    /// Call at end of input: throws unless the trailer was seen and nothing follows it.
    public func finish() throws(StreamError) {
        if !sawMagic && available < StreamFormat.magic.count { throw available == 0 ? .truncated(offset: 0) : .notAStream }
        guard isComplete else { throw .truncated(offset: offset + UInt64(available)) }
        if available > 0 { throw .trailingBytes(offset: offset) }
    }

    private func maxBodyLength(_ type: UInt8) -> Int {
        let sealed = header?.isEncrypted == true
        let tag = sealed ? Sodium.tagBytes : 0
        switch RecordType(rawValue: type) {
        case .header: return StreamHeader.bodySize
        case .sealedHeader: return sealed ? StreamHeader.sealedBodySize + tag : 0
        case .trailer: return StreamTrailer.bodySize + tag
        case .zero, .discard: return 16 + tag
        case .data: return 16 + ZstdCompressor.bound(Int(header?.maxRecordRaw ?? 0)) + tag
        case nil: return type & RecordType.optionalBit != 0 ? 1 << 20 : 0
        }
    }

    /// Parses one record's body (`bytes[bodyAt..<bodyAt+length]`, opened when the stream is encrypted);
    /// nil for the encrypted header, which is returned once its sealed header record is read.
    /// `inBuffer`: a data record's whole body in the decoder's buffer (`bytes` then holds only its first
    /// 16 bytes, the fields): its frame is read, and can stay, there.
    private mutating func decodeBody(type: UInt8, flags: UInt8, seq: UInt64, bytes buffer: [UInt8], bodyAt: Int,
                                     length: Int, inBuffer: Range<Int>?) throws(StreamError) -> StreamRecord? {
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
            if let e = h.encryption {
                if framingOnly { return .header(h) }
                guard keyring != nil else { throw .keyRequired(keyID: e.keyID) }
                try prepareCipher()
                awaitingSealed = true
                resumeAfterSealed = resumeAt != nil && h.resumeSequence != 0
                return nil
            }
            if keyring != nil { throw .notEncrypted }
            return .header(h)
        }
        guard var h = header else { throw .badRecord(sequence: seq, reason: "record before the header") }
        if kind == .sealedHeader {
            guard h.isEncrypted else { throw .unknownRecord(type: type, sequence: seq) }
            guard awaitingSealed, seq == 1 else { throw .badRecord(sequence: seq, reason: "a second sealed header") }
            try h.decodeSealed(Array(buffer[bodyAt..<bodyEnd]), sequence: seq)
            header = h
            awaitingSealed = false
            return .header(h)
        }
        guard !awaitingSealed else { throw .badRecord(sequence: seq, reason: "the sealed header record is missing") }
        var r = FieldReader(buffer, from: bodyAt, end: bodyEnd, sequence: seq)
        switch kind {
        case .header, .sealedHeader:
            fatalError("handled above")
        case .data:
            let first = try r.u64(), count = try r.u32()
            _ = try r.u32()
            try checkRange(first, UInt64(count), h, seq)
            let raw = UInt64(count) * UInt64(h.blockSize)
            guard raw <= UInt64(h.maxRecordRaw) else { throw .badRecord(sequence: seq, reason: "\(count) blocks exceed the record size limit") }
            let declared: UInt64?, frameBytes: Int
            if let body = inBuffer {
                let f = UnsafeRawBufferPointer(rebasing: self.buffer[body.lowerBound + 16..<body.upperBound])
                (declared, frameBytes) = (ZstdDecompressor.contentSize(of: f), f.count)
            } else {
                (declared, frameBytes) = buffer.withUnsafeBytes { b in
                    let f = UnsafeRawBufferPointer(rebasing: b[bodyAt + 16..<bodyEnd])
                    return (ZstdDecompressor.contentSize(of: f), f.count)
                }
            }
            guard declared == raw else { throw .payload(sequence: seq, reason: "is not a zstd frame of \(raw) bytes") }
            progress.nextBlock = first + UInt64(count)
            progress.dataBlocks += UInt64(count)
            progress.rawBytes += raw
            progress.payloadBytes += UInt64(frameBytes)
            guard let body = inBuffer else { return .data(firstBlock: first, blockCount: count, frame: Array(buffer[bodyAt + 16..<bodyEnd])) }
            if framesInPlace {
                placedFrame = body.lowerBound + 16..<body.upperBound
                return .data(firstBlock: first, blockCount: count, frame: [])
            }
            return .data(firstBlock: first, blockCount: count,
                         frame: Array(UnsafeRawBufferPointer(rebasing: self.buffer[body.lowerBound + 16..<body.upperBound])))
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

/// A stream decoder's buffer: one `PageBuffer` mapping (none while empty).
private final class DecoderBytes: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    /// The file mapping `bytes` lies in (never written); nil: `bytes` is this object's own buffer.
    let mapping: FileMapping?

    init(count: Int) {
        bytes = count > 0 ? PageBuffer.allocate(count) : UnsafeMutableRawBufferPointer(start: nil, count: 0)
        mapping = nil
    }

    init(mapping: FileMapping) {
        bytes = UnsafeMutableRawBufferPointer(mutating: mapping.bytes)
        self.mapping = mapping
    }

    deinit { if mapping == nil, bytes.count > 0 { PageBuffer.release(bytes) } }

    /// A new buffer of `room` bytes holding this one's `range` at its start.
    func copy(_ range: Range<Int>, room: Int) -> DecoderBytes {
        let c = DecoderBytes(count: max(room, range.count))
        if !range.isEmpty { c.bytes.baseAddress!.copyMemory(from: bytes.baseAddress! + range.lowerBound, byteCount: range.count) }
        return c
    }
}
