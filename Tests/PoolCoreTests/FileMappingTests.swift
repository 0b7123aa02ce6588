import Foundation
import Testing
@testable import PoolCore
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A regular file's rest mapped for reading (`FileMapping.rest`), and its pages let go behind a reader.
@Suite struct FileMappingTests {
    /// Resident kB of the mapping that starts at `address` (/proc/self/smaps).
    static func residentKB(at address: UnsafeRawPointer) throws -> Int {
        // Read to its end with read(2): a /proc file has no size to read by.
        let fd = open("/proc/self/smaps", O_RDONLY)
        defer { close(fd) }
        var raw: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            raw += chunk[0..<n]
        }
        let smaps = String(decoding: raw, as: UTF8.self)
        let key = String(UInt(bitPattern: address), radix: 16)
        var inside = false
        for line in smaps.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), line[..<dash].allSatisfy(\.isHexDigit) {
                inside = line[..<dash].drop { $0 == "0" } == key[...].drop { $0 == "0" }
            } else if inside, line.hasPrefix("Rss:") {
                return Int(line.split(separator: " ")[1])!
            }
        }
        Issue.record("no mapping at \(key)")
        return -1
    }

    static func sum(_ b: UnsafeRawBufferPointer) -> UInt64 { b.reduce(0) { $0 &* 31 &+ UInt64($1) } }

    @Test func theRestOfAFileIsMappedAndItsPagesLetGo() throws {
        let tmp = TempDir("mapping")
        let path = tmp.file("f")
        let bytes = (0..<(8 << 20) + 100).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 12) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let m = try #require(FileMapping.rest(ofRegularFile: fd, from: 5000))
        #expect(m.bytes.count == bytes.count - 5000)
        let want = bytes[5000...].withUnsafeBytes { Self.sum($0) }
        #expect(Self.sum(m.bytes) == want)
        let base = UnsafeRawPointer(m.bytes.baseAddress! - 904)  // the mapping starts at the page below byte 5000 (4096)
        #expect(try Self.residentKB(at: base) >= 8 << 10)

        // Pages of the first 6 MiB go (the kernel may drop more of a large folio it splits: at most
        // the 2 MiB after stay resident).
        m.release(from: 0, below: 6 << 20)
        let left = try Self.residentKB(at: base)
        #expect(left <= (2 << 10) + 4, "resident after release: \(left) kB")
        // Read again, the released bytes are the file's (mapped from the page cache again).
        #expect(Self.sum(m.bytes) == want)

        #expect(FileMapping.rest(ofRegularFile: fd, from: UInt64(bytes.count)) == nil, "nothing left to map")
        let dir = open(tmp.path, O_RDONLY)
        defer { close(dir) }
        #expect(FileMapping.rest(ofRegularFile: dir, from: 0) == nil, "a folder is not mapped")
    }
}
