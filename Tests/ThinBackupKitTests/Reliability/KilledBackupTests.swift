import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// A backup killed outright (SIGKILL) after it made its snapshot cannot run its undo: the next
/// backup of the pool deletes that snapshot (it is recorded in thin-backup-unfinished/, and is
/// still the very device made then), says so, and the chain goes on from the kept base.
@Suite struct KilledBackupTests {
    @Test func snapshotOfAKilledBackupIsDeletedByTheNext() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let w = try WorkflowPool(seed: 91, blocks: 16)
        let repo = w.dir.file("repo")
        try w.day()
        let first = try backup(w, repo: repo, at: nightly(0))
        try w.day()
        let before = try w.devices()
        #expect(before == [w.dev, first.snapshot])
        let args = ["backup", "--pool", w.pool, "--dev", "1", "--repo", repo, "--quiet"]

        // Killed at its first catalog step (counted on a copy: the stream is written, nothing recorded), the snapshot is left.
        let copy = TempDir("tb-killed")
        try CrashPoints.copyPool(w.pool, copy.file("pool"))
        try CrashPoints.copyPool(repo, copy.file("repo"))
        let steps = try CrashPoints.steps(["backup", "--pool", copy.file("pool"), "--dev", "1", "--repo", copy.file("repo"), "--quiet",
                                           "--now", "2026-03-02T02:00:00Z"], in: copy)
        let catalog = try #require(steps.firstIndex(of: "catalog"), "\(steps)")
        let killed = try CrashPoints.run(args + ["--now", "2026-03-02T02:00:00Z"], fault: "kill:\(catalog + 1)")
        #expect(killed.status == 128 + SIGKILL, "\(killed.status): \(killed.stderr)")
        let left = try #require(Set(try w.devices()).subtracting(before).first, "the killed backup left no snapshot: steps \(steps), killed at \(catalog + 1): \(killed.status) \(killed.stderr)")
        #expect(FileManager.default.fileExists(atPath: UnfinishedBackup.path(pool: w.pool, origin: 1)))

