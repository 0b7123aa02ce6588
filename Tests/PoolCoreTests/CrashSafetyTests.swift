import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// A metadata device whose Nth write (and every later one) fails, as a dying disk would.
final class FailingDevice: MetadataDevice {
    let base: FileMetadataDevice
    var writesLeft: Int
    /// When set, reads fail too once writes have started failing (a device that went away).
    var readsFailToo = false
    /// When set, only the Nth write fails (a transient error); later writes succeed.
    var failOnlyOnce = false
    init(_ base: FileMetadataDevice, failAfter n: Int) { self.base = base; writesLeft = n }
    var blockCount: UInt64 { base.blockCount }
    func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] {
        if readsFailToo && writesLeft <= 0 { throw .io(call: "pread", errno: 5, detail: "injected failure") }
        return try base.readBlock(block)
    }
    func writeBlock(_ block: UInt64, _ bytes: [UInt8]) throws(MetadataError) {
        if writesLeft <= 0 {
            if failOnlyOnce { writesLeft = Int.max }
            throw .io(call: "pwrite", errno: 5, detail: "injected failure")
        }
        writesLeft -= 1
        try base.writeBlock(block, bytes)
    }
    /// Flushes always succeed: a failed flush after the superblock write would leave it
    /// undecidable whether the commit happened (as on real hardware).
    func flush() throws(MetadataError) { try base.flush() }
}

@Suite struct CrashSafetyTests {
    static let bs = 65536

