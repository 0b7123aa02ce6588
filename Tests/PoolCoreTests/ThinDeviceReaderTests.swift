import Foundation
@testable import PoolCore
import TestSupport
import Testing

/// ThinDeviceReader (the read-only reconstruction the kernel-fidelity tests compare with
/// the kernel's sha256) against an independent model: metadata restored by thin_restore
/// from the seeded RandomPoolXML, a data file whose every block names itself.
@Suite("ThinDeviceReader")
struct ThinDeviceReaderTests {
    /// The bytes of data block `d`: its number, little-endian, repeated (block size `bs`).
    static func pattern(_ d: UInt64, _ bs: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bs)
        out.withUnsafeMutableBytes { p in
            for i in 0 ..< bs / 8 { p.storeBytes(of: (d &+ 1).littleEndian, toByteOffset: i * 8, as: UInt64.self) }
        }
        return out
    }

    @Test("every device equals mapped data blocks and zeros elsewhere, with a partial last block",
          .enabled(if: Tool.hasThinTools, "thin-provisioning-tools not installed"),
          arguments: [UInt64(3), 17, 2024])
    func randomPools(seed: UInt64) throws {
        var pool = RandomPoolXML.generate(seed: seed, mappings: 300)
        pool.dataBlockSize = 128  // 64 KiB: the generator may pick up to 32 MiB blocks
        let dir = TempDir("tdr")
        let meta = try RandomPool.restore(pool, into: dir)
        let bs = Int(pool.dataBlockSize) * 512
        // Only mapped data blocks are written: the file stays sparse.
        let dataPath = dir.sparseFile("data", size: pool.dataBlockCount * UInt64(bs))
        let data = try RandomAccessFile(path: dataPath, writable: true)
        var written = Set<UInt64>()
        for dev in pool.devices {
            for m in dev.mappings where written.insert(m.dataBlock).inserted {
                try Self.pattern(m.dataBlock, bs).withUnsafeBytes { try data.write($0, at: m.dataBlock * UInt64(bs)) }
            }
        }
        let reader = try MetadataReader(path: meta)
        for dev in pool.devices {
            let byVirtual = Dictionary(dev.mappings.map { ($0.virtualBlock, $0.dataBlock) }, uniquingKeysWith: { a, _ in a })
            let top = (dev.mappings.map(\.virtualBlock).max() ?? 0) + 2
            let size = top * UInt64(bs) + 1000  // two unmapped blocks past the last mapping, then a partial block
            var vblock: UInt64 = 0
            var total: UInt64 = 0
            var mismatches: [UInt64] = []
            try ThinDeviceReader(view: reader.live, data: data, device: dev.id).read(size: size) { chunk in
                let want = byVirtual[vblock].map { Self.pattern($0, bs) } ?? [UInt8](repeating: 0, count: bs)
                let same = want.withUnsafeBytes { memcmp($0.baseAddress!, chunk.baseAddress!, chunk.count) == 0 }
                if !same { mismatches.append(vblock) }
                total += UInt64(chunk.count)
                vblock += 1
            }
            #expect(total == size, "seed \(seed) dev \(dev.id)")
            #expect(mismatches.isEmpty, "seed \(seed) dev \(dev.id): wrong bytes in virtual blocks \(mismatches.prefix(8))")
        }
    }

    @Test("a mapping beyond the end of the data file is an error naming the device and block",
          .enabled(if: Tool.hasThinTools, "thin-provisioning-tools not installed"))
    func mappingBeyondData() throws {
        var pool = RandomPoolXML.generate(seed: 5, mappings: 40)
        pool.dataBlockSize = 128
        let dir = TempDir("tdr")
        let meta = try RandomPool.restore(pool, into: dir)
        let bs = UInt64(pool.dataBlockSize) * 512
        let dev = try #require(pool.devices.first { !$0.mappings.isEmpty })
        let highest = try #require(dev.mappings.max { $0.dataBlock < $1.dataBlock })
        // The data file ends just before the device's highest data block.
        let data = try RandomAccessFile(path: dir.sparseFile("short", size: highest.dataBlock * bs), writable: false)
        let reader = try MetadataReader(path: meta)
        let size = (highest.virtualBlock + 1) * bs
        #expect(throws: DeviceReadError.dataBlockBeyondEnd(device: dev.id, virtual: highest.virtualBlock,
                                                           data: highest.dataBlock, dataBlocks: highest.dataBlock)) {
            try ThinDeviceReader(view: reader.live, data: data, device: dev.id).read(size: size) { _ in }
        }
    }
}
