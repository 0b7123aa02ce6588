import Delta
import Foundation
import PoolCore

/// What `verify --stream` found (`--json`).
public struct StreamVerifyReport: Codable {
    public var ok: Bool
    public var incremental: Bool
    public var device: UInt64
    public var base: UInt64?
    public var blockSize: UInt32
    public var virtualSize: UInt64
    public var records: UInt64
    public var dataBlocks: UInt64
    public var zeroBlocks: UInt64
    public var discardBlocks: UInt64
    /// Unmapped blocks of the target read as its external origin's bytes (header flag), not zeros.
    public var readsOrigin: Bool
    public var targetDigest: String?
    /// For a full stream: the digest of its content was recomputed and matches the trailer.
    public var contentChecked: Bool
    public var streamBytes: UInt64
    /// The stream is encrypted (format version 2).
    public var encrypted: Bool
    /// Encrypted and read without the key: only the framing (checksums, sequence, lengths, trailer place) was checked.
    public var framingOnly: Bool
}

/// Checks a stream without a pool: every checksum, record, frame (decompressed), the trailer,
/// and for a full stream the content digest. An encrypted stream without `keyring`: its framing only.
/// `decompress: false` checks every byte (checksums, records, trailer) but leaves the frames
/// compressed and the content digest unchecked: for a caller that decompresses and checks the
/// content itself afterwards (a restore), so the frames are not decompressed twice.
public func verifyStream(source: ByteSource, quiet: Bool, keyring: StreamKeyring? = nil,
                         decompress: Bool = true) throws -> StreamVerifyReport {
    var d = StreamDecoder(keyring: keyring, framingOnly: keyring == nil)
    // Read straight into the decoder's buffer; a frame stays there (no array of its own) until it is
    // copied into its pipeline slot, or, unchecked, is passed over.
    d.framesInPlace = true
    var digest = ContentDigest()
    var bytes: UInt64 = 0
    let meter = ProgressMeter(label: "verify", quiet: quiet)
    // Frames decompress on every core; the digest takes them in stream order.
    var frames: FramePipeline?
    let add: (FramePipeline.Decoded) -> Void = { r in
        if case let .data(first, _, _) = r.record, let h = d.header {
            digest.add(blocks: r.raw, from: first, blockSize: Int(h.blockSize))
        }
    }
    while true {
        let n = try d.fill(upTo: 1 << 20) { try source.read(into: $0) }
        if n == 0 { break }
        bytes += UInt64(n)
        while let rec = try d.next() {
            if decompress, case .data = rec, let h = d.header {
                if frames == nil { frames = try FramePipeline(workers: FramePipeline.defaultWorkers, maxRecordRaw: Int(h.maxRecordRaw)) }
                try frames!.push(rec, from: d, sequence: d.progress.nextSequence - 1, blockSize: Int(h.blockSize), add)
            }
            meter.update(done: bytes, total: 0, streamBytes: bytes)
        }
    }
    try frames?.drain(add)
    try d.finish()
    meter.finish()
    let h = d.header!
    guard let t = d.trailer else {
        // Encrypted, no key: the framing is all that can be checked.
        return StreamVerifyReport(ok: true, incremental: h.isIncremental, device: 0, base: nil, blockSize: h.blockSize,
                                  virtualSize: h.virtualSize, records: d.progress.records + 1, dataBlocks: 0, zeroBlocks: 0,
                                  discardBlocks: 0, readsOrigin: h.readsOrigin, targetDigest: nil, contentChecked: false, streamBytes: bytes,
                                  encrypted: true, framingOnly: true)
    }
    var checked = false
    if decompress, !h.isIncremental, h.resumeSequence == 0, let want = t.targetDigest {
        guard want == digest.value else {
            throw StreamError.trailerMismatch("content digest \(digest.value), trailer says \(want)")
        }
        checked = true
    }
    return StreamVerifyReport(ok: true, incremental: h.isIncremental, device: h.target.device, base: h.base?.device,
                              blockSize: h.blockSize, virtualSize: h.virtualSize, records: t.records + 1,
                              dataBlocks: t.dataBlocks, zeroBlocks: t.zeroBlocks, discardBlocks: t.discardBlocks,
                              readsOrigin: h.readsOrigin, targetDigest: t.targetDigest?.description, contentChecked: checked, streamBytes: bytes,
                              encrypted: h.isEncrypted, framingOnly: false)
}

/// `verify --pool DIR --dev N --digest D`: recomputes a device's content digest and compares.
public func verifyDevice(_ pool: any PoolAccess, device: UInt64, digest: String, quiet: Bool) throws -> String {
    guard let want = Digest128(hex: digest) else { throw JobError(.usage, "--digest: expected 32 hex digits, got \(digest)") }
    let view = try pool.readMetadata().live
    let bs = Int(view.superblock.dataBlockSize) * 512
    let meter = ProgressMeter(label: "verify", quiet: quiet)
    let got = try deviceDigest(view, device, reader: pool.dataReader(blockSize: bs)) {
        meter.update(done: $0, total: 0, streamBytes: 0)
    }
    meter.finish()
    guard got == want else {
        throw JobError("thin device \(device) has content digest \(got), not \(want)")
    }
    return got.description
}