    /// Random writes/snapshots/discards/deletes on `pool`, applied to `model` too.
    static func randomOps(_ pool: ThinPool, _ model: inout PoolModel, _ rng: inout SeededRNG, count: Int) throws {
        for _ in 0..<count {
            let ids = model.devs.keys.sorted()
            let r = rng.next() % 10
            if ids.isEmpty || (r == 0 && ids.count < 5) {
                let id = (0..<8).first { model.devs[UInt64($0)] == nil }.map(UInt64.init) ?? 0
                try pool.createThin(id, virtualSize: 24 * UInt64(bs))
                model.devs[id] = .init(size: 24 * UInt64(bs), snapTime: model.time)
            } else if r == 1 && ids.count < 5 {
                let o = ids.randomElement(using: &rng)!
                let id = (0..<8).first { model.devs[UInt64($0)] == nil }.map(UInt64.init)!
                try pool.snapshot(origin: o, as: id); model.snapshot(o, id)
            } else if r == 2 && ids.count > 2 {
                let id = ids.randomElement(using: &rng)!
                try pool.delete(id); model.devs[id] = nil
            } else if r == 3 {
                let id = ids.randomElement(using: &rng)!
                let a = rng.next() % 24
                try pool.discard(id, blocks: a..<min(24, a + 3))
                for v in a..<min(24, a + 3) { model.devs[id]!.blocks[v] = nil }
            } else {
                let id = ids.randomElement(using: &rng)!
                let off = rng.next() % (23 * UInt64(bs))
                let len = min(Int(1 + rng.next() % UInt64(2 * bs)), 24 * bs - Int(off))
                let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next() | 1), count: len)
                try pool.write(id, offset: off, bytes)
                model.write(id, offset: off, bytes)
            }
        }
    }

    static func assertHolds(_ dir: String, _ model: PoolModel, _ ctx: String) throws {
        let c = try Oracle.check("\(dir)/metadata")
        #expect(c.ok, "\(ctx): thin_check after the failure: \(c.stdout) \(c.stderr)")
        let pool = try ThinPool(folder: dir)
        defer { pool.close() }
        #expect(try pool.devices() == model.devs.keys.sorted(), "\(ctx): device set")
        for (dev, d) in model.devs {
            for v in 0..<(d.size / UInt64(bs)) where try pool.readBlock(dev, v) != model.read(dev, v) {
                Issue.record("\(ctx): device \(dev) block \(v) is not the last committed content")
                return
            }
        }
    }

    /// The Nth metadata write fails inside a commit: the reopened pool holds exactly the
    /// previous commit, bytes included, and passes thin_check.
    @Test func failingMetadataWriteKeepsLastCommit() throws {
        let seed: UInt64 = 77
        var rng = SeededRNG(seed: seed)
        let tmp = TempDir("crash")
        let dir = tmp.file("pool")
        try ThinPool.create(folder: dir, dataSize: 400 * UInt64(Self.bs), blockSize: UInt64(Self.bs)).close()
        var committed = PoolModel(blockSize: Self.bs)
        for round in 0..<25 {
            let base = try FileMetadataDevice(path: "\(dir)/metadata", writable: true)
            let failAfter = Int(rng.next() % 40)
            let dev = FailingDevice(base, failAfter: failAfter)
            let pool = try ThinPool(metadataDevice: dev, dataFile: RandomAccessFile(path: "\(dir)/data", writable: true), sidecarPath: "\(dir)/pool.json")
            var model = committed
            model.txn += 1
            var failed = false
            for _ in 0..<4 {
                do {
                    try Self.randomOps(pool, &model, &rng, count: 6)
                    try pool.commit()
                    committed = model
                    model.committedNow()
                } catch {
                    failed = true
                    if case .fail = pool.mode {} else if case .readOnly = pool.mode {} else {
                        Issue.record("seed \(seed) round \(round): pool mode \(pool.mode) after \(error)")
                    }
                    break
                }
            }
            pool.close()
            try Self.assertHolds(dir, committed, "seed \(seed) round \(round) (fail after \(failAfter) writes, failed: \(failed))")
            committed.committedNow()
        }
    }

    /// A failed commit whose rollback cannot re-read the metadata puts the pool in fail
    /// mode: everything is refused; the metadata on disk still holds the last commit.
    @Test func failedRollbackEntersFailMode() throws {
        let tmp = TempDir("failmode")
        let dir = tmp.file("pool")
        let p0 = try ThinPool.create(folder: dir, dataSize: 40 * UInt64(Self.bs))
        try p0.createThin(1, virtualSize: 8 * UInt64(Self.bs))
        try p0.write(1, offset: 0, [UInt8](repeating: 4, count: Self.bs))
        try p0.commit()
        p0.close()
        let dev = FailingDevice(try FileMetadataDevice(path: "\(dir)/metadata", writable: true), failAfter: 1)
        dev.readsFailToo = true
        let pool = try ThinPool(metadataDevice: dev, dataFile: RandomAccessFile(path: "\(dir)/data", writable: true), sidecarPath: "\(dir)/pool.json")
        try pool.write(1, offset: 0, [UInt8](repeating: 5, count: Self.bs))
        #expect(throws: (any Error).self) { try pool.commit() }
        guard case .fail = pool.mode else { Issue.record("mode \(pool.mode), expected fail"); return }
        #expect(throws: PoolError.self) { try pool.readBlock(1, 0) }
        #expect(throws: PoolError.self) { try pool.createThin(2) }
        #expect(throws: PoolError.self) { try pool.commit() }
        pool.close()
        #expect(try Oracle.check("\(dir)/metadata").ok)
        let again = try ThinPool(folder: dir)
        #expect(try again.readBlock(1, 0) == [UInt8](repeating: 4, count: Self.bs))
    }

    /// Random `thin-backup pool` commands (write, snapshot, discard, delete) killed with
    /// SIGKILL at random moments: each time the reopened pool passes thin_check and holds
    /// the state before or after that command — never a mix.
    @Test func sigkillDuringPoolCommandsKeepsACommittedState() throws {
        let exe = try ThinBackupBinary.required()
        let seed: UInt64 = 5
        var rng = SeededRNG(seed: seed)
        let tmp = TempDir("kill")
        let dir = tmp.file("pool")
        let mib = 1 << 20, size = 4 * mib, bs = 65536
        try ThinPool.create(folder: dir, dataSize: 64 * UInt64(mib), blockSize: 65536).close()
        let setup = try Tool.run(exe, ["pool", "create-thin", "--pool", dir, "--dev", "1", "--size", "4M"])
        #expect(setup.ok, "\(setup.stderr)")
        var state: [UInt64: [UInt8]] = [1: [UInt8](repeating: 0, count: size)]
        var sawOld = 0, sawNew = 0
        for round in 0..<16 {
            var after = state
            var args: [String]
            let ids = state.keys.sorted()
            let r = rng.next() % 10
            if r < 2 && ids.count < 4 {
                let o = ids.randomElement(using: &rng)!, id = (1...9).map(UInt64.init).first { state[$0] == nil }!
                args = ["snapshot", "--origin", String(o), "--dev", String(id)]
                after[id] = state[o]
            } else if r < 3 && ids.count > 1 {
                let id = ids.filter { $0 != 1 }.randomElement(using: &rng)!
                args = ["delete", "--dev", String(id)]
                after[id] = nil
            } else if r < 5 {
                let id = ids.randomElement(using: &rng)!
                let a = Int(rng.next() % UInt64(size / bs)), n = 1 + Int(rng.next() % 16)
                let e = min(size / bs, a + n)
                args = ["discard", "--dev", String(id), "--offset", String(a * bs), "--length", String((e - a) * bs)]
                after[id]!.replaceSubrange((a * bs)..<(e * bs), with: [UInt8](repeating: 0, count: (e - a) * bs))
            } else {
                let id = ids.randomElement(using: &rng)!
                let off = Int(rng.next() % UInt64(size / 2))
                var bytes = [UInt8](repeating: UInt8(round + 1), count: Int(rng.next() % UInt64(size / 2)) + 1)
                for i in stride(from: 0, to: bytes.count, by: 4099) { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
                let src = tmp.file("src\(round)")
                try Data(bytes).write(to: URL(fileURLWithPath: src))
                args = ["write", "--dev", String(id), "--from", src, "--offset", String(off)]
                after[id]!.replaceSubrange(off..<(off + bytes.count), with: bytes)
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["pool"] + [args[0], "--pool", dir] + args.dropFirst()
            try p.run()
            usleep(useconds_t(rng.next() % 80_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let c = try Oracle.check("\(dir)/metadata")
            #expect(c.ok, "seed \(seed) round \(round) (\(args[0])): thin_check: \(c.stdout) \(c.stderr)")
            let pool = try ThinPool(folder: dir)
            var got: [UInt64: [UInt8]] = [:]
            for id in try pool.devices() { got[id] = try pool.read(id, offset: 0, count: size) }
            pool.close()
            if got == state { sawOld += 1 } else if got == after { sawNew += 1; state = after } else {
                Issue.record("seed \(seed) round \(round) (\(args.joined(separator: " "))): the pool holds neither the state before nor after the killed command")
                return
            }
        }
        #expect(sawOld + sawNew == 16)
    }
}
