internal import CZstd

/// A failure reported by libzstd, with its own text (ZSTD_getErrorName).
public struct ZstdError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let message: String
    public var description: String { "zstd \(operation) failed: \(message)" }
}

@inline(__always)
private func check(_ code: Int, _ op: String) throws(ZstdError) -> Int {
    if ZSTD_isError(code) != 0 {
        throw ZstdError(operation: op, message: String(cString: ZSTD_getErrorName(code)))
    }
    return code
}

/// Compresses buffers into independent zstd frames (one frame per call).
///
/// Owns one ZSTD_CCtx. With `workers` > 0 libzstd splits a frame into jobs of
/// `jobSize` bytes and compresses them on its own threads (Debian's libzstd is
/// built with multithreading); the frame stays one independent frame.
public final class ZstdCompressor {
    private let cctx: OpaquePointer
    public let level: Int32
    public let workers: Int32

    /// Levels 1…19 (and the negative fast levels down to -7).
    public init(level: Int32 = 3, workers: Int32 = 0, jobSize: Int32 = 1 << 20) throws(ZstdError) {
        guard let c = ZSTD_createCCtx() else { throw ZstdError(operation: "createCCtx", message: "out of memory") }
        cctx = c
        self.level = level
        var w = workers
        let bounds = ZSTD_cParam_getBounds(ZSTD_c_nbWorkers)
        if ZSTD_isError(bounds.error) != 0 || bounds.upperBound == 0 { w = 0 }  // a libzstd built without threads
        self.workers = w
        _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level), "set level \(level)")
        _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1), "set checksum flag")
        _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1), "set content size flag")
        if level == 3 {
            // Frames are records of at most 4 MiB: level 3 with smaller match tables (libzstd's are
            // 2^17 and 2^16 entries of 4 bytes, more than a core's L2) costs 16 % less CPU per send;
            // compressible data comes out 0.9–2.5 % larger (docs/BENCHMARKS.md). Decoding is unchanged.
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, 15), "set hash log")
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, 14), "set chain log")
        }
        if w > 0 {
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, w), "set \(w) workers")
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, jobSize), "set job size")
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// The largest frame `count` input bytes can become.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

    /// Writes `src` as one zstd frame of raw (stored) blocks into `dst` (at least `bound(src.count)` bytes);
    /// returns its size. What zstd itself emits for data it cannot compress, without trying: any zstd
    /// decoder reads it. Frame header: single segment, 4-byte content size, no checksum (docs/STREAM.md).
    public static func store(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) -> Int {
        precondition(src.count <= Int(UInt32.max) && dst.count >= bound(src.count))
        dst.storeBytes(of: UInt32(0xFD2F_B528).littleEndian, toByteOffset: 0, as: UInt32.self)
        dst[4] = 0xA0  // Frame_Header_Descriptor: FCS field 4 bytes, single segment, no checksum, no dictionary
        dst.storeBytes(of: UInt32(src.count).littleEndian, toByteOffset: 5, as: UInt32.self)
        var o = 9
        var i = 0
        repeat {
            let n = min(maxBlock, src.count - i)
            let last: UInt32 = i + n == src.count ? 1 : 0
            let head = last | UInt32(n) << 3  // Block_Type 0: raw
            dst[o] = UInt8(head & 0xFF); dst[o + 1] = UInt8(head >> 8 & 0xFF); dst[o + 2] = UInt8(head >> 16)
            o += 3
            if n > 0 { (dst.baseAddress! + o).copyMemory(from: src.baseAddress! + i, byteCount: n) }
            o += n
            i += n
        } while i < src.count
        return o
    }

    /// zstd's largest block (Block_Maximum_Size).
    static let maxBlock = 128 << 10

    /// True when a sample of `bytes` has its byte values spread almost evenly (random or already
    /// compressed data, which zstd would end up storing as it is): the sender then stores such a block
    /// without trying. The sample is 4 × 1 KiB spread over the block, its test a chi-square against
    /// the uniform distribution: random data scores 255 ± 23, zstd's own output about 370, text or
    /// records thousands; below 512 the byte spread leaves entropy coding under 1% to gain. Blocks under 4 KiB: never.
    public static func looksIncompressible(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard n >= 4096, let base = bytes.baseAddress else { return false }
        return withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 256) { counts in
            counts.initialize(repeating: 0)
            let step = (n - 1024) / 3
            for s in 0..<4 {
                let p = (base + s * step).assumingMemoryBound(to: UInt8.self)
                for k in 0..<1024 { counts[Int(p[k])] &+= 1 }
            }
            var chi2: UInt32 = 0  // Σ (c − 16)² · 16 / 16, over 4096 samples (16 expected per value)
            for c in counts { let d = Int32(bitPattern: c) - 16; chi2 &+= UInt32(d * d) }
            return chi2 / 16 < 512
        }
    }

    /// Compresses `src` into one frame written to `dst` (at least `bound(src.count)` bytes); returns its size.
    public func compress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(ZstdError) -> Int {
        try check(ZSTD_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count), "compress")
    }
}

/// Decompresses single zstd frames whose content size is recorded in the frame.
public final class ZstdDecompressor {
    private let dctx: OpaquePointer

    public init() throws(ZstdError) {
        guard let d = ZSTD_createDCtx() else { throw ZstdError(operation: "createDCtx", message: "out of memory") }
        dctx = d
    }

    deinit { ZSTD_freeDCtx(dctx) }

    /// Whether a frame's content checksum (XXH64 of everything it decompresses to, when the frame
    /// carries one) is checked; on by default. Off only where the decompressed bytes are checked
    /// another way (a receive that compares the device's content digest with the sender's): the
    /// check is a tenth of the decompression's CPU.
    public func checkContentChecksums(_ on: Bool) throws(ZstdError) {
        // ZSTD_d_forceIgnoreChecksum (zstd.h, experimental since 1.4.7): 1 ignores, 0 checks.
        _ = try check(ZSTD_DCtx_setParameter(dctx, ZSTD_d_experimentalParam3, on ? 0 : 1), "set checksum check")
    }

    /// The content size a frame declares, or nil when it declares none or is not a frame.
    public static func contentSize(of frame: UnsafeRawBufferPointer) -> UInt64? {
        let s = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        if s == ZSTD_CONTENTSIZE_ERROR || s == ZSTD_CONTENTSIZE_UNKNOWN { return nil }
        return UInt64(s)
    }

    /// Decompresses exactly one frame (`src`) into `dst`; returns the decompressed size.
    public func decompress(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(ZstdError) -> Int {
        try check(ZSTD_decompressDCtx(dctx, dst.baseAddress, dst.count, src.baseAddress, src.count), "decompress")
    }
}
