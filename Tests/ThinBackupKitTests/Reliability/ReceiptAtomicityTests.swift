import Delta
import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// The resume point is never ahead of the committed pool, at any kill point of `receive`.
@Suite(.serialized) struct ReceiptAtomicityTests {
    struct Fixture {
        let dir = TempDir("receipt")
        let src: SourceChain
        let full: String, other: String
        let want: [UInt8]
        let sentDigest: String
        let empty: String

        init() throws {
            src = try SourceChain(seed: 21, rounds: 2)
            full = dir.file("full.tbs")
            other = dir.file("other.tbs")
            sentDigest = try send(src.path, src.snapshots[0], to: full).targetDigest!
            _ = try send(src.path, src.snapshots[1], to: other)
            want = try src.image(src.snapshots[0])
            empty = try emptyPool(dir, "empty")
        }

        func freshPool(_ name: String) throws -> String {
            let p = dir.file(name)
            try CrashPoints.copyPool(empty, p)
            return p
        }

        func receiveArgs(_ pool: String, checkpoint: String = "1M") -> [String] {
            ["receive", "--pool", pool, "--from", full, "--checkpoint", checkpoint, "--quiet"]
        }
    }

    /// The scenario: SIGKILL after the sidecar holding the new checkpoint was saved, before the
    /// metadata commit; then another receive commits; then --resume. Before the fix the stale receipt
    /// became valid and the resume skipped records (a device missing blocks, reported as a success).
    @Test func killBetweenReceiptSaveAndCommit() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let f = try Fixture()
        let counting = try f.freshPool("count")
        let steps = try CrashPoints.steps(f.receiveArgs(counting, checkpoint: "256K"), in: f.dir)
        let commits = steps.indices.filter { steps[$0] == "commit" }.map { $0 + 1 }
        try #require(commits.count >= 6, "want at least two checkpoints and the final commit: \(steps)")

        let pool = try f.freshPool("pool")
        // commits[2]: just before the second checkpoint's metadata commit (its sidecar already saved).
        let killed = try CrashPoints.run(f.receiveArgs(pool, checkpoint: "256K"), fault: "kill:\(commits[2])")
        #expect(killed.status == 128 + SIGKILL, "\(killed.stderr)")
        #expect(try thinCheck(pool).ok)

        let tok = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--resume-token"])
        #expect(tok.ok, "the first checkpoint must still be the resume point: \(tok.stderr)")

        // Another device's receive commits, moving the transaction id past the lost commit's.
        let other = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", f.other, "--as", "77", "--quiet"])
        #expect(other.ok, "\(other.stderr)")
        let tok2 = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--resume-token", "--as", "\(f.src.snapshots[0])"])
        #expect(tok2.stdout == tok.stdout, "the resume point moved: \(tok.stdout) → \(tok2.stdout)")

