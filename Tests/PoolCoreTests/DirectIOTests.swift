import Foundation
import Testing
import TestSupport
@testable import PoolCore

/// O_DIRECT reads and writes (how live block devices are opened) at any offset, length and
/// buffer address: the aligned bounce path must give exactly the bytes of a buffered read.
@Suite("RandomAccessFile with O_DIRECT")
struct DirectIOTests {
    static let size = 1 << 20 + 3 * 4096
    static func pattern(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: i &* 7 &+ i >> 12) }

    func makeFile(_ tmp: TempDir) throws -> String {
        let p = tmp.file("f")
        let bytes = (0..<Self.size).map(Self.pattern)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    @Test("unaligned reads (offset, length, buffer address) equal the file's bytes; reads past the end stop there")
    func reads() throws {
        let tmp = TempDir("dio")
        let p = try makeFile(tmp)
        let f = try RandomAccessFile(path: p, writable: false, create: false, direct: true)
        #expect(f.isDirect)
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: (2 << 20) + 4096, alignment: 4096)
        defer { raw.deallocate() }
        let cases: [(offset: Int, count: Int, shift: Int)] = [
            (0, 4096, 0), (0, 65536, 0), (1, 100, 0), (4095, 2, 1), (4096, 4096, 3), (12345, 1 << 20, 5),
            (Self.size - 10, 10, 0), (Self.size - 10, 4096, 0), (Self.size, 4096, 0), (8192 - 1, 3 * 4096 + 2, 7),
        ]
        for c in cases {
            let buf = UnsafeMutableRawBufferPointer(rebasing: raw[c.shift ..< c.shift + c.count])
            buf.initializeMemory(as: UInt8.self, repeating: 0xEE)
            let n = try f.read(into: buf, at: UInt64(c.offset))
            let want = max(0, min(c.count, Self.size - c.offset))
            #expect(n == want, "read \(c): \(n) bytes, want \(want)")
            let wrong = (0..<n).first { buf[$0] != Self.pattern(c.offset + $0) }
            #expect(wrong == nil, "read \(c): byte \(wrong ?? 0) differs")
        }
    }

    @Test("unaligned writes keep the bytes around them")
    func writes() throws {
        let tmp = TempDir("dio")
        let p = try makeFile(tmp)
        var model = (0..<Self.size).map(Self.pattern)
        let f = try RandomAccessFile(path: p, writable: true, create: false, direct: true)
        for (offset, count) in [(4095, 10000), (0, 1), (65536, 65536), (Self.size - 5, 5), (300_001, 700_000)] {
            let chunk = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ offset) }
            try chunk.withUnsafeBytes { try f.write($0, at: UInt64(offset)) }
            model.replaceSubrange(offset ..< offset + count, with: chunk)
        }
        f.close()
        let back = try Data(contentsOf: URL(fileURLWithPath: p))
        #expect(back.count == Self.size)
        #expect(Array(back) == model)
    }
}
