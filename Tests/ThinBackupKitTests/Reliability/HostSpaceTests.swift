import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// A receive into a pool whose filesystem fills up (a real ENOSPC: the pool on a small tmpfs):
/// it fails with one line and the pool is as before — thin_check clean, the other device
/// unchanged, the new one absent, the blocks it wrote punched back out of the data file, no
/// temporary file left — and once space is freed, the same receive goes through.
/// Mounting needs root, which CI has; without it the test fails saying so.
@Suite(.serialized) struct HostSpaceTests {
    /// Bytes the file occupies on its filesystem (not its apparent size).
    static func allocated(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
    }

    static func freeBytes(_ path: String) -> UInt64 {
        var s = statvfs()
        return statvfs(path, &s) == 0 ? UInt64(s.f_bavail) * UInt64(s.f_frsize) : 0
    }

    /// `via`: the `receive` command, or `serve` (a receive into a pool shared with others).
    @Test(arguments: ["receive", "serve"])
    func receiveOntoAFullFilesystem(_ via: String) throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        try Tool.requireThinTools()
        let work = TempDir("enospc")
        let mnt = work.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        let mount = try Tool.run("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mnt])
        try #require(mount.ok, "the ENOSPC test mounts a 16 MiB tmpfs (it needs root, as CI runs): \(mount.stderr)")
        defer { _ = try? Tool.run("umount", ["-l", mnt]) }

        let src = try SourceChain(seed: 901, rounds: 2, label: "enospc-src")
        let kept = src.snapshots[0], big = src.snapshots[1]
        let keptStream = work.file("kept.tbs"), bigStream = work.file("big.tbs")
        _ = try send(src.path, kept, to: keptStream)
        _ = try send(src.path, big, to: bigStream)
        let pool = "\(mnt)/pool"
        try ThinPool.create(folder: pool, dataSize: 64 << 20, blockSize: SourceChain.blockSize, metadataSize: 1 << 20).close()
        let first = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", keptStream, "--quiet"])
        try #require(first.ok, "\(first.stderr)")
        let keptImage = try SourceChain.image(pool, kept)
        let dataBefore = Self.allocated("\(pool)/data")

        // Leave 1 MiB free: the big receive (several MiB of data) runs out of space on the host.
        let filler = "\(mnt)/filler"
        let free = Self.freeBytes(mnt)
        try #require(free > 2 << 20, "free: \(free)")
        let fill = try Tool.run("fallocate", ["-l", "\(free - (1 << 20))", filler])
        try #require(fill.ok, "\(fill.stderr)")

        func receiveBig() throws -> String? {
            if via == "receive" {
                let r = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", bigStream, "--quiet"])
                return r.ok ? nil : r.stderr
            }
            let rx = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: pool)) })
            return try cli(["send", "--pool", src.path, "--snap", "\(big)", "--to", "tb://127.0.0.1:\(rx.server.port)",
                            "--token-file", rx.tokenFile, "-q", "--retries", "1"])
        }
        let failed = try receiveBig()
        #expect(failed?.contains("No space left on device") == true, "\(failed ?? "the receive succeeded on a full filesystem")")

        // As before: checked clean, the kept device unchanged, the big one absent, its blocks punched, no temporary file.
        let check = try thinCheck(pool)
        #expect(check.ok, "\(check.stderr)")
        #expect(try SourceChain.image(pool, kept) == keptImage)
        let p = try ThinPool(folder: pool, readOnly: true)
        #expect(try !p.devices().contains(big))
        #expect(!p.needsCheck, "a host out of space is not a metadata failure")
        p.close()
        #expect(Self.allocated("\(pool)/data") == dataBefore, "the aborted receive's blocks were not punched back out")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: pool).filter { $0.hasSuffix(".tmp") || $0.contains(".partial") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        // Space freed: the same receive goes through.
        try FileManager.default.removeItem(atPath: filler)
        let again = try receiveBig()
        #expect(again == nil, "\(again ?? "")")
        #expect(try SourceChain.image(pool, big) == src.image(big))
        #expect(try SourceChain.image(pool, kept) == keptImage)
        #expect(try thinCheck(pool).ok)
    }
}
