import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// A restore into a new file merges its chain newest first (`NewestFirstMerge`): what an older
/// backup holds under blocks a newer one names is neither decompressed nor written. These chains
/// overwrite, partly overlap, zero and discard the blocks of older backups; what a restore writes
/// is compared with an expected buffer kept beside the pool (the bytes written, zeros where
/// discarded), and with the pool's own read of the device.
@Suite("Restore: a chain merged newest first")
struct NewestFirstRestoreTests {
    static let bs = 65536
    static let blocks = 40

    /// A pool with device 1 and the bytes it must read.
    final class Chain {
        let dir = TempDir("tb-newest-first")
        let pool: String
        var expected = [UInt8](repeating: 0, count: bs * blocks)
        var rng = SeededRNG(seed: 0x4E57)
        /// What device 1 read at each backup, by backup id.
        var at: [Int64: [UInt8]] = [:]
        var ids: [Int64] = []
        var repo: String { dir.file("repo") }

        init() throws {
            pool = dir.file("pool")
            let p = try ThinPool.create(folder: pool, dataSize: UInt64(bs * blocks * 12), blockSize: UInt64(bs))
            try p.createThin(1, virtualSize: UInt64(bs * blocks))
            try p.commit()
            p.close()
        }

        /// Random bytes (`zeros`: zeros) written over `blocks`.
        func write(_ blocks: Range<Int>, zeros: Bool = false) throws {
            var bytes = [UInt8](repeating: 0, count: blocks.count * bs)
            if !zeros { for i in stride(from: 0, to: bytes.count, by: 8) { withUnsafeBytes(of: rng.next()) { bytes.replaceSubrange(i..<i + 8, with: $0) } } }
            let p = try ThinPool(folder: pool)
            defer { p.close() }
            try p.write(1, offset: UInt64(blocks.lowerBound * bs), bytes)
            try p.commit()
            expected.replaceSubrange(blocks.lowerBound * bs..<blocks.upperBound * bs, with: bytes)
        }

        func discard(_ blocks: Range<Int>) throws {
            let p = try ThinPool(folder: pool)
            defer { p.close() }
            try p.discard(1, blocks: UInt64(blocks.lowerBound)..<UInt64(blocks.upperBound))
            try p.commit()
            expected.replaceSubrange(blocks.lowerBound * bs..<blocks.upperBound * bs, with: [UInt8](repeating: 0, count: blocks.count * bs))
        }

        func backup() throws {
            var r = BackupRequest(pool: UserspacePool(folder: pool), dev: 1, repo: repo)
            r.now = nightly(ids.count)
            let id = try runBackup(r).id
            ids.append(id)
            at[id] = expected
            // The expected buffer is the pool's own view too.
            let p = try ThinPool(folder: pool, readOnly: true)
            defer { p.close() }
            #expect(try p.read(1, offset: 0, count: bs * blocks) == expected)
        }

        /// Each backup's records: (kind, blocks).
        func records(_ id: Int64) throws -> [(kind: String, blocks: Range<UInt64>)] {
            let b = try #require(try BackupRepository(repo).catalog.backup(id))
            var d = StreamDecoder()
            try #require(try FolderStore(path: repo).get(b.object)).withUnsafeBytes { d.feed($0) }
            var out: [(String, Range<UInt64>)] = []
            while let r = try d.next() {
                switch r {
                case let .data(f, c, _): out.append(("data", f..<f + UInt64(c)))
                case let .zero(f, c): out.append(("zero", f..<f + c))
                case let .discard(f, c): out.append(("discard", f..<f + c))
                default: break
                }
            }
            return out
        }
    }

    /// Night 0 (full): data at 0..<12, 16..<24, 28..<36. Night 1: 4..<8 rewritten (the full's first
    /// record partly covered), 16..<24 rewritten (the full's second record covered whole), 30..<32
    /// zeroed (zeros over the full's data). Night 2: 9..<11 discarded (over the full's data), 5..<7
    /// rewritten (partly over night 1's), 37..<39 written where nothing was. Night 3: 18..<20
    /// rewritten (night 1's 16..<24 partly covered).
    static func makeChain() throws -> Chain {
        let c = try Chain()
        try c.write(0..<12); try c.write(16..<24); try c.write(28..<36)
        try c.backup()
        try c.write(4..<8); try c.write(16..<24); try c.write(30..<32, zeros: true)
        try c.backup()
        try c.discard(9..<11); try c.write(5..<7); try c.write(37..<39)
        try c.backup()
        try c.write(18..<20)
        try c.backup()
        return c
    }