        let resumed = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", f.full, "--resume", "--quiet"])
        #expect(resumed.ok, "\(resumed.stderr)")
        #expect(try SourceChain.image(pool, f.src.snapshots[0]) == f.want)
        #expect(try CrashPoints.deviceDigest(pool, f.src.snapshots[0])?.description == f.sentDigest)
        #expect(try thinCheck(pool).ok)
    }

    /// A receive's commit saves pool.json once, before the metadata commit (its receipt pending
    /// until the metadata holds the new transaction id): the data sync, pool.json's sync and rename,
    /// the two sides of the metadata commit and its two flushes, and nothing after them (pool.json
    /// was saved again there, a sync and a rename more). The receipt is then what a fresh process
    /// reads: the same stream again is already received, a digest recomputed from the device is the
    /// sender's, thin_check is clean. (Kills at each of these steps: `killedAtEveryStep`.)
    @Test func receiveSavesPoolJSONOnceInItsCommit() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let f = try Fixture()
        let pool = try f.freshPool("once")
        let steps = try CrashPoints.steps(["receive", "--pool", pool, "--from", f.full, "--quiet"], in: f.dir)
        #expect(steps == ["sync", "sync", "rename", "commit", "sync", "sync", "commit"], "\(steps)")
        #expect(!FileManager.default.fileExists(atPath: "\(pool)/pool.json.tmp"))
        let again = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", f.full, "--json"])
        #expect(again.ok && again.stdout.contains("\"alreadyReceived\""), "\(again.stdout) \(again.stderr)")
        #expect(try CrashPoints.deviceDigest(pool, f.src.snapshots[0])?.description == f.sentDigest)
        #expect(try SourceChain.image(pool, f.src.snapshots[0]) == f.want)
        #expect(try thinCheck(pool).ok)
    }

    /// Kills `receive --checkpoint` at every durability step in turn. After each: thin_check clean;
    /// the device absent, or resumable, or complete; and `--resume` (or the same receive again)
    /// ends with the sender's bytes, checked by a digest recomputed from the device.
    @Test func killedAtEveryStep() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let f = try Fixture()
        let dev = f.src.snapshots[0]
        let steps = try CrashPoints.steps(f.receiveArgs(try f.freshPool("count")), in: f.dir)
        try #require(steps.count > 10)
        var resumed = 0, absent = 0, complete = 0
        for n in 1...steps.count {
            let pool = try f.freshPool("k\(n)")
            let r = try CrashPoints.run(f.receiveArgs(pool), fault: "kill:\(n)")
            #expect(r.status == 128 + SIGKILL, "step \(n) (\(steps[n - 1])): \(r.stderr)")
            #expect(try thinCheck(pool).ok, "step \(n)")
            let tok = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--resume-token"])
            let digest = try CrashPoints.deviceDigest(pool, dev)
            if tok.ok { resumed += 1 } else if digest == nil { absent += 1 } else {
                complete += 1
                #expect(digest?.description == f.sentDigest, "step \(n): a device with no resume point must be complete")
            }
            let again = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", f.full, "--resume", "--quiet"])
            #expect(again.ok, "step \(n): \(again.stderr)")
            #expect(try CrashPoints.deviceDigest(pool, dev)?.description == f.sentDigest, "step \(n)")
            #expect(try SourceChain.image(pool, dev) == f.want, "step \(n)")
            try? FileManager.default.removeItem(atPath: pool)
        }
        // Every outcome class was reached (the walk really crossed the commits).
        #expect(resumed > 0 && absent > 0 && complete > 0, "resumed \(resumed), absent \(absent), complete \(complete)")
    }

    /// Each durability step of `receive --checkpoint` failing with EIO in turn (`fail:N`): one error
    /// line and exit 1 (never a trap), thin_check clean, no `pool.json.tmp` left, the device absent or
    /// resumable or complete; after the check that clears NEEDS_CHECK, `--resume` ends with the right bytes.
    @Test func failingAtEveryStep() throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let f = try Fixture()
        let dev = f.src.snapshots[0]
        let steps = try CrashPoints.steps(f.receiveArgs(try f.freshPool("count")), in: f.dir)
        for n in 1...steps.count {
            let pool = try f.freshPool("f\(n)")
            let r = try CrashPoints.run(f.receiveArgs(pool), fault: "fail:\(n)")
            #expect(r.status == 1, "step \(n) (\(steps[n - 1])): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("injected \(steps[n - 1]) fault"), "step \(n): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(pool)/pool.json.tmp"), "step \(n): pool.json.tmp left behind")
            #expect(try thinCheck(pool).ok, "step \(n)")
            let cleared = try Tool.run(CrashPoints.binary, ["pool", "check", "--metadata", "\(pool)/metadata", "--clear-needs-check"])
            #expect(cleared.ok, "step \(n): \(cleared.stderr)")
            let again = try Tool.run(CrashPoints.binary, ["receive", "--pool", pool, "--from", f.full, "--resume", "--quiet"])
            #expect(again.ok, "step \(n): \(again.stderr)")
            #expect(try CrashPoints.deviceDigest(pool, dev)?.description == f.sentDigest, "step \(n)")
            try? FileManager.default.removeItem(atPath: pool)
        }
    }
}
