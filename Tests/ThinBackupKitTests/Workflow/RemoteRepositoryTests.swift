import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("Backup workflows: S3 repository (moto), migration to a serve receiver", .serialized)
struct RemoteRepositoryTests {
    @Test func nightlyBackupsIntoS3() throws {
        let moto = try MotoServer()
        var o = fastRetry()
        o.s3Endpoint = moto.endpoint
        o.environment = moto.environment()
        let repo = "s3://\(moto.bucket)/backups/host1"
        let w = try WorkflowPool(seed: 31)
        var models: [[UInt8]] = []
        for day in 0..<6 {
            try w.day()
            models.append(w.model)
            _ = try backup(w, repo: repo, at: nightly(day), options: o)
            if day == 3 {
                var p = PruneRequest(repo: repo, policy: RetentionPolicy(last: 2))
                p.options = o
                let r = try runPrune(p)
                #expect(r.removed.count == 2 && r.rebased.count == 1)
            }
        }
        // A new host: restores from the repository alone.
        let listed = try BackupRepository(repo, options: o).catalog.all()
        #expect(listed.count == 4)
        for (i, b) in listed.enumerated() {
            let out = w.dir.file("s3-\(i).img")
            _ = try restoreToFile(repo, id: b.id, to: out, options: o)
            let day = Int((b.createdAt - nightly(0).timeIntervalSince1970) / 86400)
            #expect(wfFileBytes(out) == models[day], "restore of day \(day) from S3 differs")
        }
        let v = try verifyRepository(repo, deep: true, quiet: true, options: o)
        #expect(v.ok && v.restoredAndCompared == 4, "\(v.problems)")
        // The next backup continues this repository's chain (the pool's state for it names the base).
        try w.day()
        let next = try backup(w, repo: repo, at: nightly(6), options: o)
        #expect(next.kind == "incremental")
    }

    /// An http(s) repository (nginx WebDAV): no listing, the catalog names every object.
    @Test func backupsIntoHTTPRepository() throws {
        let nginx = try NginxServer()
        let repo = nginx.url + "/repos/web1"
        let o = fastRetry()
        let w = try WorkflowPool(seed: 8)
        var models: [[UInt8]] = []
        for day in 0..<4 {
            try w.day()
            models.append(w.model)
            _ = try backup(w, repo: repo, at: nightly(day), options: o)
        }
        var p = PruneRequest(repo: repo, policy: RetentionPolicy(last: 2))
        p.options = o
        let pr = try runPrune(p)
        #expect(pr.removed.count == 2 && pr.rebased.count == 1)
        // What nginx holds: exactly the catalog and the kept streams (no lock left, removed streams gone).
        let kept = try BackupRepository(repo, options: o).catalog.all()
        let files = FileManager.default.enumerator(atPath: nginx.root + "/repos/web1")!.allObjects.compactMap { $0 as? String }
            .filter { !$0.hasSuffix("/") && !FileManager.default.fileExists(atPath: nginx.root + "/repos/web1/" + $0 + "/.") }
        #expect(Set(files.filter { $0.hasSuffix(".tbs") || $0 == "catalog.sqlite" || $0 == "lock" })
                == Set(kept.map(\.object) + ["catalog.sqlite"]))
        for b in kept {
            let out = w.dir.file("http-\(b.id!).img")
            _ = try restoreToFile(repo, id: b.id, to: out, options: o)
            let day = Int((b.createdAt - nightly(0).timeIntervalSince1970) / 86400)
            #expect(wfFileBytes(out) == models[day])
        }
        #expect(try verifyRepository(repo, deep: true, quiet: true, options: o).ok)
    }

    @Test func migrationWhileWrittenEndsEqualToFrozenSource() throws {
        let w = try WorkflowPool(seed: 99, blocks: 64)
        try w.day(writes: 40)
        let dst = w.dir.file("dst")
        try ThinPool.create(folder: dst, dataSize: 64 << 20).close()
        let token = "migrate-token-\(UInt64.random(in: 0 ... .max))"
        let tokenFile = w.dir.file("token")
        try token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var config = ReceiverConfiguration(host: "127.0.0.1", port: 0, token: token)
        config.logger.logLevel = .critical
        let server = try ReceiverServer.start(config, receiver: try PoolStreamReceiver(pool: UserspacePool(folder: dst)))
        defer { server.stop() }

        // A writer keeps changing the device (under the pool lock, as the userspace pool's users must)
        // until the freeze command asks it to stop; then it says so.
        let freeze = w.dir.file("freeze"), stopped = w.dir.file("stopped")
        let writes = Counter()
        let writer = Thread {
            var rng = SeededRNG(seed: 4242)
            while !FileManager.default.fileExists(atPath: freeze) {
                do {
                    let lock = try PoolLock(pool: w.pool, command: "test writer", wait: true)
                    let p = try ThinPool(folder: w.pool)
                    let block = Int(rng.next() % 64)
                    try p.write(1, offset: UInt64(block * 65536), [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: 65536))
                    try p.commit()
                    p.close()
                    lock.release()
                    writes.add()
                } catch {
                    writes.fail("\(error)")
                }
                usleep(3000)
            }
            _ = FileManager.default.createFile(atPath: stopped, contents: nil)
        }
        writer.start()
        var req = MigrateRequest(pool: UserspacePool(folder: w.pool), dev: 1, to: "tb://127.0.0.1:\(server.port)")
        req.untilDelta = 3 * 65536
        req.maxRounds = 6
        req.freezeCommand = "touch '\(freeze)'; while [ ! -e '\(stopped)' ]; do sleep 0.01; done"
        req.options = fastRetry()
        req.options.tokenFile = tokenFile
        var writesAtRound: [Int] = []
        req.onRound = { _ in writesAtRound.append(writes.value) }
        let r = try runMigrate(req)
        #expect(writes.errors.isEmpty, "\(writes.errors)")
        #expect(r.rounds.count >= 2 && r.rounds.last!.frozen && r.rounds.dropLast().allSatisfy { !$0.frozen })
        #expect(writesAtRound.count == r.rounds.count && writesAtRound.first! < writesAtRound.last!,
                "the writer did not write during the migration")
        #expect(r.rounds[0].base == nil && r.rounds.dropFirst().allSatisfy { $0.base != nil })
        // The final device on the receiver equals the frozen source (the writer has stopped).
        let frozen = try w.deviceBytes()
        #expect(try w.deviceBytes(r.finalSnapshot, pool: dst) == frozen)
        #expect(try w.deviceBytes(r.finalSnapshot) == frozen, "the source keeps the final snapshot")
        #expect(try thinCheckClean(dst) && thinCheckClean(w.pool))
        #expect(r.downtimeSeconds >= 0 && r.downtimeSeconds <= r.seconds)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    private var errs: [String] = []
    func add() { lock.lock(); n += 1; lock.unlock() }
    func fail(_ e: String) { lock.lock(); errs.append(e); lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return n }
    var errors: [String] { lock.lock(); defer { lock.unlock() }; return errs }
}
