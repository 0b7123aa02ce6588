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
        #expect(j.volumes == [JobVolume(name: "db", line: 11, source: .poolFolder(path: "/srv/pool", dev: 1)),
                              JobVolume(name: "web-1", line: 16, source: .poolFolder(path: "/srv/other pool", dev: 16_777_215))])
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
        ("repository = /r\n[volume a]\ndev = 1\n", 2, "volume a: no 'pool"),
        ("repository = /r\n[volume a]\npool = /p\n", 2, "volume a: no 'dev"),
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
        ("repository = /r\n[volume a]\nlv = vg0/data\n", 3, "kernel pool kinds"),
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
