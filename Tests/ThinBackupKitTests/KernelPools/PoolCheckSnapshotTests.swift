import Foundation
import PoolCore
import Testing
import TestSupport

/// `pool check -m`: the check a live kernel pool gets (there the snapshot is reserved and
/// released by the check itself; the VM scenarios run that): it reads the held metadata
/// snapshot's trees, not the live ones, and finds damage in them.
@Suite("Kernel pools: pool check through a metadata snapshot")
struct PoolCheckSnapshotTests {
    @Test("pool check -m sees the snapshot's devices, not the live ones, and its damage")
    func checksTheHeldSnapshot() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("checksnap")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        let src = tmp.file("in")
        try Data((0 ..< 300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }).write(to: URL(fileURLWithPath: src))
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "4M", "--block-size", "64k").ok)
        for dev in ["1", "2"] {
            #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", dev, "--size", "1M").ok)
            #expect(try tb("pool", "write", "--pool", pool, "--dev", dev, "--from", src).ok)
        }
        #expect(try tb("pool", "reserve-metadata-snap", "--pool", pool).ok)
        #expect(try tb("pool", "delete", "--pool", pool, "--dev", "2").ok)

        let held = try tb("pool", "check", "--pool", pool, "-m")
        #expect(held.ok, "\(held.stderr)")
        #expect(held.stdout.contains("clean: metadata snapshot at block") && held.stdout.contains(" 2 devices, 10 mappings"), "\(held.stdout)")
        let live = try tb("pool", "check", "--pool", pool)
        #expect(live.ok && live.stdout.contains(" 1 devices, "), "\(live.stdout)")

        // Damage dev 2's mapping tree, which only the snapshot reaches now.
        let meta = "\(pool)/metadata"
        let b = try MetadataReader(path: meta).metadataSnapshot().mappingRoot(of: 2)
        let fh = try #require(FileHandle(forUpdatingAtPath: meta))
        try fh.seek(toOffset: b * 4096 + 100)
        let byte = try #require(try fh.read(upToCount: 1)).first!
        try fh.seek(toOffset: b * 4096 + 100)
        try fh.write(contentsOf: [byte ^ 0xff])
        try fh.close()
        let bad = try tb("pool", "check", "--pool", pool, "-m")
        #expect(bad.status == 1 && bad.stderr.contains("block \(b)"), "\(bad.stderr)")
    }
}
