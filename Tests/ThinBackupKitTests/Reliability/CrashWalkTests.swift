import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// Crash points as a test dimension: `pool write`, `backup` and `prune` killed (SIGKILL) at every
/// durability step in turn (THIN_BACKUP_FAULT=kill:N), catalog transactions and object deletions
/// included. After each: thin_check clean, the device old or new (never half), the repository's
/// catalog the old or the new one (never half) with every backup it lists verifying, and the
/// same command run again ends in the right state.
@Suite(.serialized) struct CrashWalkTests {
    static func ready() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
    }

    @Test func poolWriteIsOldOrNewAtEveryStep() throws {
        try Self.ready()
        let dir = TempDir("walk-write")
        let template = dir.file("template")
        let bs = 65536
        let p = try ThinPool.create(folder: template, dataSize: 16 << 20, blockSize: UInt64(bs), metadataSize: 2 << 20)
        try p.createThin(1, virtualSize: 32 * UInt64(bs))
        var rng = SeededRNG(seed: 77)
        var old = [UInt8](repeating: 0, count: 32 * bs)
        for i in stride(from: 0, to: old.count / 2, by: 8) { old.withUnsafeMutableBytes { $0.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) } }
        try p.write(1, offset: 0, old)
        try p.commit()
        p.close()
        // 5 blocks and a half, from the middle of block 3: partial blocks at both ends, copy on write of committed ones.
        var input = [UInt8](repeating: 0, count: 5 * bs + bs / 2)
        for i in stride(from: 0, to: input.count, by: 8) { input.withUnsafeMutableBytes { $0.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self) } }
        let inputFile = dir.file("input")
        FileManager.default.createFile(atPath: inputFile, contents: Data(input))
        let offset = 3 * bs + 1000
        var new = old
        new.replaceSubrange(offset..<offset + input.count, with: input)
        func args(_ pool: String) -> [String] { ["pool", "write", "--pool", pool, "--dev", "1", "--offset", "\(offset)", "--from", inputFile] }

        let counting = dir.file("count")
        try CrashPoints.copyPool(template, counting)
        let steps = try CrashPoints.steps(args(counting), in: dir)
        try #require(steps.contains("commit"), "\(steps)")
        var sawOld = false, sawNew = false
        for n in 1...steps.count {
            let pool = dir.file("k\(n)")
            try CrashPoints.copyPool(template, pool)
            let r = try CrashPoints.run(args(pool), fault: "kill:\(n)")
            #expect(r.status == 128 + SIGKILL, "step \(n): \(r.stderr)")
            #expect(try thinCheck(pool).ok, "step \(n) (\(steps[n - 1]))")
            let image = try SourceChain.image(pool, 1)
            #expect(image == old || image == new, "step \(n) (\(steps[n - 1])): the device is half written")
            if image == old { sawOld = true } else { sawNew = true }
            let again = try CrashPoints.run(args(pool), fault: nil)
            #expect(again.ok, "step \(n): \(again.stderr)")
            #expect(try SourceChain.image(pool, 1) == new, "step \(n)")
            try? FileManager.default.removeItem(atPath: pool)
        }
        #expect(sawOld && sawNew, "the walk must cross the commit")
    }

    /// A repository with one full backup; the walk kills the next (incremental) backup.
    @Test func backupAtEveryStep() throws {
        try Self.ready()
        let w = try WorkflowPool(seed: 31, blocks: 16)
        let repo = w.dir.file("repo")
        try w.day()
        _ = try backup(w, repo: repo, at: nightly(0))
        try w.day()
        let model = w.model
        let tpool = w.dir.file("tpool"), trepo = w.dir.file("trepo")
        try CrashPoints.copyPool(w.pool, tpool)
        try CrashPoints.copyPool(repo, trepo)
        func args(_ pool: String, _ repo: String) -> [String] {
            ["backup", "--pool", pool, "--dev", "1", "--repo", repo, "--now", "2026-03-02T02:00:00Z", "--quiet"]
        }
        let cp = w.dir.file("cpool"), cr = w.dir.file("crepo")
        try CrashPoints.copyPool(tpool, cp)
        try CrashPoints.copyPool(trepo, cr)
        let steps = try CrashPoints.steps(args(cp, cr), in: w.dir)
        try #require(steps.count > 5, "\(steps)")
        try #require(steps.contains("catalog"), "the catalog transactions are steps: \(steps)")
        let oldCatalog = try Self.catalog(trepo), newCatalog = try Self.catalog(cr)
        try #require(newCatalog.count == oldCatalog.count + 1 && Array(newCatalog.prefix(oldCatalog.count)) == oldCatalog)
        var sawOld = false, sawNew = false
        for n in 1...steps.count {
            let pool = w.dir.file("p\(n)"), rp = w.dir.file("r\(n)")
            try CrashPoints.copyPool(tpool, pool)
            try CrashPoints.copyPool(trepo, rp)
            let r = try CrashPoints.run(args(pool, rp), fault: "kill:\(n)")
            #expect(r.status == 128 + SIGKILL, "step \(n): \(r.stderr)")
            #expect(try thinCheck(pool).ok, "step \(n) (\(steps[n - 1]))")
            #expect(try w.deviceBytes(pool: pool) == model, "step \(n): backup changed the source device")
            let found = try Self.catalog(rp)
            #expect(found == oldCatalog || found == newCatalog, "step \(n) (\(steps[n - 1])): the catalog is neither the old nor the new one")
            if found == oldCatalog { sawOld = true } else if found == newCatalog { sawNew = true }
            try Self.verifyListed(rp, "step \(n) (\(steps[n - 1]))")
            let again = try CrashPoints.run(args(pool, rp), fault: nil)
            #expect(again.ok, "step \(n): the next backup after the kill failed: \(again.stderr)")
            let out = w.dir.file("img\(n)")
            let restored = try Tool.run(CrashPoints.binary, ["restore", "--repo", rp, "--dev", "1", "--to", out, "--quiet"])
            #expect(restored.ok, "step \(n): \(restored.stderr)")
            #expect(wfFileBytes(out) == model, "step \(n): the newest backup does not restore the device")
            #expect(try thinCheck(pool).ok, "step \(n)")
            for p in [pool, rp, out] { try? FileManager.default.removeItem(atPath: p) }
        }
        #expect(sawOld && sawNew, "the walk must cross the catalog's store")
    }

    /// Four nightly backups; the walk kills `prune --keep-last 2`.
    @Test func pruneAtEveryStep() throws {
        try Self.ready()
        let w = try WorkflowPool(seed: 32, blocks: 16)
        let repo = w.dir.file("repo")
        var models: [[UInt8]] = []
        for day in 0..<4 {
            try w.day()
            models.append(w.model)
            _ = try backup(w, repo: repo, at: nightly(day))
        }
        func args(_ repo: String) -> [String] { ["prune", "--repo", repo, "--keep-last", "2", "--quiet"] }
        let cr = w.dir.file("crepo")
        try CrashPoints.copyPool(repo, cr)
        let steps = try CrashPoints.steps(args(cr), in: w.dir)
        try #require(!steps.isEmpty, "prune took no durability step")
        try #require(steps.contains("catalog") && steps.contains("delete"), "catalog transactions and deletions are steps: \(steps)")
        let oldCatalog = try Self.catalog(repo), newCatalog = try Self.catalog(cr)
        try #require(oldCatalog.count == 4 && newCatalog.count == 2, "\(oldCatalog) → \(newCatalog)")
        var sawOld = false, sawNew = false
        for n in 1...steps.count {
            let rp = w.dir.file("r\(n)")
            try CrashPoints.copyPool(repo, rp)
            let r = try CrashPoints.run(args(rp), fault: "kill:\(n)")
            #expect(r.status == 128 + SIGKILL, "step \(n): \(r.stderr)")
            // Before anything repairs it: the old or the new catalog, and everything it lists is there.
            let found = try Self.catalog(rp)
            #expect(found == oldCatalog || found == newCatalog, "step \(n) (\(steps[n - 1])): the catalog is neither the old nor the new one")
            if found == oldCatalog { sawOld = true } else if found == newCatalog { sawNew = true }
            try Self.verifyListed(rp, "step \(n) (\(steps[n - 1]))")
            // Whatever the kill left, the newest backup restores and the next prune finishes the job.
            let again = try CrashPoints.run(args(rp), fault: nil)
            #expect(again.ok, "step \(n): \(again.stderr)")
            for (i, day) in [(3, "2026-03-04T02:00:00Z"), (2, "2026-03-03T02:00:00Z")] {
                let out = w.dir.file("img\(n)-\(i)")
                let restored = try Tool.run(CrashPoints.binary, ["restore", "--repo", rp, "--dev", "1", "--at", day, "--to", out, "--quiet"])
                #expect(restored.ok, "step \(n): \(restored.stderr)")
                #expect(wfFileBytes(out) == models[i], "step \(n): backup of night \(i) lost")
                try? FileManager.default.removeItem(atPath: out)
            }
            let verify = try Tool.run(CrashPoints.binary, ["verify", "--repo", rp])
            #expect(verify.ok, "step \(n): \(verify.stderr)")
            try? FileManager.default.removeItem(atPath: rp)
        }
        #expect(sawOld && sawNew, "the walk must cross the catalog's store")
    }

    /// What a repository's catalog lists: (id, device, base, object, digest) of every backup.
    static func catalog(_ repo: String) throws -> [String] {
        let r = try BackupRepository(repo)
        defer { r.close() }
        return try r.catalog.all().map { "\($0.id!) dev \($0.dev) base \($0.baseID.map(String.init) ?? "-") \($0.object) \($0.digest)" }
    }

    /// Every backup the repository lists has its stream, and `verify --repo` passes.
    static func verifyListed(_ repo: String, _ label: String) throws {
        let r = try BackupRepository(repo)
        let missing = try r.catalog.all().filter { try !r.store.exists($0.object) }.map(\.object)
        r.close()
        #expect(missing.isEmpty, "\(label): the catalog lists streams that are gone: \(missing)")
        let verify = try Tool.run(CrashPoints.binary, ["verify", "--repo", repo])
        #expect(verify.ok, "\(label): \(verify.stderr)")
    }
}
