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
        if w > 0 {
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_nbWorkers, w), "set \(w) workers")
            _ = try check(ZSTD_CCtx_setParameter(c, ZSTD_c_jobSize, jobSize), "set job size")
        }
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// The largest frame `count` input bytes can become.
    public static func bound(_ count: Int) -> Int { ZSTD_compressBound(count) }

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
