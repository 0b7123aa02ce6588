import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Two userspace pools with thin devices of known content, and a job file naming them.
final class JobFixture: @unchecked Sendable {
    let dir = TempDir("tb-job")
    var poolA: String { dir.file("poolA") }
    var poolB: String { dir.file("poolB") }
    var repo: String { dir.file("repo") }
    var state: String { dir.file("state") }
    var jobFile: String { dir.file("nightly.conf") }

    init() throws {
        for (pool, devs) in [(poolA, [1, 2] as [UInt64]), (poolB, [5])] {
            let p = try ThinPool.create(folder: pool, dataSize: 8 << 20)
            for d in devs {
                try p.createThin(d, virtualSize: 1 << 20)
                try p.write(d, offset: 4096 * d, [UInt8](repeating: UInt8(d), count: 70_000))
            }
            try p.commit()
            p.close()
        }
    }

    /// Writes the job file: `extra` job-wide lines, then volumes a (poolA/1), b (poolB/5), c (poolA/2).
    @discardableResult
    func write(_ extra: String = "", volumes: String? = nil) throws -> JobConfig {
        let text = """
            repository = \(repo)
            state-dir = \(state)
            \(extra)

            """ + (volumes ?? """
            [volume a]
            pool = \(poolA)
            dev = 1

            [volume b]
            pool = \(poolB)
            dev = 5

            [volume c]
            pool = \(poolA)
            dev = 2
            """)
        try text.write(toFile: jobFile, atomically: true, encoding: .utf8)
        return try JobConfig.load(path: jobFile)
    }

    func devices(_ pool: String) throws -> [UInt64] {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        return try p.devices()
    }

    func catalog() throws -> [BackupRecord] {
        let r = try BackupRepository(repo)
        defer { r.close() }
        return try r.catalog.all()
    }
}

func jobOptions(_ iso: String, metrics: String? = nil) -> JobRunOptions {
    var o = JobRunOptions()
    o.now = WorkflowClock.parse(iso)!
    o.metricsFile = metrics
    o.logger.logLevel = .critical
    return o
}

@Suite("run JOB against the userspace pool: every volume, prune, verify, one lock", .serialized)
struct JobRunTests {
    @Test func backsUpEveryVolumeThenIncrementally() throws {
        let f = try JobFixture()
        let job = try f.write()
        let r1 = try runJob(job, jobOptions("2026-03-01T02:00:00Z"))
        #expect(r1.exitCode == 0)
        #expect(r1.volumes.map(\.volume) == ["a", "b", "c"])
        #expect(r1.volumes.allSatisfy { $0.ok && $0.kind == "full" && $0.backupsKept == 1 })
        let r2 = try runJob(job, jobOptions("2026-03-02T02:00:00Z"))
        #expect(r2.volumes.allSatisfy { $0.ok && $0.kind == "incremental" && $0.backupsKept == 2 }, "\(r2.volumes)")
        let cat = try f.catalog()
        #expect(Set(cat.map { "\($0.dev)" }) == ["1", "2", "5"])
        #expect(cat.count == 6)
        // Each device's backup restores to its content.
        for (dev, byte) in [(UInt64(1), UInt8(1)), (2, 2), (5, 5)] {
            let newest = cat.filter { $0.dev == dev }.last!
            let out = f.dir.file("restore-\(dev).img")
            var rr = RestoreRequest(repo: f.repo, dev: dev, to: out)
            rr.id = newest.id
            _ = try runRestore(rr)
            let bytes = [UInt8](FileManager.default.contents(atPath: out)!)
            #expect(bytes.count == 1 << 20)
            #expect(bytes[Int(4096 * dev)..<Int(4096 * dev) + 70_000].allSatisfy { $0 == byte }, "device \(dev)")
            #expect(bytes[0..<Int(4096 * dev)].allSatisfy { $0 == 0 })
        }
        let state = try JobState.load(job)
        #expect(state.lastSuccess == WorkflowClock.parse("2026-03-02T02:00:00Z")!.timeIntervalSince1970)
        #expect(state.volumes["b"]?.lastBackupID == r2.volumes[1].backup)
    }

