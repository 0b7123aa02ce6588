import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// The superblock (FORMAT.md §1.2) against the kernel's bytes: field offsets, the held copy,
/// an exact re-encoding, and what damage is reported as.
@Suite("Superblock")
struct SuperblockTests {
    static func image(_ name: String, _ dir: TempDir) throws -> (path: String, block0: [UInt8]) {
        let path = try KernelFixtures.decompress(name, into: dir)
        return (path, try FileMetadataDevice(path: path).readBlock(0))
    }

    /// Values read from the images with an independent parser (FORMAT.md §1.2 offsets,
    /// little-endian), not with PoolCore.
    @Test func kernelSuperblockFields() throws {
        let dir = TempDir("sb-k")
        let sb = try Superblock(decoding: try Self.image("tmeta", dir).block0, location: 0)
        #expect(sb.version == 2 && sb.time == 15 && sb.transactionID == 21 && sb.heldRoot == 0 && sb.flags == 0)
        #expect(sb.dataSpaceMapRoot == SpaceMapRoot(blockCount: 65536, allocatedCount: 11302, bitmapRoot: 52, refCountRoot: 92))
        #expect(sb.metadataSpaceMapRoot == SpaceMapRoot(blockCount: 16384, allocatedCount: 288, bitmapRoot: 281, refCountRoot: 266))
        #expect(sb.dataMappingRoot == 5 && sb.deviceDetailsRoot == 1)
        #expect(sb.dataBlockSize == 128 && sb.metadataBlockSize == 8 && sb.metadataBlockCount == 16384)
        #expect(sb.uuid == [UInt8](repeating: 0, count: 16) && !sb.needsCheck)

        let small = try Superblock(decoding: try Self.image("tmeta_with_shared_internals_and_leaves", dir).block0, location: 0)
        #expect(small.dataSpaceMapRoot == SpaceMapRoot(blockCount: 131072, allocatedCount: 65600, bitmapRoot: 320, refCountRoot: 5))
        #expect(small.metadataSpaceMapRoot == SpaceMapRoot(blockCount: 1024, allocatedCount: 288, bitmapRoot: 321, refCountRoot: 2))
        #expect(small.dataMappingRoot == 315 && small.deviceDetailsRoot == 319)
    }

    /// Decoding then encoding gives the kernel's block back byte for byte (every field in
    /// its place, the same checksum), except the 96 unused bytes after each 32-byte
    /// space-map root: the kernel leaves stale bytes there in four of the seven images;
    /// PoolCore ignores them and writes zeros (FORMAT.md §1.2).
    @Test(arguments: KernelFixtures.names)
    func reencodingIsByteIdentical(name: String) throws {
        let dir = TempDir("sb-rt")
        let block0 = try Self.image(name, dir).block0
        var expected = block0
        for r in [0x60..<0xC0, 0xE0..<0x140] { expected.replaceSubrange(r, with: [UInt8](repeating: 0, count: r.count)) }
        Checksum.seal(&expected, kind: .superblock, location: 0)
        #expect(try Superblock(decoding: block0, location: 0).encode(location: 0) == expected)
        #expect(try Superblock(decoding: expected, location: 0) == Superblock(decoding: block0, location: 0))
    }

    @Test func theKernelLeavesStaleBytesAfterTheSpaceMapRoots() throws {
        let dir = TempDir("sb-stale")
        let block0 = try Self.image("tmeta", dir).block0
        #expect(block0[0x60..<0xC0].contains { $0 != 0 }, "if this fails, FORMAT.md §1.2's note is wrong")
    }

    /// The held copy (FORMAT.md §6.7): a superblock at its own block with zero space-map roots.
    @Test func heldMetadataSnapshotCopy() throws {
        let dir = TempDir("sb-held")
        let reader = try MetadataReader(path: try Self.image("tmeta_with_metadata_snap", dir).path)
        #expect(reader.superblock.heldRoot == 6)
        let held = try reader.metadataSnapshot()
        #expect(held.superblock.location == 6 && held.superblock.heldRoot == 0)
        #expect(held.superblock.dataSpaceMapRoot.isZero && held.superblock.metadataSpaceMapRoot.isZero)
        #expect(held.superblock.dataMappingRoot == reader.superblock.dataMappingRoot)
        #expect(held.dataBlockCount == 0 && reader.live.dataBlockCount == 65536)
        #expect(throws: MetadataError.metadataSnapshotMismatch(asked: 7, held: 6)) { try reader.metadataSnapshot(block: 7) }
        let plain = try MetadataReader(path: try Self.image("tmeta", dir).path)
        #expect(throws: MetadataError.noMetadataSnapshot) { try plain.metadataSnapshot() }
    }

    @Test func damageIsReportedAsWhatItIs() throws {
        let dir = TempDir("sb-bad")
        let good = try Self.image("tmeta_with_empty_roots", dir).block0
        func read(_ edit: (inout [UInt8]) -> Void) -> Error? {
            let dev = MemoryMetadataDevice(blockCount: 4)
            var b = good
            edit(&b)
            dev.blocks[0] = b
            do { _ = try MetadataReader(source: dev); return nil } catch { return error }
        }
        #expect(read { _ in } == nil)
        #expect(read { $0 = [UInt8](repeating: 0, count: 4096) } as? MetadataError == .unformatted)
        let flipped = read { $0[0x150] ^= 0x80 }  // data_block_size changed, checksum not
        #expect(flipped.map { "\($0)" }?.hasPrefix("block 0: bad superblock checksum (stored 0x") == true, "\(String(describing: flipped))")
        #expect(read { $0[0x20] ^= 1; Checksum.seal(&$0, kind: .superblock, location: 0) } as? MetadataError
                == .badMagic(block: 0, found: superblockMagic ^ 1))
        #expect(read { Checksum.seal(&$0, kind: .superblock, location: 3) } as? MetadataError
                == .wrongLocation(block: 0, kind: .superblock, found: 3))
        // A node's salt on a superblock: checksum error, not accepted.
        #expect(read { Checksum.seal(&$0, kind: .node, location: 0) } is MetadataError)
    }

    @Test func shortInputThrowsInsteadOfTrapping() {
        for size in [0, 8, 364, 4000] {
            let bytes = [UInt8](repeating: 0x11, count: size)
            #expect(throws: MetadataError.shortBlock(block: 0, size: size)) { try Superblock(decoding: bytes, location: 0) }
            #expect(throws: MetadataError.shortBlock(block: 0, size: size)) {
                try BlockValidator.check(bytes, kind: .superblock, location: 0)
            }
        }
    }

    @Test func needsCheckIsBitZeroOfFlags() throws {
        var sb = Superblock()
        sb.flags = 2
        #expect(!sb.needsCheck)
        sb.flags = 3
        #expect(sb.needsCheck)
        let block = sb.encode(location: 0)
        #expect(block[4] == 3 && block[5...7].allSatisfy { $0 == 0 })
    }
}
