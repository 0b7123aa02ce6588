import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Every pairing of a block's state in the base (unmapped, discarded before the base, mapped data,
/// mapped zeros) with what happens before the target (nothing, new data, zeros written, discard),
/// on a device over an external origin and on one without: merge, receive and restore must
/// produce what `pool read` of the device gives.
@Suite("Streams over an external origin: merge, receive, restore equal pool read", .serialized)
struct OriginMergeTests {
    static let bs = 65536
    /// 16 pairings at blocks 0…15, again at 17…32 (past the origin's end), block 16 half covered by it.
    static let blocks = 34
    static let originBytes = 16 * bs + bs / 2

    static func pattern(_ seed: UInt64, _ count: Int) -> [UInt8] {
        var rng = SeededRNG(seed: seed)
        var out = [UInt8](repeating: 0, count: count)
        for i in stride(from: 0, to: count, by: 8) {
            let v = rng.next()
            for j in 0..<8 { out[i + j] = UInt8(truncatingIfNeeded: v >> (j * 8)) }
        }
        return out
    }

    /// Builds device 1 (over `origin` or not), snapshot 20 = base, snapshot 30 = target;
    /// `atBase` runs when device 1 is in the base state (pool closed).
    func makePool(_ dir: TempDir, origin: String?, atBase: (String) throws -> Void) throws -> String {
        let path = dir.file("src")
        var p = try ThinPool.create(folder: path, dataSize: 16 << 20, blockSize: UInt64(Self.bs))
        try p.createThin(1, virtualSize: UInt64(Self.blocks * Self.bs), originFile: origin)
        let data = Self.pattern(7, Self.bs)
        let newer = Self.pattern(8, Self.bs)
        let zeros = [UInt8](repeating: 0, count: Self.bs)
        for group in [0, 17] {
            for b in 0..<16 {
                let v = UInt64(group + b)
                switch b / 4 {  // base state
                case 0: break  // unmapped
                case 1: try p.writeBlock(1, v, data); try p.discard(1, blocks: v..<v + 1)  // discarded before the base
                case 2: try p.writeBlock(1, v, data)
                default: try p.writeBlock(1, v, zeros)
                }
            }
        }
        try p.commit()
        try p.snapshot(origin: 1, as: 20)
        try p.commit()
        p.close()
        try atBase(path)
        p = try ThinPool(folder: path)
        for group in [0, 17] {
            for b in 0..<16 {
                let v = UInt64(group + b)
                switch b % 4 {  // what happens before the target
                case 0: break
                case 1: try p.writeBlock(1, v, newer)
                case 2: try p.writeBlock(1, v, zeros)
                default: try p.discard(1, blocks: v..<v + 1)
                }
            }
        }
        try p.commit()
        try p.snapshot(origin: 1, as: 30)
        try p.commit()
        p.close()
        return path
    }

    func poolRead(_ pool: String, _ dev: UInt64, _ dir: TempDir) throws -> [UInt8] {
        let f = dir.file("read-\(dev)-\(UInt32.random(in: 0 ... .max))")
        #expect(try cli(["pool", "read", "--pool", pool, "--dev", "\(dev)", "--to", f]) == nil)
        return try fileBytes(f)
    }

