import Delta
import Foundation
import PoolCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStreamEntry(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 { fuzzStream(data, size) }

/// Input: byte 0 picks the mode (bit 0: reseal record checksums first, so mutations reach the
/// field checks behind the CRCs; bits 1–7: feed split size), the rest is a stream.
func fuzzStream(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    var bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    if data[0] & 1 != 0 { reseal(&bytes) }
    let split = max(1, Int(data[0] >> 1) * 97)
    var d = StreamDecoder()
    let z = try? ZstdDecompressor()
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 16)
    defer { out.deallocate() }
    var i = 0
    do {
        while i < bytes.count {
            let n = min(split, bytes.count - i)
            bytes.withUnsafeBytes { d.feed(UnsafeRawBufferPointer(rebasing: $0[i..<i + n])) }
            i += n
            while let r = try d.next() {
                if case let .data(_, count, frame) = r, let z, let h = d.header {
                    let want = Int(count) * Int(h.blockSize)
                    if want <= out.count {
                        _ = try? frame.withUnsafeBytes { try z.decompress($0, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<want])) }
                    }
                }
            }
        }
        try d.finish()
    } catch {}
    return 0
}

/// Rewrites every record's head and tail CRC along the chain (the format of docs/STREAM.md).
func reseal(_ b: inout [UInt8]) {
    let m = StreamFormat.magic
    guard b.count >= m.count, Array(b[0..<m.count]) == m else { return }
    var chain = m.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
    var at = m.count
    let hs = StreamFormat.headSize
    while at + hs <= b.count {
        let length = Int(UInt32(b[at + 4]) | UInt32(b[at + 5]) << 8 | UInt32(b[at + 6]) << 16 | UInt32(b[at + 7]) << 24)
        let head = b.withUnsafeBytes { Checksum.update(chain, UnsafeRawBufferPointer(rebasing: $0[at..<at + 16])) }
        for k in 0..<4 { b[at + 16 + k] = UInt8(truncatingIfNeeded: head >> (8 * UInt32(k))) }
        guard length <= b.count, at + hs + length + 4 <= b.count else { return }
        let crc = b.withUnsafeBytes { Checksum.update(chain, UnsafeRawBufferPointer(rebasing: $0[at..<at + hs + length])) }
        for k in 0..<4 { b[at + hs + length + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
        chain = crc
        at += hs + length + 4
    }
}
