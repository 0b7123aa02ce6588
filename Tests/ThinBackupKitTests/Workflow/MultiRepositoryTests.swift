import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// One pool backed up into several repositories: each keeps its own chain (the pool keeps a base
/// per repository identity), a new, wiped or different repository gets a full backup, and no
/// incremental is ever written on a base the repository lacks.
@Suite("Backup workflows: one pool, several repositories", .serialized)
struct MultiRepositoryTests {
    /// Every backup in `repo` restores (through the CLI, into a file) to the model of its night.
    func restoreEvery(_ repo: String, _ w: WorkflowPool, _ models: [Int64: [UInt8]], _ label: String) throws {
        let h = try BackupRepository(repo)
        let all = try h.catalog.all()
        h.close()
        #expect(!all.isEmpty)
        for b in all {
            let out = w.dir.file("r-\(label)-\(b.id!).img")
            #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--id", "\(b.id!)", "--to", out, "--quiet"]) == nil)
            #expect(wfFileBytes(out) == models[b.id!], "\(label): backup \(b.id!) does not restore to its night")
            try? FileManager.default.removeItem(atPath: out)
        }
        let v = try verifyRepository(repo, deep: true, quiet: true)
        #expect(v.ok, "\(label): \(v.problems)")
    }

    @Test func threeRepositoriesInterleavedOverManyNights() throws {
        let w = try WorkflowPool(seed: 1801)
        let repos = ["a", "b", "c"].map { w.dir.file("repo-\($0)") }
        var models: [[Int64: [UInt8]]] = Array(repeating: [:], count: 3)
        var used = Set<Int>()
        var rng = SeededRNG(seed: 18)
        for night in 0..<14 {
            try w.day(writes: 5)
            // A varying subset of the repositories, in a varying order (first night: a then b; c starts later).
            var order = night == 0 ? [0, 1] : [0, 1, 2].filter { _ in rng.next() % 3 != 0 }
            if night == 3 { order = [2, 0] }
            if rng.next() % 2 == 0 { order.reverse() }
            for k in order {
                let b = try backup(w, repo: repos[k], at: nightly(night).addingTimeInterval(Double(k * 60)))
                let first = used.insert(k).inserted
                #expect(b.kind == (first ? "full" : "incremental"), "night \(night) repo \(k): \(b.kind) \(b.note ?? "")")
                #expect(b.note == nil, "night \(night) repo \(k): \(b.note ?? "")")
                models[k][b.id] = w.model
            }
            // The device and one snapshot per repository used so far.
            #expect(try w.devices().count == 1 + used.count, "night \(night)")
        }
        #expect(used.count == 3)
        for k in 0..<3 { try restoreEvery(repos[k], w, models[k], "repo \(k)") }
        // Each catalog names only its own streams, and each repository has its own identity.
        var ids = Set<String>()
        for r in repos {
            let h = try BackupRepository(r)
            for b in try h.catalog.all() { #expect(try h.store.exists(b.object)) }
            ids.insert(try #require(try h.identity(create: false)))
            h.close()
        }
        #expect(ids.count == 3)
    }

    @Test func wipedRecreatedOrReplacedRepositoryGetsAFullBackup() throws {
        let w = try WorkflowPool(seed: 1802)
        let a = w.dir.file("repo-a"), b = w.dir.file("repo-b")
        var ma: [Int64: [UInt8]] = [:], mb: [Int64: [UInt8]] = [:]
        func night(_ n: Int, _ repo: String, _ models: inout [Int64: [UInt8]], expect kind: String, note: String? = nil) throws {
            let r = try backup(w, repo: repo, at: nightly(n).addingTimeInterval(repo == a ? 0 : 60))
            #expect(r.kind == kind, "night \(n) \(repo): \(r.note ?? "")")
            if let note { #expect(r.note?.contains(note) == true, "night \(n): \(r.note ?? "no note")") }
            models[r.id] = w.model
        }
        for n in 0..<3 {
            try w.day()
            try night(n, a, &ma, expect: n == 0 ? "full" : "incremental")
            try night(n, b, &mb, expect: n == 0 ? "full" : "incremental")
        }
        // Wiped, then recreated by the next backup: a full one; b's chain is untouched.
        try FileManager.default.removeItem(atPath: a)
        ma = [:]
        try w.day()
        try night(3, a, &ma, expect: "full")
        try night(3, b, &mb, expect: "incremental")
        try w.day()
        try night(4, a, &ma, expect: "incremental")
        // A stream of the chain gone from the repository: the next backup is full, the line says why.
        let h = try BackupRepository(a)
        let gone = try h.catalog.all().last!
        h.close()
        try FileManager.default.removeItem(atPath: "\(a)/\(gone.object)")
        try w.day()
        try night(5, a, &ma, expect: "full", note: "lacks \(gone.object)")
        let stale = try BackupRepository(a, lockFor: "test")
        try stale.catalog.apply(updates: [], deletions: [gone.id!])
        try stale.saveCatalog()
        stale.close()
        ma[gone.id!] = nil
        // Another repository (another pool's) put in a's place: a full backup.
        let other = try WorkflowPool(seed: 1804, dir: TempDir("tb-wf-other"))
        try other.day()
        let c = other.dir.file("repo-c")
        let oc = try backup(other, repo: c, at: nightly(5))
        try FileManager.default.removeItem(atPath: a)
        try FileManager.default.copyItem(atPath: c, toPath: a)
        ma = [oc.id: other.model]
        try w.day()
        try night(6, a, &ma, expect: "full")
        try night(6, b, &mb, expect: "incremental")
        try w.day()
        try night(7, a, &ma, expect: "incremental")
        try night(7, b, &mb, expect: "incremental")
        try restoreEvery(a, w, ma, "a")
        try restoreEvery(b, w, mb, "b")
    }

    @Test func thirtyNightsTwoRepositoriesWithPruning() throws {
        let w = try WorkflowPool(seed: 1803)
        let repos = [w.dir.file("local"), w.dir.file("offsite")]
        let policies = [RetentionPolicy(last: 3, daily: 7, weekly: 4, monthly: 2), RetentionPolicy(last: 2, weekly: 3)]
        var models: [[Int64: [UInt8]]] = [[:], [:]]
        var rebases = 0
        for night in 0..<30 {
            try w.day()
            for k in night % 3 == 2 ? [1, 0] : [0, 1] {
                let b = try backup(w, repo: repos[k], at: nightly(night).addingTimeInterval(Double(k * 60)))
                #expect(b.kind == (night == 0 ? "full" : "incremental"), "night \(night) repo \(k): \(b.note ?? "")")
                models[k][b.id] = w.model
                rebases += try runPrune(PruneRequest(repo: repos[k], policy: policies[k])).rebased.count
            }
            #expect(try w.devices().count == 3)
        }
        #expect(rebases > 0, "pruning never consolidated a chain")
        for k in 0..<2 { try restoreEvery(repos[k], w, models[k], "repo \(k)") }
    }
}