        let next = try CrashPoints.run(args + ["--now", "2026-03-03T02:00:00Z"], fault: nil)
        #expect(next.ok, "\(next.stderr)")
        #expect(next.stderr.contains("deleted snapshot \(left), left on \(w.pool)/metadata by an interrupted backup of thin device 1"),
                "\(next.stderr)")
        let after = try w.devices()
        // The device and the new backup's snapshot only (which may take the freed id again).
        #expect(after.count == 2 && !after.contains(first.snapshot), "\(after)")
        #expect(!FileManager.default.fileExists(atPath: UnfinishedBackup.path(pool: w.pool, origin: 1)))
        #expect(try thinCheckClean(w.pool))

        // The increment went on from backup 1, and restores what the device reads.
        let restored = w.dir.file("restored.img")
        let r = try restoreToFile(repo, to: restored)
        #expect(r.backup == 2 && r.chain == [1, 2], "\(r.chain)")
        #expect(wfFileBytes(restored) == w.model)
    }

    /// The record of an unfinished backup whose snapshot was never recorded: reported, not guessed at.
    @Test func unrecordedSnapshotIsReportedNotDeleted() throws {
        let w = try WorkflowPool(seed: 92, blocks: 8)
        try UnfinishedBackup(origin: 1).save(pool: w.pool)
        let before = try w.devices()
        var lines: [String] = []
        UnfinishedBackup.recover(UserspacePool(folder: w.pool), pool: w.pool) { lines.append($0) }
        #expect(lines.count == 1 && lines[0].contains("was stopped while it made its snapshot"), "\(lines)")
        #expect(try w.devices() == before)
        #expect(!FileManager.default.fileExists(atPath: UnfinishedBackup.path(pool: w.pool, origin: 1)))
    }
    /// The ".partial" objects under a repository folder (relative names).
    static func partials(_ repo: String) -> [String] {
        (FileManager.default.subpaths(atPath: repo) ?? []).filter { $0.hasSuffix(".partial") }.sorted()
    }

    /// A backup killed outright while its stream is being written leaves "<object>.partial" in the
    /// repository (issue #12). While that run holds the repository lock nothing touches it (another
    /// run is refused, exit 75); once it is gone, the next run that takes the lock (here `verify
    /// --repo`, then `backup`) removes it with a line, and the chain goes on.
    @Test func partialStreamOfAKilledBackupIsRemovedByTheNextRun() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let w = try WorkflowPool(seed: 93, blocks: 16)
        let repo = w.dir.file("repo")
        try w.day()
        _ = try backup(w, repo: repo, at: nightly(0))
        try w.day()
        func args(_ dir: TempDir, _ day: Int) -> [String] {
            ["backup", "--pool", dir.file("pool"), "--dev", "1", "--repo", dir.file("repo"), "--quiet", "--now", "2026-03-0\(day)T02:00:00Z"]
        }
        func copy() throws -> TempDir {
            let t = TempDir("tb-partial")
            try CrashPoints.copyPool(w.pool, t.file("pool"))
            try CrashPoints.copyPool(repo, t.file("repo"))
            return t
        }
        let counted = try copy()
        let steps = try CrashPoints.steps(args(counted, 2), in: counted)
        // The first durability step at which a kill leaves the stream's .partial behind.
        var found: (dir: TempDir, step: Int)?
        for n in 1...steps.count {
            let t = try copy()
            let r = try CrashPoints.run(args(t, 2), fault: "kill:\(n)")
            if r.status == 128 + SIGKILL, Self.partials(t.file("repo")).contains(where: { $0.hasPrefix("streams/") }) {
                found = (t, n)
                break
            }
        }
        let (t, step) = try #require(found, "no kill point left a .partial stream: steps \(steps)")

        // A run stopped at that step (alive, holding the lock): its .partial is left alone.
        let held = try copy()
        let errFile = held.file("hung.stderr")
        FileManager.default.createFile(atPath: errFile, contents: nil)
        let hung = Process()
        hung.executableURL = URL(fileURLWithPath: CrashPoints.binary)
        hung.arguments = args(held, 2)
        hung.environment = ProcessInfo.processInfo.environment.merging(["THIN_BACKUP_FAULT": "hang:\(step)"]) { $1 }
        hung.standardError = FileHandle(forWritingAtPath: errFile)
        hung.standardOutput = FileHandle.nullDevice
        try hung.run()
        defer { if hung.isRunning { kill(hung.processIdentifier, SIGKILL); hung.waitUntilExit() } }
        let deadline = Date().addingTimeInterval(60)
        while !((try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "").contains("stopped at step"), Date() < deadline {
            usleep(50_000)
        }
        let writing = Self.partials(held.file("repo"))
        try #require(!writing.isEmpty, "the stopped backup has no .partial: \((try? String(contentsOfFile: errFile, encoding: .utf8)) ?? "")")
        let busy = try CrashPoints.run(["verify", "--repo", held.file("repo"), "--quiet"], fault: nil)
        #expect(busy.status == 75 && busy.stderr.contains("is locked by"), "\(busy.status): \(busy.stderr)")
        #expect(Self.partials(held.file("repo")) == writing, "a .partial of a run holding the lock was touched")
        // Killed now: the lock it leaves names a process that is gone; verify --repo takes it over and cleans up.
        kill(hung.processIdentifier, SIGKILL)
        hung.waitUntilExit()
        let verify = try CrashPoints.run(["verify", "--repo", held.file("repo")], fault: nil)
        #expect(verify.ok, "\(verify.stderr)")
        for name in writing {
            #expect(verify.stderr.contains("removed \(held.file("repo"))/\(name) ("), "\(verify.stderr)")
        }
        #expect(verify.stderr.contains("left by an interrupted run that no longer holds the repository lock"), "\(verify.stderr)")
        #expect(Self.partials(held.file("repo")).isEmpty)

        // The killed one: the next backup removes its .partial, says so, and backs up as usual.
        let left = Self.partials(t.file("repo"))
        let next = try CrashPoints.run(args(t, 3), fault: nil)
        #expect(next.ok, "\(next.stderr)")
        for name in left {
            #expect(next.stderr.contains("thin-backup: warning: removed \(t.file("repo"))/\(name) ("), "\(next.stderr)")
        }
        #expect(Self.partials(t.file("repo")).isEmpty, "\(Self.partials(t.file("repo")))")
        let restored = t.file("restored.img")
        let r = try restoreToFile(t.file("repo"), to: restored)
        #expect(r.backup == 2, "\(r.chain)")
        #expect(wfFileBytes(restored) == w.model)
        #expect(try thinCheckClean(t.file("pool")))
    }
}
