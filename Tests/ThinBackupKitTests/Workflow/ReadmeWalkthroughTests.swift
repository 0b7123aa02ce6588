import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// Runs README.md's workflow walk-throughs exactly as written: the fenced `sh` blocks between
/// `<!-- walkthrough:NAME -->` and `<!-- /walkthrough -->`, with the built thin-backup first on PATH.
@Suite("README walk-throughs: backups, restore, prune, migrate", .serialized)
struct ReadmeWalkthroughTests {
    static func blocks(_ name: String) throws -> String {
        let readme = try String(contentsOfFile: Repo.root + "/README.md", encoding: .utf8)
        guard let start = readme.range(of: "<!-- walkthrough:\(name) -->"),
              let end = readme.range(of: "<!-- /walkthrough -->", range: start.upperBound..<readme.endIndex) else {
            throw JobError("README.md has no walkthrough:\(name)")
        }
        var out: [String] = []
        var inBlock = false
        for line in readme[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inBlock = line == "```sh" ? true : false
                continue
            }
            if inBlock { out.append(String(line)) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    func run(_ script: String, in dir: TempDir, env: [String: String] = [:]) throws -> Tool.Result {
        let tb = try Net.thinBackup()
        let path = (tb as NSString).deletingLastPathComponent + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
        let file = dir.file("walkthrough-\(UInt32.random(in: 0 ... .max)).sh")
        try ("cd '\(dir.path)'\nexport PATH='\(path)'\n" + env.map { "export \($0.key)='\($0.value)'\n" }.joined() + script)
            .write(toFile: file, atomically: true, encoding: .utf8)
        // Under the test runner, children inherit a signal mask blocking SIGTERM (so `kill $SERVER` would
        // not stop the background server): unblock everything, as a login shell would have it.
        let unblock = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
            + "os.execv('/bin/bash', ['/bin/bash', '-eo', 'pipefail', sys.argv[1]])"
        return try Tool.run("python3", ["-c", unblock, file])
    }

    @Test func restoreNightlyAndMigrateWalkthroughsRunAsWritten() throws {
        let dir = TempDir("tb-readme")
        let restore = try run(try Self.blocks("restore"), in: dir)
        #expect(restore.ok, "restore walk-through failed:\n\(restore.stdout)\n\(restore.stderr)")
        #expect(restore.stdout.contains("restored backup 1 (2026-03-02T02:30:00Z"))
        #expect(restore.stdout.contains("2 backups, 2 streams checked") && restore.stdout.contains("2 restored and compared: OK"))

        // The nightly job, against the walk-through's pool and a folder repository, on three nights.
        for night in ["2026-03-04", "2026-03-05", "2026-03-06"] {
            let r = try run(try Self.blocks("nightly"), in: dir,
                            env: ["POOL": dir.file("pool"), "REPO": dir.file("repo"), "THIN_BACKUP_NOW": night + "T02:30:00Z"])
            #expect(r.ok && r.stdout.isEmpty && r.stderr.isEmpty, "nightly job on \(night):\n\(r.stdout)\n\(r.stderr)")
        }
        let listed = try BackupRepository(dir.file("repo")).catalog.all()
        // keep-last 3 / daily 7 keep all five nights (03-02 … 03-06), newest first in the buckets.
        #expect(listed.count == 5 && listed.last!.createdAt == WorkflowClock.parse("2026-03-06T02:30:00Z")!.timeIntervalSince1970)

        let migrate = try run(try Self.blocks("migrate"), in: dir)
        #expect(migrate.ok, "migrate walk-through failed:\n\(migrate.stdout)\n\(migrate.stderr)")
        #expect(migrate.stdout.contains("matches digest"))
        #expect(migrate.stderr.contains("stopping the service"))
        // The JSON summary alone is on stdout: final device, rounds, downtime.
        let data = try #require(FileManager.default.contents(atPath: dir.file("migrate.json")))
        let report = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let rounds = try #require(report["rounds"] as? [[String: Any]])
        #expect(rounds.count >= 2 && (rounds.last?["frozen"] as? Bool) == true && report["downtimeSeconds"] is Double)
    }
}
