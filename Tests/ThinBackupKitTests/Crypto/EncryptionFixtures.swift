import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

enum Crypt {
    /// A new key file in `dir` (through `key create`).
    static func keyFile(_ dir: TempDir, _ name: String = "key") throws -> String {
        let p = dir.file(name)
        let e = try cli(["key", "create", "--to", p])
        #expect(e == nil, "\(e ?? "")")
        return p
    }

    /// 64-byte runs of a device's blocks that are not all zero: two per block (start and middle).
    static func patterns(_ image: [UInt8], blockSize: Int = Int(SourceChain.blockSize)) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var off = 0
        while off + blockSize <= image.count {
            for at in [off, off + blockSize / 2] {
                let w = image[at..<at + 64]
                if w.contains(where: { $0 != 0 }) { out.append(w) }
            }
            off += blockSize
        }
        return out
    }

    /// How many of `patterns` occur somewhere in `hay` (hashing 8-byte prefixes: linear in the haystack).
    static func found(_ patterns: [ArraySlice<UInt8>], in hay: [UInt8]) -> Int {
        var byPrefix: [UInt64: [ArraySlice<UInt8>]] = [:]
        for p in patterns { byPrefix[p.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }, default: []].append(p) }
        var hits = Set<Int>()
        hay.withUnsafeBytes { h in
            guard h.count >= 64 else { return }
            for i in 0...(h.count - 64) {
                guard let cands = byPrefix[h.loadUnaligned(fromByteOffset: i, as: UInt64.self)] else { continue }
                for c in cands where c.elementsEqual(UnsafeRawBufferPointer(rebasing: h[i..<i + 64])) { hits.insert(c.startIndex) }
            }
        }
        return hits.count
    }

    /// Every regular file under `dir`, concatenated with separators.
    static func allBytes(under dir: String) -> [UInt8] {
        var out: [UInt8] = []
        let e = FileManager.default.enumerator(atPath: dir)
        while let f = e?.nextObject() as? String {
            if let d = FileManager.default.contents(atPath: "\(dir)/\(f)") { out += [UInt8](d) + [UInt8](repeating: 0xA5, count: 64) }
        }
        return out
    }

    /// The records of a stream (byte ranges after the magic).
    static func records(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 8
        while i + 24 <= bytes.count {
            let len = Int(bytes[i + 4]) | Int(bytes[i + 5]) << 8 | Int(bytes[i + 6]) << 16 | Int(bytes[i + 7]) << 24
            out.append(Array(bytes[i..<min(bytes.count, i + 24 + len)]))
            i += 24 + len
        }
        return out
    }

    /// Records joined into a stream with every CRC recomputed (CRCs have no key: anyone can do this).
    static func rechain(_ records: [[UInt8]]) -> [UInt8] {
        var out = StreamFormat.magic
        var chain = StreamFormat.magic.withUnsafeBytes { Checksum.update(StreamFormat.chainSeed, $0) }
        for var r in records {
            let head = r[0..<16].withUnsafeBytes { Checksum.update(chain, $0) }
            withUnsafeBytes(of: head.littleEndian) { r.replaceSubrange(16..<20, with: $0) }
            let crc = r[0..<r.count - 4].withUnsafeBytes { Checksum.update(chain, $0) }
            withUnsafeBytes(of: crc.littleEndian) { r.replaceSubrange(r.count - 4..<r.count, with: $0) }
            chain = crc
            out += r
        }
        return out
    }

    /// The stream with a byte of record `i`'s body changed and the CRCs recomputed.
    static func tampered(_ bytes: [UInt8], record i: Int) -> [UInt8] {
        var recs = records(bytes)
        recs[i][20 + (recs[i].count - 24) / 2] ^= 0x40
        return rechain(recs)
    }

    static func write(_ bytes: [UInt8], _ path: String) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
}
