import Testing
@testable import PoolCore
import TestSupport

/// CRC-32C: the instruction path (three interleaved strips joined by carrying registers over zero
/// bytes) against the table-only path, at every length around the strip boundaries, from any
/// register and alignment, and against the standard check value.
@Suite struct ChecksumTests {
    @Test func theCheckValue() {
        let v = Array("123456789".utf8)
        #expect(~v.withUnsafeBytes { Checksum.update(0xFFFF_FFFF, $0) } == 0xE306_9283)
        #expect(~v.withUnsafeBytes { Checksum.updatePortable(0xFFFF_FFFF, $0) } == 0xE306_9283)
    }

    @Test func bothPathsAgreeAtEveryLength() {
        var rng = SeededRNG(seed: 0xC3C)
        let bytes = (0..<(3 * 8192 * 3 + 3 * 256 * 2 + 64)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // Around one and two triples of short (256) and long (8192) strips, and everything small.
        var lengths = Array(0...80)
        for edge in [3 * 256, 2 * 3 * 256, 3 * 8192, 2 * 3 * 8192, 3 * 8192 + 3 * 256, bytes.count - 24] {
            lengths += (edge - 9)...(edge + 9)
        }
        for _ in 0..<200 { lengths.append(Int.random(in: 0...(bytes.count - 16), using: &rng)) }
        var wrong: [Int] = []
        bytes.withUnsafeBytes { all in
            for n in lengths {
                let offset = n % 7  // unaligned starts too
                let b = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)])
                let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
                if Checksum.update(seed, b) != Checksum.updatePortable(seed, b) { wrong.append(n) }
            }
        }
        #expect(wrong.isEmpty, "lengths where the paths differ: \(wrong.prefix(20))")
    }

    @Test func aRegisterCarriesAcrossPieces() {
        // update over a whole equals update over its pieces, split anywhere (the stream chains records this way).
        var rng = SeededRNG(seed: 77)
        let bytes = (0..<70_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        bytes.withUnsafeBytes { all in
            let whole = Checksum.update(0xFFFF_FFFF, all)
            for _ in 0..<50 {
                let cut = Int.random(in: 0...all.count, using: &rng)
                let a = Checksum.update(0xFFFF_FFFF, UnsafeRawBufferPointer(rebasing: all[0..<cut]))
                #expect(Checksum.update(a, UnsafeRawBufferPointer(rebasing: all[cut...])) == whole, "cut at \(cut)")
            }
        }
    }
}
