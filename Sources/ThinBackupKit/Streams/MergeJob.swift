import Delta
import Foundation
import PoolCore

/// What `merge` did (`--json`).
public struct MergeReport: Codable {
    public var target: String
    public var dataBlocks: UInt64
    public var zeroedBlocks: UInt64
    public var streamBytes: UInt64
    public var seconds: Double
}

/// Applies a stream onto an external origin (a file or block device): data records are
/// written, zero and discard runs are zeroed. A regular-file stream is verified completely
/// before the first write; a pipe is applied as it arrives (a bad record stops it there).
public func runMerge(stream: String, into target: String, quiet: Bool, source givenSource: ByteSource? = nil,
                     keyring: StreamKeyring? = nil) throws -> MergeReport {
    if givenSource == nil, StreamEndpoints.isLocalFile(stream) {
        _ = try verifyStream(source: try Transport.source(for: stream), quiet: quiet, keyring: keyring)
    }
    let source = try givenSource ?? Transport.source(for: stream)
    let out = try RandomAccessFile(path: target, writable: true)
    let meter = ProgressMeter(label: "merge", quiet: quiet)
    var d = StreamDecoder(keyring: keyring)
    let z = try ZstdDecompressor()
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    var raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 4096)
    let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    zeros.initializeMemory(as: UInt8.self, repeating: 0)
    defer { raw.deallocate(); zeros.deallocate() }
    var header: StreamHeader?
    var report = MergeReport(target: target, dataBlocks: 0, zeroedBlocks: 0, streamBytes: 0, seconds: 0)
    var applied: UInt64 = 0
    let regular = !out.isBlockDevice
    while true {
        let n = try buf.withUnsafeMutableBytes { try source.read(into: $0) }
        if n == 0 { break }
        report.streamBytes += UInt64(n)
        buf.withUnsafeBytes { d.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        while let rec = try d.next() {
            switch rec {
            case .header(let h):
                header = h
                raw.deallocate()
                raw = .allocate(byteCount: Int(h.maxRecordRaw), alignment: 4096)
                if regular, try out.size() < h.virtualSize { try out.truncate(to: h.virtualSize) }
            case let .data(first, count, frame):
                let bs = Int(header!.blockSize)
                let len = Int(count) * bs
                let dst = UnsafeMutableRawBufferPointer(rebasing: raw[0..<len])
                let got = try frame.withUnsafeBytes { try z.decompress($0, into: dst) }
                guard got == len else { throw StreamError.payload(sequence: d.progress.nextSequence - 1, reason: "wrong size") }
                try out.write(UnsafeRawBufferPointer(dst), at: first * UInt64(bs))
                report.dataBlocks += UInt64(count)
                applied += UInt64(len)
            case let .zero(first, count), let .discard(first, count):
                let bs = UInt64(header!.blockSize)
                var off = first * bs
                let end = min((first + count) * bs, max(header!.virtualSize, off))
                while off < end {
                    let k = Int(min(UInt64(zeros.count), end - off))
                    try out.write(UnsafeRawBufferPointer(rebasing: zeros[0..<k]), at: off)
                    off += UInt64(k)
                }
                report.zeroedBlocks += count
            case .trailer, .sealed:
                break
            }
            meter.update(done: applied, total: (header?.expectedBlocks ?? 0) * UInt64(header?.blockSize ?? 0), streamBytes: report.streamBytes)
        }
    }
    try d.finish()
    try out.sync()
    meter.finish()
    report.seconds = meter.elapsed
    return report
}
