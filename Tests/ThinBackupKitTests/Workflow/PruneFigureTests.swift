import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// prune's "freed" figure is the repository's real size change (streams deleted, consolidated
/// streams written, the catalog's change), and a dry run reports the same figure. Measured
/// independently: the folder's files, nginx's files on disk, moto's listing (boto3).
@Suite("prune: the freed figure is the real size change", .serialized)
struct PruneFigureTests {
    /// Sum of the sizes of the regular files under `dir`.
    static func folderBytes(_ dir: String) -> Int64 {
        var total: Int64 = 0
        let e = FileManager.default.enumerator(atPath: dir)
        while let n = e?.nextObject() as? String {
            if let a = try? FileManager.default.attributesOfItem(atPath: "\(dir)/\(n)"), a[.type] as? FileAttributeType == .typeRegular {
                total += (a[.size] as? NSNumber)?.int64Value ?? 0
            }
        }
        return total
    }

    /// Nights of backups, then prunes (each: a dry run, then the real run), comparing the figures.
    func walk(repo: String, options: TransportOptions, usage: () throws -> Int64) throws {
        let w = try WorkflowPool(seed: 1830, blocks: 48)
        var models: [Int64: [UInt8]] = [:]
        var night = 0
        var consolidated = 0
        for policy in [RetentionPolicy(last: 3), RetentionPolicy(last: 2), RetentionPolicy(last: 1)] {
            for _ in 0..<4 {
                try w.day(writes: 8)
                models[try backup(w, repo: repo, at: nightly(night), options: options).id] = w.model
                night += 1
            }
            var req = PruneRequest(repo: repo, policy: policy)
            req.options = options
            req.dryRun = true
            let before = try usage()
            let dry = try runPrune(req)
            #expect(try usage() == before, "a dry run changed the repository")
            req.dryRun = false
            let real = try runPrune(req)
            let after = try usage()
            #expect(dry.freedBytes == real.freedBytes, "dry run \(dry.freedBytes), real run \(real.freedBytes)")
            #expect(real.freedBytes == before - after, "prune said \(real.freedBytes) freed, the repository shrank by \(before - after)")
            #expect(dry.rebased.map(\.streamBytes) == real.rebased.map(\.streamBytes))
            #expect(!real.removed.isEmpty)
            consolidated += real.rebased.count
        }
        #expect(consolidated >= 2, "no chain was consolidated")
        // Everything kept still restores.
        let h = try BackupRepository(repo, options: options)
        let kept = try h.catalog.all()
        h.close()
        for b in kept {
            let out = w.dir.file("pf-\(b.id!).img")
            _ = try restoreToFile(repo, id: b.id, to: out, options: options)
            #expect(wfFileBytes(out) == models[b.id!])
        }
    }

    @Test func folder() throws {
        let dir = TempDir("pf-folder")
        let repo = dir.file("repo")
        try walk(repo: repo, options: TransportOptions()) { Self.folderBytes(repo) }
    }

    @Test func webDAV() throws {
        let nginx = try NginxServer()
        let path = nginx.root + "/repos/pf"
        try walk(repo: nginx.url + "/repos/pf", options: fastRetry()) { Self.folderBytes(path) }
    }

    @Test func s3() throws {
        let moto = try MotoServer(), python = try Net.requirePython()
        var o = fastRetry()
        o.s3Endpoint = moto.endpoint
        o.environment = moto.environment()
        let prefix = "backups/pf"
        try walk(repo: "s3://\(moto.bucket)/\(prefix)", options: o) {
            let r = try Tool.run(python, ["\(Net.scripts)/s3_usage.py", moto.endpoint, moto.bucket, prefix + "/",
                                          moto.accessKey, moto.secretKey])
            guard r.ok, let n = Int64(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw JobError("s3_usage.py: \(r.stderr)")
            }
            return n
        }
    }
}