    /// Volume b's pool is held by another run: a and c are still backed up, the exit code is 3,
    /// and b's error names the job and the volume.
    @Test func oneVolumeFailingDoesNotStopTheOthers() throws {
        let f = try JobFixture()
        let job = try f.write()
        let holder = try PoolLock(pool: f.poolB, command: "test holding pool B")
        let r = try runJob(job, jobOptions("2026-03-01T02:00:00Z", metrics: f.dir.file("m.prom")))
        holder.release()
        #expect(r.exitCode == ExitStatus.partial)
        #expect(r.volumes.map(\.ok) == [true, false, true])
        let err = r.volumes[1].error ?? ""
        #expect(err.hasPrefix("job nightly, volume b: "), "\(err)")
        #expect(err.contains("in use by `test holding pool B`"), "\(err)")
        #expect(try f.catalog().map(\.dev).sorted() == [1, 2])
        #expect(try f.devices(f.poolB) == [5], "a failed volume leaves its pool as it was")
        let state = try JobState.load(job)
        #expect(state.lastSuccess == nil)
        #expect(state.volumes["b"]?.lastSuccess == nil && state.volumes["b"]?.lastRunOK == false)
        #expect(state.volumes["a"]?.lastRunOK == true)

        // Next night pool B is free again: everything succeeds.
        let r2 = try runJob(job, jobOptions("2026-03-02T02:00:00Z"))
        #expect(r2.exitCode == 0 && r2.volumes.allSatisfy(\.ok))
        #expect(r2.volumes[1].kind == "full" && r2.volumes[0].kind == "incremental")
    }

    @Test func everyVolumeFailingIsFailure() throws {
        let f = try JobFixture()
        let job = try f.write(volumes: "[volume b]\npool = \(f.poolB)\ndev = 5\n")
        let holder = try PoolLock(pool: f.poolB, command: "holder")
        defer { holder.release() }
        #expect(try runJob(job, jobOptions("2026-03-01T02:00:00Z")).exitCode == 1)
    }

    @Test func prunesByTheJobsRetention() throws {
        let f = try JobFixture()
        let job = try f.write("keep-last = 2")
        for day in 1...4 {
            let r = try runJob(job, jobOptions("2026-03-0\(day)T02:00:00Z"))
            #expect(r.exitCode == 0)
            #expect(r.prune?.ok == true)
            #expect(r.volumes.allSatisfy { $0.backupsKept == min(day, 2) }, "day \(day): \(r.volumes)")
        }
        let cat = try f.catalog()
        #expect(cat.count == 6)
        #expect(Set(cat.map { Int(($0.createdAt - WorkflowClock.parse("2026-03-01T02:00:00Z")!.timeIntervalSince1970) / 86400) + 1 }) == [3, 4])
    }

    @Test func verifiesOnTheScheduleItSets() throws {
        let f = try JobFixture()
        let job = try f.write("verify-every = 2d", volumes: "[volume a]\npool = \(f.poolA)\ndev = 1\n")
        let r1 = try runJob(job, jobOptions("2026-03-01T02:00:00Z"))
        #expect(r1.verify?.ok == true && r1.verify?.streamsChecked == 1, "the first run verifies (never verified)")
        let r2 = try runJob(job, jobOptions("2026-03-02T02:00:00Z"))
        #expect(r2.verify == nil, "one day later: not due")
        let r3 = try runJob(job, jobOptions("2026-03-03T02:00:00Z"))
        #expect(r3.verify?.ok == true && r3.verify?.streamsChecked == 3, "two days after the last verify: due")

        // A damaged stream: the verify finds it and the run fails.
        let victim = try f.catalog().last!
        let path = f.repo + "/" + victim.object
        var bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        bytes[bytes.count / 2] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r4 = try runJob(job, jobOptions("2026-03-05T02:00:00Z"))
        #expect(r4.verify?.ok == false && r4.verify?.problems.isEmpty == false)
        #expect(r4.exitCode == 1)
    }

