import Foundation
import Testing
@testable import ThinBackupKit
import TestSupport

/// SIGINT/SIGTERM to a `backup` holding the repository lock: the lock goes with the process
/// (a lock left behind would refuse every later run on another host, or over HTTP/S3, where
/// no pid can be checked), and the next backup runs.
@Suite struct LockSignalTests {
    @Test(arguments: [SIGTERM, SIGINT])
    func signalReleasesTheRepositoryLock(_ sig: Int32) throws {
        try #require(FileManager.default.isExecutableFile(atPath: CrashPoints.binary), "build first: \(CrashPoints.binary)")
        let w = try WorkflowPool(seed: 40 + UInt64(sig), blocks: 16)
        let repo = w.dir.file("repo")
        try w.day()
        _ = try backup(w, repo: repo, at: nightly(0))
        try w.day()
        let args = ["backup", "--pool", w.pool, "--dev", "1", "--repo", repo, "--now", "2026-03-02T02:00:00Z", "--quiet"]

        // Stopped at its first durability step (the backup snapshot's commit), after it took the lock.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CrashPoints.binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["THIN_BACKUP_FAULT"] = "hang:1"
        p.environment = env
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Wait for the line saying it stopped there (stderr read as it comes).
        var said = ""
        while !said.contains("stopped at step 1") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said += String(decoding: chunk, as: UTF8.self)
        }
        #expect(said.contains("stopped at step 1"), "the backup did not stop at its first step: \(said)")
        let lock = "\(repo)/\(RepositoryLock.name)"
        let holder = FileManager.default.contents(atPath: lock).flatMap { try? JSONDecoder().decode(LockHolder.self, from: $0) }
        #expect(holder?.pid == p.processIdentifier && holder?.command.hasPrefix("backup") == true, "the backup does not hold the lock")

        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        let stderr = said + String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == sig, "ended \(p.terminationReason) \(p.terminationStatus): \(stderr)")
        #expect(stderr.contains("release the repository lock"), "\(stderr)")
        #expect(!FileManager.default.fileExists(atPath: lock), "the repository lock outlived the signalled backup")

        #expect(try thinCheck(w.pool).ok)
        let next = try Tool.run(CrashPoints.binary, args)
        #expect(next.ok, "the next backup: \(next.stderr)")
        #expect(!FileManager.default.fileExists(atPath: lock))
    }
}
