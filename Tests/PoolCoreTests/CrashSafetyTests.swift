import Foundation
import Testing
import PoolCore
import TestSupport

/// A metadata device whose Nth write (and every later one) fails, as a dying disk would.
final class FailingDevice: MetadataDevice {
    let base: FileMetadataDevice
    var writesLeft: Int
    init(_ base: FileMetadataDevice, failAfter n: Int) { self.base = base; writesLeft = n }
    var blockCount: UInt64 { base.blockCount }
    func readBlock(_ block: UInt64) throws(MetadataError) -> [UInt8] { try base.readBlock(block) }
    func writeBlock(_ block: UInt64, _ bytes: [UInt8]) throws(MetadataError) {
        if writesLeft <= 0 { throw .io(call: "pwrite", errno: 5, detail: "injected failure") }
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
                let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next() | 1), count: Int(1 + rng.next() % UInt64(2 * bs)))
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

    static var binary: String? {
        for p in ["\(Repo.root)/.build/debug/thin-backup", "\(Repo.root)/.build/release/thin-backup"]
        where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    /// `thin-backup pool write` killed with SIGKILL at random moments: the reopened pool
    /// passes thin_check and holds the state before or after that command — never a mix.
    @Test func sigkillDuringPoolWriteKeepsACommittedState() throws {
        guard let exe = Self.binary else {
            Issue.record("build the thin-backup binary first (swift build)")
            return
        }
        var rng = SeededRNG(seed: 5)
        let tmp = TempDir("kill")
        let dir = tmp.file("pool")
        let mib = 1 << 20
        try ThinPool.create(folder: dir, dataSize: 64 * UInt64(mib), blockSize: 65536).close()
        let setup = try Tool.run(exe, ["pool", "create-thin", "--pool", dir, "--dev", "1", "--size", "8M"])
        #expect(setup.ok, "\(setup.stderr)")
        var state = [UInt8](repeating: 0, count: 8 * mib)
        var sawOld = 0, sawNew = 0
        for round in 0..<10 {
            let fill = UInt8(round + 1)
            let off = Int(rng.next() % UInt64(4 * mib))
            var bytes = [UInt8](repeating: fill, count: 4 * mib)
            for i in stride(from: 0, to: bytes.count, by: 4099) { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            let src = tmp.file("src\(round)")
            try Data(bytes).write(to: URL(fileURLWithPath: src))
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["pool", "write", "--pool", dir, "--dev", "1", "--from", src, "--offset", String(off)]
            try p.run()
            usleep(useconds_t(rng.next() % 120_000))
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let c = try Oracle.check("\(dir)/metadata")
            #expect(c.ok, "round \(round): thin_check: \(c.stdout) \(c.stderr)")
            var after = state
            after.replaceSubrange(off..<(off + bytes.count), with: bytes)
            let pool = try ThinPool(folder: dir)
            let got = try pool.read(1, offset: 0, count: 8 * mib)
            pool.close()
            if got == state { sawOld += 1 } else if got == after { sawNew += 1; state = after } else {
                Issue.record("round \(round): device holds neither the state before nor after the killed write")
                return
            }
        }
        #expect(sawOld + sawNew == 10)
    }
}