    @Test func everyMemberRestoresToTheDevicesBytes() throws {
        let c = try Self.makeChain()
        // The streams hold what the test is about (else it proves nothing).
        let full = try c.records(c.ids[0]), n1 = try c.records(c.ids[1]), n2 = try c.records(c.ids[2])
        try #require(full.contains { $0.kind == "data" && $0.blocks == 16..<24 }, "\(full)")
        try #require(full.contains { $0.kind == "data" && $0.blocks.contains(4) && $0.blocks.contains(10) }, "\(full)")
        try #require(n1.contains { $0.kind == "zero" && $0.blocks == 30..<32 }, "\(n1)")
        try #require(n2.contains { $0.kind == "discard" && $0.blocks == 9..<11 }, "\(n2)")
        for id in c.ids {
            let out = c.dir.file("r\(id).img")
            let report = try restoreToFile(c.repo, id: id, to: out)
            #expect(wfFileBytes(out) == c.at[id], "backup \(id)")
            #expect(!FileManager.default.fileExists(atPath: out + ".partial"))
            // Every stream of the chain was read whole.
            let chain = try BackupRepository(c.repo).catalog.chain(of: try #require(try BackupRepository(c.repo).catalog.backup(id)))
            #expect(report.streamBytes == chain.reduce(0) { $0 + $1.streamBytes })
        }
    }

    /// The full backup's record under night 1's rewrite is not decompressed; the one night 1 only
    /// partly covers is, and only its uncovered blocks are written.
    @Test func coveredRecordsAreNotDecompressed() throws {
        let c = try Self.makeChain()
        let cat = try BackupRepository(c.repo).catalog
        let store = try FolderStore(path: c.repo)
        let chain = try cat.chain(of: try #require(try cat.backup(c.ids[3])))
        let path = c.dir.file("direct.img")
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let f = try RandomAccessFile(path: path, writable: true)
        let m = try NewestFirstMerge(file: f, blockSize: UInt32(Self.bs), virtualSize: UInt64(Self.bs * Self.blocks))
        var written: [UInt64] = []
        for b in chain.reversed() {
            written.append(try m.merge(try store.source(b.object), keyring: nil, label: "t", quiet: true, expect: nil).dataBlocks)
        }
        try f.sync()
        f.close()
        #expect(wfFileBytes(path) == c.at[c.ids[3]])
        // Newest first: night 3 writes 18..<20; night 2 5..<7 and 37..<39; night 1 4..<5, 7..<8,
        // 16..<18, 20..<24 (30..<32 are zeros); the full 0..<4, 8..<9, 11..<12, 28..<30, 32..<36.
        #expect(written == [2, 4, 8, 12], "\(written)")
        #expect(m.skippedRecords >= 1 && m.decompressedRecords >= 4, "\(m.skippedRecords) \(m.decompressedRecords)")
    }

    /// A damaged byte in a record of the oldest backup that newer ones cover whole (so it is never
    /// decompressed) still fails the restore, naming that backup, and leaves neither FILE nor FILE.partial.
    @Test func damageUnderCoveredBlocksIsStillFound() throws {
        let c = try Self.makeChain()
        let cat = try BackupRepository(c.repo).catalog
        let b = try #require(try cat.backup(c.ids[0]))
        let store = try FolderStore(path: c.repo)
        var bytes = try #require(try store.get(b.object))
        // Where the full's record of blocks 16..<24 lies in its stream.
        var d = StreamDecoder()
        bytes.withUnsafeBytes { d.feed($0) }
        var at: Range<Int>?
        var start = d.consumedBytes
        while let r = try d.next() {
            if case let .data(f, n, _) = r, f == 16, n == 8 { at = Int(start)..<Int(d.consumedBytes) }
            start = d.consumedBytes
        }
        let record = try #require(at)
        // Inside its frame (past the 20-byte head and 16 bytes of fields, before the 4-byte CRC).
        bytes[(record.lowerBound + 36 + record.upperBound - 4) / 2] ^= 0x10
        try store.put(b.object, bytes)
        let out = c.dir.file("r.img")
        #expect {
            try restoreToFile(c.repo, id: c.ids[3], to: out)
        } throws: { e in
            "\(e)".contains("backup \(c.ids[0]) (\(b.object)) is damaged, which backup \(c.ids[3]) needs")
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
    }
}

@Suite("BlockRangeSet: covered blocks as ranges")
struct BlockRangeSetTests {
    @Test func agreesWithASetOfBlocks() {
        var rng = SeededRNG(seed: 77)
        for _ in 0..<200 {
            var s = BlockRangeSet(), model = Set<UInt64>()
            for _ in 0..<Int(rng.next() % 12) {
                let a = rng.next() % 100, n = rng.next() % 12
                var other = BlockRangeSet()
                if rng.next() % 2 == 0 { s.insert(a..<a + n) } else { other.insert(a..<a + n); s.formUnion(other) }
                model.formUnion(a..<a + n)
            }
            // Sorted, disjoint, not touching, not empty.
            for (x, y) in zip(s.ranges, s.ranges.dropFirst()) { #expect(x.upperBound < y.lowerBound) }
            #expect(s.ranges.allSatisfy { !$0.isEmpty })
            for _ in 0..<20 {
                let a = rng.next() % 110, n = rng.next() % 15
                let r = a..<a + n
                #expect(s.contains(r) == r.allSatisfy { model.contains($0) })
                var gaps: [UInt64] = []
                s.gaps(in: r) { g in gaps += Array(g) }
                #expect(gaps == r.filter { !model.contains($0) })
            }
        }
    }
}
