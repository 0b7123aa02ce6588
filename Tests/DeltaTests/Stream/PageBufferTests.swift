@testable import Delta
import Foundation
import Testing

/// The frame pipeline's and the replaced blocks' buffers: their own mappings at a 2 MiB boundary,
/// zeroed, writable to the last byte, whole 2 MiB spans marked for transparent huge pages.
@Suite struct PageBufferTests {
    @Test(arguments: [1, 4095, 4096, (2 << 20) - 1, 2 << 20, (4 << 20) + 105, ZstdCompressor.bound(4 << 20)])
    func buffersAreAlignedZeroedAndWritable(count: Int) throws {
        let b = PageBuffer.allocate(count)
        defer { PageBuffer.release(b) }
        #expect(b.count == count)
        let base = UInt(bitPattern: b.baseAddress)
        #expect(base % UInt(2 << 20) == 0)
        #expect(b.allSatisfy { $0 == 0 })
        for i in stride(from: 0, to: count, by: 4096) { b[i] = 0xA5 }
        b[count - 1] = 0x5A
        #expect(b[count - 1] == 0x5A && b[0] == (count == 1 ? 0x5A : 0xA5))
        // The mapping's flags: "hg" (MADV_HUGEPAGE) on the whole 2 MiB spans, wherever the kernel has
        // transparent huge pages at all.
        guard FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled") else { return }
        let flags = try vmFlags(at: base)
        // (Mapped in whole 4 KiB pages: 2 MiB − 1 bytes take one whole 2 MiB span.)
        #expect(flags.contains("hg") == ((count + 4095) / 4096 * 4096 >= 2 << 20), "\(count) bytes: \(flags)")
    }

    /// The VmFlags of the mapping that holds `address` (/proc/self/smaps; the kernel may have merged
    /// it with a neighbour of the same flags).
    func vmFlags(at address: UInt) throws -> [Substring] {
        // Read to the end (a /proc file has no size to read by).
        let data = try FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() ?? Data()
        let smaps = String(decoding: data, as: UTF8.self)
        var inside = false
        for line in smaps.split(separator: "\n") {
            let range = line.split(separator: " ", maxSplits: 1).first?.split(separator: "-") ?? []
            if range.count == 2, let lo = UInt(range[0], radix: 16), let hi = UInt(range[1], radix: 16) {
                inside = lo <= address && address < hi
            } else if inside, line.hasPrefix("VmFlags:") {
                return line.dropFirst(8).split(separator: " ")
            }
        }
        throw CocoaError(.fileReadCorruptFile)
    }
}
