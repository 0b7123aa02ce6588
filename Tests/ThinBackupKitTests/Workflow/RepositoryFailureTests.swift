import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("Backup workflows: damage, locks")
struct RepositoryFailureTests {
    @Test func damagedStreamIsFoundAndOnlyItsDependentsFailToRestore() throws {
        let w = try WorkflowPool(seed: 77)
        let repo = w.dir.file("repo")
        var models: [[UInt8]] = []
        var ids: [Int64] = []
        for day in 0..<4 {
            try w.day(writes: 6)
            models.append(w.model)
            ids.append(try backup(w, repo: repo, at: nightly(day)).id)
        }
        #expect(try verifyRepository(repo, deep: false, quiet: true).ok)
        // A stream left by an interrupted run is reported, not counted as a problem.
        try FolderStore(path: repo).put("streams/stray.tbs", [1, 2, 3])
        let stray = try verifyRepository(repo, deep: false, quiet: true)
        #expect(stray.ok && stray.unreferencedObjects == ["streams/stray.tbs"])
        // Flip one byte in the middle of backup 3's stream.
        let store = try FolderStore(path: repo)
        let b3 = try BackupRepository(repo).catalog.backup(ids[2])!
        var bytes = try store.get(b3.object)!
        bytes[bytes.count / 2] ^= 0x40
        try store.put(b3.object, bytes)

        let v = try verifyRepository(repo, deep: true, quiet: true)
        #expect(!v.ok)
        #expect(v.problems.contains { $0.backup == ids[2] && $0.message.contains("damaged") })
        #expect(v.problems.contains { $0.backup == ids[3] && $0.message.contains("needs backup \(ids[2])") })
        #expect(!v.problems.contains { $0.backup == ids[0] || $0.backup == ids[1] })

        // Restoring a point that needs it fails, naming the damaged backup; nothing is left behind.
        let out = w.dir.file("r4.img")
        #expect {
            try restoreToFile(repo, id: ids[3], to: out)
        } throws: { e in
            "\(e)".contains("backup \(ids[2])") && "\(e)".contains("damaged") && "\(e)".contains("backup \(ids[3]) needs")
        }
        #expect(!FileManager.default.fileExists(atPath: out) && !FileManager.default.fileExists(atPath: out + ".partial"))
        // The CLI says it in one line and exits 1.
        let tb = try Net.thinBackup()
        let r = try Tool.run(tb, ["restore", "--repo", repo, "--dev", "1", "--id", "\(ids[2])", "--to", out])
        #expect(r.status == 1 && r.stderr.hasPrefix("thin-backup: backup \(ids[2])") && r.stderr.split(separator: "\n").count == 1)
        let vr = try Tool.run(tb, ["verify", "--repo", repo])
        #expect(vr.status == 1 && vr.stderr.contains("2 problems found"))
        // The others restore.
        for i in [0, 1] {
            let o = w.dir.file("r\(i).img")
            _ = try restoreToFile(repo, id: ids[i], to: o)
            #expect(wfFileBytes(o) == models[i])
        }
    }

    @Test func concurrentBackupRefusedNothingLost() throws {
        let w = try WorkflowPool(seed: 5)
        let repo = w.dir.file("repo")
        try w.day()
        let first = try backup(w, repo: repo, at: nightly(0))
        try w.day()
        let model = w.model
        let tb = try Net.thinBackup()
        var second: Tool.Result?
        var req = BackupRequest(pool: UserspacePool(folder: w.pool), dev: 1, repo: repo)
        req.now = nightly(1)
        // While the first run holds its locks, a second process tries the same backup.
        req.whileLocked = {
            second = try? Tool.run(tb, ["backup", "--pool", w.pool, "--dev", "1", "--repo", repo, "--now", "2026-03-02T03:00:00Z"])
        }
        let r = try runBackup(req)
        let s = try #require(second)
        #expect(s.status == 75, "\(s.stderr)")
        #expect(s.stderr.contains("in use by `backup --dev 1` (pid \(getpid())"), "\(s.stderr)")
        // Nothing lost: the first run completed, the second left no trace.
        let cat = try BackupRepository(repo).catalog.all()
        #expect(cat.map(\.id) == [first.id, r.id])
        #expect(try w.devices() == [1, r.snapshot])
        _ = try restoreToFile(repo, to: w.dir.file("after.img"))
        #expect(wfFileBytes(w.dir.file("after.img")) == model)
        #expect(try verifyRepository(repo, deep: true, quiet: true).ok)

        // The repository lock: held by a live run → refused with its holder; left by a dead one → taken over.
        let store = try FolderStore(path: repo)
        let live = LockHolder(command: "prune", host: ProcessInfo.processInfo.hostName, pid: getpid(), since: "2026-03-02T04:00:00Z")
        try store.put("lock", [UInt8](try JSONEncoder().encode(live)))
        let refused = try Tool.run(tb, ["prune", "--repo", repo, "--keep-last", "1"])
        #expect(refused.status == 75 && refused.stderr.contains("locked by `prune` (pid \(getpid())"), "\(refused.stderr)")
        let dead = LockHolder(command: "prune", host: ProcessInfo.processInfo.hostName, pid: 4_000_000, since: "2026-03-02T04:00:00Z")
        try store.put("lock", [UInt8](try JSONEncoder().encode(dead)))
        let ok = try Tool.run(tb, ["prune", "--repo", repo, "--keep-last", "1", "--json"])
        #expect(ok.ok, "\(ok.stderr)")
        #expect(ok.stdout.contains("\"removed\":[\(first.id)]"))
        #expect(try !store.exists("lock"))
    }
}
