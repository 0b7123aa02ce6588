import Foundation
import Testing
@testable import ThinBackupKit

@Suite("Job files: syntax, keys and values, each error naming file and line")
struct JobFileTests {
    static let good = """
        # nightly job
        repository = "/srv/backup/repo #1"   # a quoted value keeps its '#'
        keep-last = 7
        keep-weekly = 4
        verify-every = 7d
        verify-deep = yes
        level = 5
        max-runtime = 90m
        state-dir = /var/tmp/tb-state

        [volume db]
        pool = /srv/pool
        dev = 1

        ; another volume
        [volume web-1]
        pool = /srv/other pool
        dev = 16777215

        [volume root]
        lv = vg0/root_lv.1

        [volume scratch]
        dev = 7
        dm-pool = "pool-0"
        """

    @Test func readsEveryKey() throws {
        let j = try JobConfig.parse(Self.good, path: "/etc/thin-backup/jobs/nightly.conf")
        #expect(j.name == "nightly")
        #expect(j.repository == "/srv/backup/repo #1")
        #expect(j.repositoryLine == 2)
        #expect(j.retention == RetentionPolicy(last: 7, daily: 0, weekly: 4, monthly: 0))
        #expect(j.verifyEvery == TimeInterval(7 * 86400))
        #expect(j.verifyDeep)
        #expect(j.level == 5 && j.workers == 1)
        #expect(j.maxRuntime == 5400)
        #expect(j.stateDir == "/var/tmp/tb-state")
        #expect(j.volumes == [JobVolume(name: "db", line: 11, pool: .folder("/srv/pool"), dev: 1),
                              JobVolume(name: "web-1", line: 16, pool: .folder("/srv/other pool"), dev: 16_777_215),
                              JobVolume(name: "root", line: 20, pool: .lv("vg0/root_lv.1"), dev: nil),
                              JobVolume(name: "scratch", line: 23, pool: .dmPool("pool-0"), dev: 7)])
    }

    /// A volume names its pool as the command line does (`--pool`, `--dm-pool`, `--lv`): the same selection, opened the same way.
    @Test func volumesNamePoolsAsTheCommandLineDoes() throws {
        let j = try JobConfig.parse(Self.good, path: "/etc/thin-backup/jobs/nightly.conf")
        let cli = [["--pool", "/srv/pool"], ["--pool", "/srv/other pool"], ["--lv", "vg0/root_lv.1"], ["--dm-pool", "pool-0"]]
        #expect(try cli.map { try PoolOptions.parse($0).selection } == j.volumes.map(\.pool))
        #expect(try PoolOptions.parse(["--metadata", "/m", "--data", "/d"]).selection == .files(metadata: "/m", data: "/d"))
        #expect(try PoolOptions.parse(["--thin-pool", "vg0/tp"]).selection == .thinPool("vg0/tp"))
        #expect(try PoolOptions.parse([]).selection == nil)
    }

    @Test func noRetentionMeansNoPrune() throws {
        let j = try JobConfig.parse("repository = /r\n[volume a]\npool = /p\ndev = 1\n", path: "a.conf")
        #expect(j.retention == nil && j.verifyEvery == nil && j.maxRuntime == nil)
    }

    /// Each bad file: the error is "FILE:LINE: message" on one line, with the right line.
    @Test(arguments: [
        ("repository = /r\nkeep-lst = 3\n[volume a]\npool = /p\ndev = 1\n", 2, "unknown key 'keep-lst'"),
        ("repository = /r\n[volume a]\npool = /p\ndev = 1\ncolour = red\n", 5, "volume a: unknown key 'colour'"),
        ("repository = /r\n[volume a]\npool = /p\ndev = 1\nkeep-last = 2\n", 5, "job-wide key"),
        ("repository = /r\npool = /p\n[volume a]\npool = /p\ndev = 1\n", 2, "belongs in a [volume NAME] section"),
        ("repository = /r\n[volume a]\npool = /p\ndev = 1\n[volume a]\npool = /q\ndev = 2\n", 5, "already defined on line 2"),
        ("repository = /r\nlevel = 3\nlevel = 4\n[volume a]\npool = /p\ndev = 1\n", 3, "already set on line 2"),
        ("keep-last = 1\n[volume a]\npool = /p\ndev = 1\n", 0, "no 'repository"),
        ("repository = /r\n", 0, "nothing to back up"),
        ("repository = /r\n[volume a]\ndev = 1\n", 2, "volume a: no 'pool = DIR', 'dm-pool = NAME' or 'lv = VG/LV'"),
        ("repository = /r\n[volume a]\npool = /p\n", 2, "volume a: no 'dev = N' (the thin device on its pool)"),
        ("repository = /r\n[volume a]\ndm-pool = tp\n", 2, "volume a: no 'dev = N' (the thin device on its dm-pool)"),
        ("repository = /r\n[volume a]\nlv = vg0/data\ndev = 3\n", 4, "dev does not go with lv"),
        ("repository = /r\n[volume a]\npool = /p\nlv = vg0/data\n", 4, "give one of pool, dm-pool and lv ('pool' is on line 3)"),
        ("repository = /r\n[volume a]\nlv = vg0/data\ndm-pool = tp\ndev = 1\n", 4, "give one of pool, dm-pool and lv ('lv' is on line 3)"),
        ("repository = /r\n[volume a]\nlv = data\n", 3, "lv must be VG/LV"),
        ("repository = /r\n[volume a]\nlv = vg0/data/x\n", 3, "lv must be VG/LV"),
        ("repository = /r\n[volume a]\nlv = vg0/\n", 3, "lv must be VG/LV"),
        ("repository = /r\n[volume a]\nlv = vg0/-data\n", 3, "lv must be VG/LV"),
        ("repository = /r\n[volume a]\nlv = \"vg 0/data\"\n", 3, "lv must be VG/LV"),
        ("repository = /r\n[volume a]\ndm-pool = vg0/pool\ndev = 1\n", 3, "dm-pool must be a device-mapper name"),
        ("repository = /r\n[volume a]\ndm-pool = \"\"\ndev = 1\n", 3, "dm-pool must be a device-mapper name"),
        ("repository = /r\n[volume a]\ndm-pool = tp\ndev = 16777216\n", 4, "thin device id"),
        ("repository = /r\nlv = vg0/data\n[volume a]\npool = /p\ndev = 1\n", 2, "belongs in a [volume NAME] section"),
        ("repository = /r\n[volume a]\npool = /p\ndev = 16777216\n", 4, "thin device id"),
        ("repository = /r\n[volume a]\npool = /p\ndev = -1\n", 4, "thin device id"),
        ("repository = /r\nkeep-last = 99999999999999999999\n[volume a]\npool = /p\ndev = 1\n", 2, "whole number"),
        ("repository = /r\nverify-every = 9223372036854775807w\n[volume a]\npool = /p\ndev = 1\n", 2, "too long"),
        ("repository = /r\nverify-every = soon\n[volume a]\npool = /p\ndev = 1\n", 2, "duration"),
        ("repository = /r\nverify-deep = maybe\n[volume a]\npool = /p\ndev = 1\n", 2, "yes or no"),
        ("repository = /r\nlevel = 20\n[volume a]\npool = /p\ndev = 1\n", 2, "1 to 19"),
        ("repository = \"/r\n[volume a]\npool = /p\ndev = 1\n", 1, "unterminated"),
        ("repository = /r\n[volume a b]\n", 2, "unknown section"),
        ("repository = /r\n[pools]\n", 2, "unknown section"),
        ("repository = /r\njust words\n", 2, "expected KEY = VALUE"),
        ("repository = /r\nkey-file = \"\"\n[volume a]\npool = /p\ndev = 1\n", 2, "key-file is empty"),
        ("repository = /r\nstate-dir = relative\n[volume a]\npool = /p\ndev = 1\n", 2, "absolute"),
    ])
    func badFileNamesFileAndLine(text: String, line: Int, fragment: String) {
        do {
            _ = try JobConfig.parse(text, path: "/jobs/x.conf")
            Issue.record("accepted: \(text)")
        } catch let e as JobError {
            #expect(e.description.hasPrefix(line > 0 ? "/jobs/x.conf:\(line): " : "/jobs/x.conf: "), "\(e)")
            #expect(e.description.contains(fragment), "\(e)")
            #expect(!e.description.contains("\n"))
            #expect(e.code == .usage)
        } catch {
            Issue.record("not a JobError: \(error)")
        }
    }

    @Test func missingFileIsNamed() {
        let e = #expect(throws: JobError.self) { try JobConfig.load(path: "/nonexistent/j.conf") }
        #expect(e?.message == "/nonexistent/j.conf: no such job file")
        #expect(e?.code == .usage)
    }

    @Test func namesResolveInTheJobsFolder() {
        #expect(RunCommand.resolve("nightly", environment: [:]) == "/etc/thin-backup/jobs/nightly.conf")
        #expect(RunCommand.resolve("nightly", environment: ["THIN_BACKUP_JOBS": "/tmp/j"]) == "/tmp/j/nightly.conf")
        #expect(RunCommand.resolve("./nightly", environment: [:]) == "./nightly")
        #expect(RunCommand.resolve("n.conf", environment: [:]) == "n.conf")
    }
}
