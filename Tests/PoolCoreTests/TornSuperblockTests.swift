import Dispatch
import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// A reader of a pool's live superblock while another process commits: a commit rewrites block 0
/// in place, so a read racing it can return half of each version (seen once in CI, as "block 0:
/// bad superblock checksum" in a migration that read its source while it was written).
@Suite struct TornSuperblockTests {
    static let bs: UInt64 = 65536

    /// Serves a file's blocks, giving block 0 with its second half taken from `other` for the
    /// first `torn` reads of it.
    final class TearingSource: BlockReading {
        let inner: FileMetadataDevice
        let other: [UInt8]
        var torn: Int
        var superblockReads = 0
        init(_ inner: FileMetadataDevice, other: [UInt8], torn: Int) {
            self.inner = inner
            self.other = other
            self.torn = torn
        }
        var blockCount: UInt64 { inner.blockCount }
        func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] {
            var b = try inner.readBlock(block)
            if block == 0 {
                superblockReads += 1
                if superblockReads <= torn { b.replaceSubrange(64..<4096, with: other[64..<4096]) }
            }
            return b
        }
    }

    /// A pool committed twice; returns its folder and block 0 as the first commit left it.
    static func pool(_ tmp: TempDir) throws -> (String, [UInt8]) {
        let dir = tmp.file("pool")
        let p = try ThinPool.create(folder: dir, dataSize: 64 * bs)
        try p.createThin(1, virtualSize: 4 * bs)
        try p.commit()
        let first = try FileMetadataDevice(path: "\(dir)/metadata").readBlock(0)
        try p.createThin(2, virtualSize: 4 * bs)
        try p.commit()
        p.close()
        return (dir, first)
    }

    @Test func aTornReadIsReadAgain() throws {
        let tmp = TempDir("torn-sb")
        let (dir, first) = try Self.pool(tmp)
        let src = TearingSource(try FileMetadataDevice(path: "\(dir)/metadata"), other: first, torn: 3)
        let reader = try MetadataReader(source: src)
        #expect(src.superblockReads == 4)
        // The superblock of the second commit: both devices.
        #expect(try reader.live.devices().map(\.id) == [1, 2])
    }

    @Test func aSuperblockThatStaysBadIsReported() throws {
        let tmp = TempDir("torn-sb-bad")
        let (dir, first) = try Self.pool(tmp)
        let src = TearingSource(try FileMetadataDevice(path: "\(dir)/metadata"), other: first, torn: .max)
        #expect {
            _ = try MetadataReader(source: src, tornReadAttempts: 5)
        } throws: { e in
            guard case MetadataError.badChecksum(block: 0, kind: .superblock, stored: _, computed: _) = e else { return false }
            return true
        }
        #expect(src.superblockReads == 5)
    }

    /// Another thread commits in a loop while readers open the live superblock again and again:
    /// every open succeeds and sees a transaction at least as new as the one before.
    @Test func readersWhileCommitsRunSeeWholeSuperblocks() throws {
        let tmp = TempDir("torn-sb-live")
        let (dir, _) = try Self.pool(tmp)
        let writer = WriterLoop(try ThinPool(folder: dir, readOnly: false))
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            writer.run()
            done.signal()
        }
        var last: UInt64 = 0
        var failures: [String] = []
        let started = Date()
        var reads = 0
        while Date().timeIntervalSince(started) < 2, reads < 200_000 {
            do {
                let r = try MetadataReader(path: "\(dir)/metadata")
                #expect(r.superblock.transactionID >= last)
                last = r.superblock.transactionID
            } catch {
                failures.append("\(error)")
            }
            reads += 1
        }
        writer.stop.value = true
        done.wait()
        writer.pool.close()
        #expect(writer.error == nil)
        #expect(writer.commits > 20)
        #expect(failures.isEmpty, "\(failures.count) of \(reads) reads failed, the first: \(failures.first ?? "")")
    }
}

/// Creates and deletes a device, committing each, until stopped.
final class WriterLoop: @unchecked Sendable {
    let pool: ThinPool
    let stop = Atomic(false)
    var commits = 0
    var error: (any Error)?
    init(_ pool: ThinPool) { self.pool = pool }
    func run() {
        do {
            var dev: UInt64 = 10
            while !stop.value {
                try pool.createThin(dev, virtualSize: 4 * TornSuperblockTests.bs)
                try pool.commit()
                try pool.delete(dev)
                try pool.commit()
                dev += 1
                commits += 2
            }
        } catch { self.error = error }
    }
}

/// A flag two threads share.
final class Atomic<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var v: T
    init(_ v: T) { self.v = v }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return v }
        set { lock.lock(); v = newValue; lock.unlock() }
    }
}
