import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("Encryption: migrate with a key, prune of an encrypted repository", .serialized)
struct EncryptedMigratePruneTests {
    /// `migrate` with a key: what travels is sealed end to end (a spool receiver keeps each round's
    /// stream as it came: no plaintext block in any of them, and with the key they rebuild the frozen
    /// device); a pool receiver holding the key ends with the source's frozen device.
    @Test func migrateSealsEveryRound() throws {
        let w = try WorkflowPool(seed: 1701, blocks: 48)
        try w.day(writes: 24)
        let key = try Crypt.keyFile(w.dir)
        let keyring = StreamKeyring(key: try readKeyFile(key))
        var seen: [[UInt8]] = [w.model]
        // Between live rounds the device changes (so the second round is an increment with data).
        func migrate(to url: String, options: TransportOptions) throws -> MigrateReport {
            var req = MigrateRequest(pool: UserspacePool(folder: w.pool), dev: 1, to: url)
            req.keyring = keyring
            req.options = options
            req.untilDelta = 1
            req.maxRounds = 2
            req.onRound = { r in
                guard !r.frozen else { return }
                try? w.day(writes: 6)
                seen.append(w.model)
            }
            return try runMigrate(req)
        }
        let spool = try LocalReceiver()
        let r = try migrate(to: "tb://127.0.0.1:\(spool.server.port)", options: try spool.options())
        #expect(r.rounds.count == 3 && r.rounds[1].rawBytes > 0 && r.rounds.last!.frozen)
        let frozen = w.model
        #expect(try w.deviceBytes(r.finalSnapshot) == frozen)
        let pats = seen.flatMap { Crypt.patterns($0, blockSize: w.blockSize) }
        let streams = r.rounds.map { "\(spool.spool)/\($0.snapshot).stream" }
        var all: [UInt8] = []
        for s in streams { all += try fileBytes(s) }
        #expect(try Crypt.found(pats, in: w.deviceBytes(r.finalSnapshot)) > 0, "the search finds the device's blocks in clear")
        #expect(Crypt.found(pats, in: all) == 0, "a migrated stream holds a plaintext block")
        for s in streams {
            let v = try verifyStream(source: try Transport.source(for: s), quiet: true)
            #expect(v.encrypted && v.framingOnly)
        }
        // With the key the spooled rounds apply in order and give the frozen device; without it, nothing.
        let rebuilt = try emptyPool(w.dir, "rebuilt", blockSize: UInt64(w.blockSize))
        let meta = try fileBytes("\(rebuilt)/metadata")
        #expect(try cli(["receive", "--pool", rebuilt, "--from", streams[0], "-q"])?.contains("the stream is encrypted") == true)
        #expect(try fileBytes("\(rebuilt)/metadata") == meta)
        for s in streams { #expect(try cli(["receive", "--pool", rebuilt, "--from", s, "--encrypt-key", key, "-q"]) == nil) }
        #expect(try w.deviceBytes(r.finalSnapshot, pool: rebuilt) == frozen)

        // Into a pool receiver that holds the key.
        let dst = try emptyPool(w.dir, "dst", blockSize: UInt64(w.blockSize))
        let rx = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst), keyring: keyring) })
        let r2 = try migrate(to: "tb://127.0.0.1:\(rx.server.port)", options: try rx.options())
        #expect(try w.deviceBytes(r2.finalSnapshot, pool: dst) == w.model)
        #expect(try thinCheckClean(dst))
        // Into a local pool folder (its round streams are sealed too, and none is left behind).
        let local = try emptyPool(w.dir, "local", blockSize: UInt64(w.blockSize))
        let r3 = try migrate(to: local, options: TransportOptions())
        #expect(try w.deviceBytes(r3.finalSnapshot, pool: local) == w.model)
        #expect(try FileManager.default.contentsOfDirectory(atPath: local).allSatisfy { !$0.hasPrefix(".migrate-") })
    }

    /// A wrong, missing, needless or unreadable key: one line, the receiving pool as it was, and the
    /// source keeps only its own devices (the round's snapshot is removed again).
    @Test func migrateRefusesKeysBeforeWriting() throws {
        let w = try WorkflowPool(seed: 1702, blocks: 16)
        try w.day(writes: 8)
        let key = try Crypt.keyFile(w.dir), other = try Crypt.keyFile(w.dir, "other")
        let dst = try emptyPool(w.dir, "dst", blockSize: UInt64(w.blockSize))
        let keyed = try LocalReceiver(receiver: { _ in
            try PoolStreamReceiver(pool: UserspacePool(folder: dst), keyring: StreamKeyring(key: try readKeyFile(key)))
        })
        let clear = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst)) })
        try Crypt.write(Array("thin-backup-key-v1 00ff\n".utf8), w.dir.file("bad-key"))
        let devices = try w.devices()
        let meta = try fileBytes("\(dst)/metadata")
        for (rx, keyArgs, text) in [(keyed, ["--encrypt-key", other], "wrong key"),
                                    (keyed, [], "the stream is not encrypted"),
                                    (clear, ["--encrypt-key", key], "the stream is encrypted"),
                                    (keyed, ["--encrypt-key", w.dir.file("bad-key")], "key file"),
                                    (keyed, ["--encrypt-key", w.dir.file("missing")], "cannot read")] {
            let e = try cli(["migrate", "--pool", w.pool, "--dev", "1", "--to", "tb://127.0.0.1:\(rx.server.port)",
                             "--token-file", rx.tokenFile, "--max-rounds", "1", "-q"] + keyArgs)
            #expect(e?.contains(text) == true && e?.contains("\n") == false, "\(keyArgs): \(e ?? "accepted")")
            #expect(try fileBytes("\(dst)/metadata") == meta, "\(keyArgs): the receiving pool changed")
            #expect(try w.devices() == devices, "\(keyArgs): the source pool kept a snapshot")
        }
        #expect(try thinCheckClean(w.pool))
        // With the right key the same command goes through.
        #expect(try cli(["migrate", "--pool", w.pool, "--dev", "1", "--to", "tb://127.0.0.1:\(keyed.server.port)",
                         "--token-file", keyed.tokenFile, "--max-rounds", "1", "--encrypt-key", key, "-q"]) == nil)
        #expect(try fileBytes("\(dst)/metadata") != meta)
    }

    /// prune of an encrypted repository: its figures are the real size change, the catalog stays sealed
    /// and readable with the key, the consolidated streams are sealed, no plaintext block and no clear
    /// catalog land in the repository, everything kept restores with the key; without it nothing changes.
    @Test func pruneKeepsTheRepositorySealed() throws {
        let w = try WorkflowPool(seed: 1703, blocks: 48)
        let key = try Crypt.keyFile(w.dir), other = try Crypt.keyFile(w.dir, "other")
        let keyring = StreamKeyring(key: try readKeyFile(key))
        let repo = w.dir.file("repo")
        var models: [Int64: [UInt8]] = [:]
        for night in 0..<6 {
            try w.day(writes: 8)
            var b = BackupRequest(pool: UserspacePool(folder: w.pool), dev: w.dev, repo: repo)
            b.now = nightly(night)
            b.keyring = keyring
            models[try runBackup(b).id] = w.model
        }
        let pats = models.values.flatMap { Crypt.patterns($0, blockSize: w.blockSize) }
        #expect(Crypt.found(pats, in: Crypt.allBytes(under: w.pool)) > 0, "the search finds blocks in clear")

        // Without the key, or with another: refused, the repository unchanged.
        let untouched = Crypt.allBytes(under: repo)
        for args in [["--keep-last", "2"], ["--keep-last", "2", "--encrypt-key", other]] {
            let e = try cli(["prune", "--repo", repo, "-q"] + args)
            #expect(e != nil && e?.contains("\n") == false, "\(args): \(e ?? "accepted")")
            #expect(Crypt.allBytes(under: repo) == untouched)
        }

        var req = PruneRequest(repo: repo, policy: RetentionPolicy(last: 2))
        req.keyring = keyring
        req.dryRun = true
        let before = PruneFigureTests.folderBytes(repo)
        let dry = try runPrune(req)
        #expect(PruneFigureTests.folderBytes(repo) == before && Crypt.allBytes(under: repo) == untouched, "a dry run changed the repository")
        req.dryRun = false
        let real = try runPrune(req)
        let after = PruneFigureTests.folderBytes(repo)
        #expect(real.removed.count == 4 && real.rebased.count == 1, "\(real)")
        #expect(dry.freedBytes == real.freedBytes && dry.removed == real.removed)
        #expect(real.freedBytes == before - after, "prune said \(real.freedBytes) freed, the repository shrank by \(before - after)")

        // The catalog: sealed in the repository, readable with the key, listing exactly the kept backups.
        let catalog = try fileBytes("\(repo)/catalog.sqlite")
        #expect(catalog.starts(with: SealedBlob.magic))
        let h = try BackupRepository(repo, keyring: keyring)
        let kept = try h.catalog.all()
        h.close()
        #expect(kept.map(\.id!).sorted() == real.kept.sorted() && kept.count == 2)
        #expect(kept.contains { $0.rebased }, "the kept increment was not consolidated")
        // What the repository holds: no plaintext block, no clear SQLite file, every stream sealed.
        let everything = Crypt.allBytes(under: repo)
        #expect(Crypt.found(pats, in: everything) == 0, "prune wrote a plaintext block into the repository")
        #expect(!String(decoding: everything, as: UTF8.self).contains("SQLite format"), "a clear catalog is in the repository")
        for b in kept {
            let v = try verifyStream(source: try Transport.source(for: "\(repo)/\(b.object)"), quiet: true)
            #expect(v.encrypted && v.framingOnly, "\(b.object) is not sealed")
            let out = w.dir.file("restored-\(b.id!).img")
            #expect(try cli(["restore", "--repo", repo, "--id", "\(b.id!)", "--dev", "1", "--to", out, "--encrypt-key", key, "-q"]) == nil)
            #expect(wfFileBytes(out) == models[b.id!])
        }
        #expect(try cli(["verify", "--repo", repo, "--deep", "--encrypt-key", key, "-q"]) == nil)
    }
}
