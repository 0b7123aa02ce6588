import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Random damage to reachable blocks, resealed so that it gets past the checksums:
/// dump, pool ls and pool check must either succeed or fail with an error — never crash
/// or hang. (A trap here takes the whole test process down, which fails the run.)
@Suite struct RandomDamageTests {
    static func kind(of b: [UInt8]) -> BlockKind? {
        [BlockKind.superblock, .node, .index, .bitmap].first { Checksum.block(b, kind: $0) == b.le32(0) }
    }

    @Test(arguments: ["tmeta_with_metadata_snap", "tmeta_with_shared_internals_and_leaves"])
    func resealedGarbageNeverCrashes(name: String) throws {
        let dir = TempDir("damage")
        defer { withExtendedLifetime(dir) {} }
        let copy = try KernelFixtures.decompress(name, into: dir)
        // The blocks worth hitting: everything the checker reads on the clean image.
        let reader = CountingReader(try FileMetadataDevice(path: copy))
        _ = try MetadataChecker(source: reader).check()
        let blocks = reader.distinct.sorted()
        var rng = SeededRNG(seed: 0xDA3A6E)
        var failures = 0
        for round in 0..<50 {
            let s = Surgery(path: copy)
            let target = blocks[Int(rng.next() % UInt64(blocks.count))]
            let before = try s.read(target)
            defer { try? s.write(target, before) }
            let hits = 1 + Int(rng.next() % 4)
            try s.patch(target, reseal: nil) { b in
                let k = Self.kind(of: b)
                for _ in 0..<hits {
                    // Mostly header and early key/value bytes, where the structure lives.
                    let off = rng.next() % 3 == 0 ? 4 + Int(rng.next() % 60) : 4 + Int(rng.next() % 4092)
                    b[off] = rng.next() % 2 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : b[off] ^ (1 << (rng.next() % 8))
                }
                if let k { Checksum.seal(&b, kind: k, location: b.le64(8)) }
            }
            var failed = false
            if Read.dumpFailure(["--metadata", copy]).error != nil { failed = true }
            if Read.dumpFailure(["--metadata", copy, "-m"]).error != nil { failed = true }
            if (try? Read.ls(["--metadata", copy, "--fields", Read.allLsFields])) == nil { failed = true }
            if let e = Read.checkFailure(copy) {
                failed = true
                #expect(!e.isEmpty && !e.contains("\n"), "round \(round): \(e)")
            }
            if failed { failures += 1 }
            if ProcessInfo.processInfo.environment["TB_SHOW_DAMAGE"] != nil { print("round \(round) block \(target): dump: \(Read.dumpFailure(["--metadata", copy]).error ?? "ok") / check: \(Read.checkFailure(copy) ?? "clean")") }
        }
        // Most damage is noticed by something (some lands in unused bytes of a block).
        #expect(failures > 12, "only \(failures) of 50 damaged images were rejected")
    }
}
