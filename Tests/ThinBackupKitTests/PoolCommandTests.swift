import Foundation
import Testing
import PoolCore
import TestSupport

/// The `pool` commands through the built binary: each commits, the result passes thin_check,
/// bytes round-trip, low space prints a warning line.
@Suite struct PoolCommandTests {
    static var binary: String? {
        for p in ["\(Repo.root)/.build/debug/thin-backup", "\(Repo.root)/.build/release/thin-backup"]
        where FileManager.default.isExecutableFile(atPath: p) { return p }
        return nil
    }

    @Test func poolCommandsRoundTripAndPassThinCheck() throws {
        guard let exe = Self.binary else { Issue.record("build thin-backup first"); return }
        let tmp = TempDir("cli")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "2M", "--block-size", "64k").ok)
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "2M").status == 1, "refuses to format over a pool")
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "1M").ok)
        var rng = SeededRNG(seed: 9)
        let bytes = (0..<700_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let src = tmp.file("in")
        try Data(bytes).write(to: URL(fileURLWithPath: src))
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--offset", "1000").ok)
        #expect(try tb("pool", "snapshot", "--pool", pool, "--origin", "1", "--dev", "2").ok)
        #expect(try tb("pool", "discard", "--pool", pool, "--dev", "1", "--offset", "0", "--length", "1048576").ok)
        #expect(try tb("pool", "read", "--pool", pool, "--dev", "2", "--to", tmp.file("out")).ok)
        let out = try Data(contentsOf: URL(fileURLWithPath: tmp.file("out")))
        var expected = [UInt8](repeating: 0, count: 1 << 20)
        expected.replaceSubrange(1000..<(1000 + bytes.count), with: bytes)
        #expect(Array(out) == expected)
        let dump = try Tool.run("thin_dump", ["\(pool)/metadata"])
        #expect(dump.stdout.contains("dev_id=\"1\" mapped_blocks=\"0\""))
        #expect(dump.stdout.contains("dev_id=\"2\" mapped_blocks=\"11\""))
        #expect(try Tool.run("thin_check", ["\(pool)/metadata"]).ok)
        // The pool holds 32 blocks, 11 used: 19 more blocks cross the low-water mark (2) → warning.
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "3", "--size", "4M").ok)
        let big = tmp.file("big")
        try Data(count: 19 * 65536).write(to: URL(fileURLWithPath: big))
        let w = try tb("pool", "write", "--pool", pool, "--dev", "3", "--from", big)
        #expect(w.ok)
        #expect(w.stderr.contains("warning: data space low"), "\(w.stderr)")
        let full = try tb("pool", "write", "--pool", pool, "--dev", "3", "--from", big, "--offset", "1245184")
        #expect(full.status == 1 && full.stderr.contains("out of data space"), "\(full.stderr)")
        #expect(try tb("pool", "resize", "--pool", pool, "--data-size", "4M").ok)
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "3", "--from", big, "--offset", "1245184").ok)
        #expect(try tb("pool", "reserve-metadata-snap", "--pool", pool).ok)
        let second = try tb("pool", "reserve-metadata-snap", "--pool", pool)
        #expect(second.status == 1 && second.stderr.contains("already held"))
        #expect(try Tool.run("thin_dump", ["-m", "\(pool)/metadata"]).ok)
        #expect(try tb("pool", "release-metadata-snap", "--pool", pool).ok)
        #expect(try tb("pool", "delete", "--pool", pool, "--dev", "1").ok)
        let info = try tb("pool", "info", "--pool", pool)
        #expect(info.stdout.contains("device 2: size 1048576 bytes, mapped 11 blocks"), "\(info.stdout)")
        #expect(!info.stdout.contains("device 1:"))
        #expect(try Tool.run("thin_check", ["\(pool)/metadata"]).ok)
    }
}
