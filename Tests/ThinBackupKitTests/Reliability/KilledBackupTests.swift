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
}
