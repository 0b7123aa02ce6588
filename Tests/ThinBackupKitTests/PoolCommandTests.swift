import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// The `pool` commands through the built binary: each commits, the result passes thin_check,
/// bytes round-trip, low space prints a warning line.
@Suite struct PoolCommandTests {
    @Test func poolCommandsRoundTripAndPassThinCheck() throws {
        let exe = try ThinBackupBinary.required()
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

    /// `--low-water` on create and `pool set`: kept in pool.json, shown by info, and the
    /// warning line appears on the write that leaves that many free blocks, not before.
    @Test func lowWaterMarkIsSetAndWarned() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("cliwater")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "2M", "--low-water", "33").status == 1)
        #expect(!FileManager.default.fileExists(atPath: pool), "a refused create leaves nothing")
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "2M", "--low-water", "20").ok)
        #expect(try tb("pool", "info", "--pool", pool).stdout.contains("data low-water mark: 20 blocks"))
        let set = try tb("pool", "set", "--pool", pool, "--low-water", "12")
        #expect(set.ok && set.stderr.isEmpty, "\(set.stderr)")
        #expect(try String(contentsOfFile: "\(pool)/pool.json", encoding: .utf8).contains("\"dataLowWaterMark\" : 12"))
        #expect(try tb("pool", "set", "--pool", pool, "--low-water", "33").status == 1, "above the pool's 32 blocks")
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "2M").ok)
        let src = tmp.file("blk")
        try Data(repeating: 5, count: 65536).write(to: URL(fileURLWithPath: src))
        // 32 blocks: after 19 written 13 are free (no warning), the 20th leaves 12 (warning).
        for k in 0..<20 {
            let w = try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--offset", String(k * 65536))
            #expect(w.ok)
            #expect(w.stderr.contains("warning: data space low: 12 free data blocks (low-water mark 12)") == (k == 19), "block \(k): \(w.stderr)")
        }
        #expect(try Tool.run("thin_check", ["\(pool)/metadata"]).ok)
    }

    /// NEEDS_CHECK in the superblock: writes refused with a clear line, info says so, and
    /// `pool check --clear-needs-check` clears it only when the check is clean.
    @Test func needsCheckRefusesWritesUntilACleanCheckClearsIt() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("clineeds")
        let pool = tmp.file("p"), meta = "\(pool)/metadata"
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "2M").ok)
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "1M").ok)
        let src = tmp.file("blk")
        try Data(repeating: 5, count: 65536).write(to: URL(fileURLWithPath: src))
        func setFlag() throws {
            try PoolMetadata(device: FileMetadataDevice(path: meta, writable: true)).setNeedsCheck(true)
        }
        try setFlag()
        #expect(try Tool.run("thin_dump", [meta]).stdout.contains("flags=\"1\""))
        let w = try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src)
        #expect(w.status == 1 && w.stderr.contains("NEEDS_CHECK") && w.stderr.split(separator: "\n").count == 1, "\(w.stderr)")
        #expect(try tb("pool", "info", "--pool", pool).stdout.contains("needs check: yes"))
        let c = try tb("pool", "check", "--metadata", meta, "--clear-needs-check")
        #expect(c.ok && c.stdout.contains("NEEDS_CHECK flag cleared"), "\(c.stdout) \(c.stderr)")
        #expect(try Tool.run("thin_dump", [meta]).stdout.contains("flags=\"0\""))
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src).ok)
        // Damaged metadata: the check fails and the flag stays.
        try setFlag()
        let sb = try Superblock(decoding: FileMetadataDevice(path: meta).readBlock(0), location: 0)
        let f = try RandomAccessFile(path: meta, writable: true)
        try [UInt8](repeating: 0xAB, count: 64).withUnsafeBytes { try f.write($0, at: sb.deviceDetailsRoot * 4096 + 100) }
        f.close()
        let bad = try tb("pool", "check", "--metadata", meta, "--clear-needs-check")
        #expect(bad.status == 1 && !bad.stdout.contains("cleared"), "\(bad.stdout) \(bad.stderr)")
        #expect(try Superblock(decoding: FileMetadataDevice(path: meta).readBlock(0), location: 0).needsCheck)
    }

    /// `pool write --commit-every`: a write spanning several intervals commits each one. A
    /// write that runs out of data space in its fifth interval keeps the first four intervals
    /// (a single commit at the end would keep nothing); a full write reads back equal.
    @Test func writeWithCommitIntervalRoundTrips() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("cliinterval")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "4M").ok)
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "2M").ok)
        var rng = SeededRNG(seed: 12)
        let bytes = (0..<(1_500_000)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let src = tmp.file("in")
        try Data(bytes).write(to: URL(fileURLWithPath: src))
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--offset", "77", "--commit-every", "200k").ok)
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--commit-every", "0").status == 64)
        #expect(try tb("pool", "read", "--pool", pool, "--dev", "1", "--to", tmp.file("out")).ok)
        let out = Array(try Data(contentsOf: URL(fileURLWithPath: tmp.file("out"))))
        #expect(Array(out[77..<(77 + bytes.count)]) == bytes)
        #expect(try Tool.run("thin_check", ["\(pool)/metadata"]).ok)

        let small = tmp.file("small")
        #expect(try tb("pool", "create", "--pool", small, "--data-size", "1152k").ok)  // 18 blocks
        #expect(try tb("pool", "create-thin", "--pool", small, "--dev", "1", "--size", "2M").ok)
        let full = try tb("pool", "write", "--pool", small, "--dev", "1", "--from", src, "--commit-every", "256k")
        #expect(full.status == 1 && full.stderr.contains("out of data space"), "\(full.stderr)")
        let dump = try Tool.run("thin_dump", ["\(small)/metadata"]).stdout
        #expect(dump.contains("dev_id=\"1\" mapped_blocks=\"16\""), "\(dump)")
        #expect(try Tool.run("thin_check", ["\(small)/metadata"]).ok)
        #expect(try tb("pool", "read", "--pool", small, "--dev", "1", "--to", tmp.file("out2")).ok)
        let out2 = Array(try Data(contentsOf: URL(fileURLWithPath: tmp.file("out2"))))
        #expect(Array(out2[0..<(16 * 65536)]) == Array(bytes[0..<(16 * 65536)]))
        #expect(out2[(16 * 65536)...].allSatisfy { $0 == 0 })
    }
}
