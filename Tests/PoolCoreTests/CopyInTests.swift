import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// `copyIn` commits every interval: after each commit thin_dump (reading the file on disk)
/// sees exactly the bytes copied so far, and an input that breaks off midway leaves the
/// last interval's commit.
@Suite struct CopyInTests {
    static let bs = 65536

    static func input(_ tmp: TempDir, _ count: Int, seed: UInt64) throws -> (path: String, bytes: [UInt8]) {
        var rng = SeededRNG(seed: seed)
        let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let path = tmp.file("in\(seed)")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return (path, bytes)
    }

    /// A 64-block pool with device 1 (32 blocks), committed.
    static func poolWithDevice(_ dir: String) throws -> ThinPool {
        let pool = try ThinPool.create(folder: dir, dataSize: 64 * UInt64(bs))
        try pool.createThin(1, virtualSize: 32 * UInt64(bs))
        try pool.commit()
        return pool
    }

    @Test func eachIntervalIsCommitted() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("copyin")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let pool = try Self.poolWithDevice(dir)
        let (path, bytes) = try Self.input(tmp, 20 * Self.bs + 1000, seed: 3)
        let interval = 4 * Self.bs + 4096
        let offset = 512
        var seen: [(done: UInt64, mapped: Int)] = []
        let src = try RandomAccessFile(path: path, writable: false)
        try pool.copyIn(from: src, length: UInt64(bytes.count), to: 1, offset: UInt64(offset), commitEvery: UInt64(interval)) { done in
            let d = try? Oracle.dump(meta)
            seen.append((done, d?.devices[1]?.count ?? -1))
        }
        var want: [UInt64] = Array(stride(from: UInt64(interval), to: UInt64(bytes.count), by: interval))
        want.append(UInt64(bytes.count))
        #expect(seen.map(\.done) == want)
        for s in seen {
            let blocks = (offset + Int(s.done) + Self.bs - 1) / Self.bs
            #expect(s.mapped == blocks, "after \(s.done) bytes thin_dump shows \(s.mapped) mapped blocks, expected \(blocks)")
        }
        #expect(!pool.changedThisTransaction)
        #expect(try pool.read(1, offset: UInt64(offset), count: bytes.count) == bytes)
        pool.close()
        #expect(try Oracle.check(meta).ok)
    }

    @Test func brokenInputKeepsTheLastInterval() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("copybreak")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let pool = try Self.poolWithDevice(dir)
        let (path, bytes) = try Self.input(tmp, 10 * Self.bs + 300, seed: 4)
        let src = try RandomAccessFile(path: path, writable: false)
        // Asks for more than the file holds: the copy fails in its fourth interval.
        #expect(throws: PoolError.self) {
            try pool.copyIn(from: src, length: 16 * UInt64(Self.bs), to: 1, offset: 0, commitEvery: 3 * UInt64(Self.bs))
        }
        pool.close()  // no commit: as if the process died here
        #expect(try Oracle.check(meta).ok)
        #expect(try Oracle.dump(meta).devices[1]?.count == 9)
        let again = try ThinPool(folder: dir)
        #expect(try again.read(1, offset: 0, count: 9 * Self.bs) == Array(bytes[0..<(9 * Self.bs)]))
        #expect(try again.read(1, offset: 9 * UInt64(Self.bs), count: Self.bs) == [UInt8](repeating: 0, count: Self.bs))
        again.close()
    }

    /// With a tiny dirty-block limit, a copy whose byte interval is never reached still
    /// commits before the end: after its first 8 MiB chunk (the most it reads at a time).
    @Test func dirtyMetadataLimitCommitsEarly() throws {
        try Tool.requireThinTools()
        let tmp = TempDir("copydirty")
        let dir = tmp.file("pool"), meta = "\(dir)/metadata"
        let blocks = 128 + 3
        let pool = try ThinPool.create(folder: dir, dataSize: 256 * UInt64(Self.bs))
        try pool.createThin(1, virtualSize: UInt64(blocks * Self.bs))
        var bytes = [UInt8]()
        for k in 0..<blocks { bytes += [UInt8](repeating: UInt8(truncatingIfNeeded: k &* 7 &+ 1), count: Self.bs) }
        let path = tmp.file("in")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let src = try RandomAccessFile(path: path, writable: false)
        var commits: [(done: UInt64, mapped: Int)] = []
        try pool.copyIn(from: src, length: UInt64(bytes.count), to: 1, offset: 0, commitEvery: 1 << 40, dirtyLimit: 1) { done in
            commits.append((done, (try? Oracle.dump(meta))?.devices[1]?.count ?? -1))
        }
        #expect(commits.map(\.done) == [8 << 20, UInt64(bytes.count)])
        #expect(commits.map(\.mapped) == [128, blocks])
        #expect(try pool.read(1, offset: 0, count: bytes.count) == bytes)
        pool.close()
    }
}