    @Test(arguments: [true, false]) func everyPairingMergesReceivesAndRestoresAsTheDeviceReads(overOrigin: Bool) throws {
        let dir = TempDir("origin-merge")
        let origin = dir.file("origin")
        try Data(Self.pattern(99, Self.originBytes)).write(to: URL(fileURLWithPath: origin))
        let repo = dir.file("repo")
        let src = try makePool(dir, origin: overOrigin ? origin : nil) { pool throws in
            let err = try cli(["backup", "--pool", pool, "--dev", "1", "--repo", repo, "--quiet"])
            #expect(err == nil)
        }
        let base = try poolRead(src, 20, dir)
        let target = try poolRead(src, 30, dir)
        // The pairings really differ between the cases: over the origin, discarded and unmapped blocks show it.
        #expect((base[0..<Self.bs].contains { $0 != 0 }) == overOrigin)
        #expect((target[3 * Self.bs..<4 * Self.bs].contains { $0 != 0 }) == overOrigin)  // never mapped, discarded
        #expect((target[11 * Self.bs..<12 * Self.bs].contains { $0 != 0 }) == overOrigin)  // data, then discarded

        let full = dir.file("full.tbs"), incr = dir.file("incr.tbs")
        #expect(try cli(["send", "--pool", src, "--snap", "20", "--to", full, "--quiet"]) == nil)
        #expect(try cli(["send", "--pool", src, "--snap", "30", "--from", "20", "--to", incr, "--quiet"]) == nil)
        let fr = try verifyStream(source: try Transport.source(for: full), quiet: true)
        let ir = try verifyStream(source: try Transport.source(for: incr), quiet: true)
        #expect(fr.readsOrigin == overOrigin && ir.readsOrigin == overOrigin)
        #expect(ir.discardBlocks > 0 && ir.zeroBlocks > 0 && ir.dataBlocks > 0)

        // merge: onto a copy of the origin (or a new file), then the increment.
        let merged = dir.file("merged")
        if overOrigin {
            try copyPrefix(of: origin, to: merged, length: UInt64(Self.blocks * Self.bs))
        } else {
            #expect(FileManager.default.createFile(atPath: merged, contents: nil))
        }
        #expect(try cli(["merge", "--stream", full, "--into", merged, "--quiet"]) == nil)
        #expect(try fileBytes(merged) == base)
        if overOrigin {
            // Without the origin the increment's discards cannot be merged: refused before any write.
            let err = try cli(["merge", "--stream", incr, "--into", merged, "--quiet"])
            #expect(err?.contains("--origin") == true, "\(err ?? "accepted")")
            #expect(try fileBytes(merged) == base)
        }
        #expect(try cli(["merge", "--stream", incr, "--into", merged, "--quiet"] + (overOrigin ? ["--origin", origin] : [])) == nil)
        #expect(try fileBytes(merged) == target)

        // receive: the device is created over the origin.
        let dst = try emptyPool(dir)
        if overOrigin {
            let err = try cli(["receive", "--pool", dst, "--from", full, "--quiet"])
            #expect(err?.contains("origin") == true, "\(err ?? "accepted")")
        }
        let o = overOrigin ? ["--origin-file", origin] : []
        #expect(try cli(["receive", "--pool", dst, "--from", full, "--quiet"] + o) == nil)
        #expect(try poolRead(dst, 20, dir) == base)
        #expect(try cli(["receive", "--pool", dst, "--from", incr, "--quiet"]) == nil)
        #expect(try poolRead(dst, 30, dir) == target)
        #expect(try thinCheck(dst).ok)

        // backup (a full at the base state, an incremental at the target state) and restore, to files and a pool.
        #expect(try cli(["backup", "--pool", src, "--dev", "1", "--repo", repo, "--quiet"]) == nil)
        let oo = overOrigin ? ["--origin", origin] : []
        if overOrigin {
            let err = try cli(["restore", "--repo", repo, "--dev", "1", "--to", dir.file("refused"), "--quiet"])
            #expect(err?.contains("--origin") == true, "\(err ?? "accepted")")
        }
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--id", "1", "--to", dir.file("r1"), "--quiet"] + oo) == nil)
        #expect(try fileBytes(dir.file("r1")) == base)
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", dir.file("r2"), "--quiet"] + oo) == nil)
        #expect(try fileBytes(dir.file("r2")) == target)
        let rpool = try emptyPool(dir, "restored-pool")
        #expect(try cli(["restore", "--repo", repo, "--dev", "1", "--to", rpool, "--quiet"] + oo) == nil)
        #expect(try poolRead(rpool, 1, dir) == target)
    }
}