    @Test func maxRuntimeStopsStartingVolumes() throws {
        let f = try JobFixture()
        let job = try f.write("max-runtime = 60s")
        var o = jobOptions("2026-03-01T02:00:00Z")
        var t = 0.0
        o.clock = { t += 15; return t }  // each reading is 15 s later: c would start 75 s after the run
        let r = try runJob(job, o)
        #expect(r.volumes.map(\.ok) == [true, true, false], "\(r.volumes)")
        #expect(r.volumes[2].error?.contains("max-runtime") == true)
        #expect(r.exitCode == ExitStatus.partial)
        #expect(try f.devices(f.poolA).count == 3, "a's snapshot stays; c was never snapshotted")
    }

    @Test func secondRunOfTheSameJobIsRefusedAsBusy() throws {
        let f = try JobFixture()
        let job = try f.write()
        try FileManager.default.createDirectory(atPath: f.state, withIntermediateDirectories: true)
        let held = try PoolLock(path: "\(f.state)/nightly.lock", what: "job nightly", command: "run nightly")
        defer { held.release() }
        do {
            _ = try runJob(job, jobOptions("2026-03-01T02:00:00Z"))
            Issue.record("ran while the job lock was held")
        } catch let e as JobError {
            #expect(ExitStatus.code(e.code) == 75)
            #expect(e.message.contains("job nightly is in use"), "\(e.message)")
        }
        #expect(!FileManager.default.fileExists(atPath: f.repo))
    }

    /// Checks of the world: each names the file, the line and the volume; nothing starts.
    @Test func badJobStartsNothing() throws {
        let f = try JobFixture()
        let missingDM = "tb-no-such-pool-\(UInt32.random(in: 0 ... .max))", missingVG = "tbnovg\(UInt32.random(in: 0 ... .max))"
        let cases: [(JobConfig, Int, String)] = [
            (try f.write(volumes: "[volume a]\npool = \(f.poolA)\ndev = 1\n\n[volume gone]\npool = \(f.poolA)\ndev = 9\n"),
             8, "volume gone: pool \(f.poolA) has no thin device 9"),
            (try f.write(volumes: "[volume a]\npool = \(f.poolA)\ndev = 1\n[volume x]\npool = \(f.dir.file("nopool"))\ndev = 1\n"),
             7, "volume x: no pool folder"),
            // Kernel volumes are opened as --dm-pool and --lv open them: one not there is named at its section.
            (try f.write(volumes: "[volume a]\npool = \(f.poolA)\ndev = 1\n[volume kern]\ndm-pool = \(missingDM)\ndev = 1\n"),
             7, "volume kern: cannot open dm pool \(missingDM): "),
            (try f.write(volumes: "[volume a]\npool = \(f.poolA)\ndev = 1\n[volume root]\nlv = \(missingVG)/root\n"),
             7, "volume root: cannot open LVM volume \(missingVG)/root: "),
        ]
        for (job, line, fragment) in cases {
            do {
                _ = try runJob(job, jobOptions("2026-03-01T02:00:00Z"))
                Issue.record("ran: \(fragment)")
            } catch let e as JobError {
                #expect(e.description.hasPrefix("\(f.jobFile):\(line): "), "\(e)")
                #expect(e.description.contains(fragment), "\(e)")
                #expect(e.code == .failure)
            }
            #expect(try f.devices(f.poolA) == [1, 2], "no snapshot was taken")
            #expect(!FileManager.default.fileExists(atPath: f.repo), "the repository was not created")
        }
        // A repository nobody answers for (a closed port): named at the repository line.
        try """
            state-dir = \(f.state)
            repository = http://127.0.0.1:9/repo
            [volume a]
            pool = \(f.poolA)
            dev = 1
            """.write(toFile: f.jobFile, atomically: true, encoding: .utf8)
        do {
            _ = try runJob(try JobConfig.load(path: f.jobFile), jobOptions("2026-03-01T02:00:00Z"))
            Issue.record("ran against an unreachable repository")
        } catch let e as JobError {
            #expect(e.description.hasPrefix("\(f.jobFile):2: repository http://127.0.0.1:9/repo is not reachable"), "\(e)")
        }
        #expect(try f.devices(f.poolA) == [1, 2])
    }
}
