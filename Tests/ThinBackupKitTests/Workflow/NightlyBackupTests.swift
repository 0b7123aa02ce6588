import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("Backup workflows: nightly backups with pruning, restore, verify")
struct NightlyBackupTests {
    static let policy = RetentionPolicy(last: 3, daily: 7, weekly: 4, monthly: 2)

    /// Thirty nights (2026-03-01 … 03-30) of writes and discards, a backup and a prune each night.
    @Test func thirtyNightsThenRestoreChosenDays() throws {
        let seed: UInt64 = 20260301
        let w = try WorkflowPool(seed: seed)
        let repo = w.dir.file("repo")
        var models: [Int: [UInt8]] = [:]
        var rebases = 0
        for day in 0..<30 {
            try w.day()
            models[day] = w.model
            let b = try backup(w, repo: repo, at: nightly(day))
            #expect(b.kind == (day == 0 ? "full" : "incremental"), "seed \(seed) day \(day)")
            #expect(try w.deviceBytes() == w.model, "seed \(seed) day \(day): the pool device differs from the model")
            // Only the device and the newest snapshot stay on the pool.
            #expect(try w.devices() == [1, b.snapshot], "seed \(seed) day \(day)")
            let p = try runPrune(PruneRequest(repo: repo, policy: Self.policy))
            rebases += p.rebased.count
        }
        #expect(rebases > 0, "pruning never had to consolidate a chain")

        // Which nights remain: worked out by hand from the calendar (ISO weeks start on Mondays):
        // daily 7 → Mar 24–30; weekly 4 → Mar 30 (W14), 29 (W13), 22 (W12), 15 (W11); monthly 2 → Mar 30.
        let repoHandle = try BackupRepository(repo)
        let kept = try repoHandle.catalog.all()
        repoHandle.close()
        let keptDays = kept.map { Int(($0.createdAt - nightly(0).timeIntervalSince1970) / 86400) + 1 }
        #expect(keptDays == [15, 22, 24, 25, 26, 27, 28, 29, 30], "seed \(seed)")
        #expect(kept.filter(\.isFull).count >= 1)
        // Every object in the repository is a kept backup's stream (nothing leaked, nothing missing).
        let objects = try FolderStore(path: repo).list(prefix: "streams/")!
        #expect(objects == kept.map(\.object).sorted())

        // Restore chosen nights into files: byte-identical to that night's device.
        for march in [15, 22, 26, 30] {
            let b = kept[keptDays.firstIndex(of: march)!]
            let out = w.dir.file("restore-\(march).img")
            let r = try restoreToFile(repo, id: b.id, to: out)
            #expect(r.backup == b.id)
            #expect(wfFileBytes(out) == models[march - 1], "seed \(seed): restore of March \(march) differs")
        }
        // --at picks the newest backup at or before the time.
        let at = try restoreToFile(repo, at: WorkflowClock.parse("2026-03-27T12:00:00Z"), to: w.dir.file("at.img"))
        #expect(wfFileBytes(w.dir.file("at.img")) == models[26])
        #expect(at.createdAt == "2026-03-27T02:00:00Z")
        // Into a pool folder: the chain is received, the intermediates removed; thin_check agrees.
        let dst = w.dir.file("dst")
        try ThinPool.create(folder: dst, dataSize: 16 << 20).close()
        var rr = RestoreRequest(repo: repo, dev: 1, to: dst)
        rr.id = kept[keptDays.firstIndex(of: 22)!].id
        rr.asDevice = 7
        _ = try runRestore(rr)
        #expect(try w.deviceBytes(7, pool: dst) == models[21])
        let dp = try ThinPool(folder: dst, readOnly: true)
        #expect(try dp.devices() == [7])
        dp.close()
        #expect(try thinCheckClean(dst))

        // verify: every stream and chain, and --deep restores each backup and recomputes its digest.
        let v = try verifyRepository(repo, deep: true, quiet: true)
        #expect(v.ok, "\(v.problems)")
        #expect(v.streamsChecked == 9 && v.restoredAndCompared == 9)
    }

    /// The pruning rule alone, on a hand-made calendar.
    @Test func retentionKeepsNewestPerBucket() {
        func rec(_ id: Int64, _ iso: String) -> BackupRecord {
            BackupRecord(id: id, poolID: "p", dev: 1, snapDev: UInt64(id), baseID: nil, createdAt: WorkflowClock.parse(iso)!.timeIntervalSince1970,
                         object: "o\(id)", streamBytes: 0, rawBytes: 0, dataBlocks: 0, blockSize: 65536, virtualSize: 0, digest: "", rebased: false)
        }
        let rs = [rec(1, "2026-01-30T02:00:00Z"), rec(2, "2026-02-01T02:00:00Z"), rec(3, "2026-02-01T20:00:00Z"),
                  rec(4, "2026-02-02T02:00:00Z"), rec(5, "2026-02-09T02:00:00Z"), rec(6, "2026-02-10T02:00:00Z")]
        #expect(Set(RetentionPolicy(last: 1).keep(rs).keys) == [6])
        #expect(Set(RetentionPolicy(daily: 3).keep(rs).keys) == [6, 5, 4])
        // ISO weeks: Feb 9–10 (W07), Feb 2 (W06), Jan 30–Feb 1 (W05: newest is #3).
        #expect(Set(RetentionPolicy(weekly: 3).keep(rs).keys) == [6, 4, 3])
        #expect(Set(RetentionPolicy(monthly: 2).keep(rs).keys) == [6, 1])
        #expect(Set(RetentionPolicy().keep(rs).keys) == [6], "the newest is always kept")
    }
}
