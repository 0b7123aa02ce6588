import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// `thin-backup dump` against thin_dump 0.9.0, byte for byte.
@Suite struct DumpTests {
    static let randomCases: [(UInt64, Int)] = [
        (11, 0), (12, 0), (13, 1), (14, 1), (15, 2), (16, 3), (17, 17), (18, 250), (19, 253), (20, 1000),
        (21, 4000), (22, 12_000), (23, 30_000), (24, 100_000), (25, 120_000),
    ]

    @Test(arguments: randomCases)
    func randomPoolsMatchThinDump(seed: UInt64, mappings: Int) throws {
        try Tool.requireThinTools()
        let dir = TempDir("dump")
        defer { withExtendedLifetime(dir) {} }
        let pool = RandomPoolXML.generate(seed: seed, mappings: mappings)
        let meta = try RandomPool.restore(pool, into: dir)
        let ours = try Read.dump(["--metadata", meta])
        let theirs = try Tool.run("thin_dump", [meta])
        try #require(theirs.ok)
        #expect(ours == theirs.stdout, "seed \(seed), \(mappings) mappings")

        let skip = try Read.dump(["--metadata", meta, "--skip-mappings"])
        #expect(skip == (try Tool.run("thin_dump", [meta, "--skip-mappings"])).stdout, "seed \(seed) --skip-mappings")

        if let dev = pool.devices.last?.id, let first = pool.devices.first?.id {
            let args = ["--dev-id", String(dev), "--dev-id", String(first)]
            #expect(try Read.dump(["--metadata", meta] + args) == (try Tool.run("thin_dump", [meta] + args)).stdout, "seed \(seed) --dev-id")
        }
        // No metadata snapshot in a restored pool: both refuse -m.
        let m = Read.dumpFailure(["--metadata", meta, "-m"])
        let tm = try Tool.run("thin_dump", [meta, "-m"])
        // Our message starts with thin_dump's ("no current metadata snap").
        #expect(!tm.ok && m.error?.hasPrefix(tm.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) == true, "seed \(seed) -m: \(m.error ?? "no error")")
        #expect(m.output.isEmpty)
    }

    /// Many small pools (0 … 3000 mappings): dump and pool ls against the oracles.
    @Test func manySmallSeeds() throws {
        try Tool.requireThinTools()
        let dir = TempDir("dumpmany")
        defer { withExtendedLifetime(dir) {} }
        for seed in UInt64(1000)..<UInt64(1060) {
            var rng = SeededRNG(seed: seed)
            let n = Int(rng.next() % 4) == 0 ? Int(rng.next() % 3) : Int(rng.next() % 3000)
            let pool = RandomPoolXML.generate(seed: seed, mappings: n)
            let meta = try RandomPool.restore(pool, into: dir)
            let t = try Tool.run("thin_dump", [meta])
            #expect(try Read.dump(["--metadata", meta]) == t.stdout, "seed \(seed), \(n) mappings")
            let l = try Tool.run("thin_ls", [meta, "-o", Read.allLsFields])
            #expect(try Read.ls(["--metadata", meta, "--fields", Read.allLsFields]) == l.stdout, "seed \(seed), \(n) mappings")
            try FileManager.default.removeItem(atPath: meta)
        }
    }

    @Test(arguments: KernelFixtures.names)
    func kernelFixturesMatchThinDump(name: String) throws {
        try Tool.requireThinTools()
        let dir = TempDir("dumpk")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress(name, into: dir)
        let theirs = try Tool.run("thin_dump", [meta])
        try #require(theirs.ok)
        #expect(try Read.dump(["--metadata", meta]) == theirs.stdout, "\(name)")
        #expect(try Read.dump(["--metadata", meta, "--skip-mappings"]) == (try Tool.run("thin_dump", [meta, "--skip-mappings"])).stdout)
        for id in try Read.deviceIDs(meta) {
            #expect(try Read.dump(["--metadata", meta, "--dev-id", String(id)]) == (try Tool.run("thin_dump", [meta, "--dev-id", String(id)])).stdout, "\(name) dev \(id)")
        }
        // An id that is not in the pool: thin_dump prints the superblock alone, and so do we.
        #expect(try Read.dump(["--metadata", meta, "--dev-id", "999999"]) == (try Tool.run("thin_dump", [meta, "--dev-id", "999999"])).stdout)

        let tm = try Tool.run("thin_dump", [meta, "-m"])
        if tm.ok {
            // A held metadata snapshot: every spelling of -m gives thin_dump's bytes.
            let held = try FileMetadataDevice(path: meta).readBlock(0).le64(0x38)
            #expect(held != 0)
            for args in [["-m"], ["--metadata-snap"], ["-m\(held)"], ["--metadata-snap=\(held)"], ["-m", "\(held)"]] {
                #expect(try Read.dump(["--metadata", meta] + args) == tm.stdout, "\(name) \(args)")
            }
            #expect(try Read.dump(["--metadata", meta, "-m", "--skip-mappings"]) == (try Tool.run("thin_dump", [meta, "-m", "--skip-mappings"])).stdout)
            for id in try Read.deviceIDs(meta, snap: true).prefix(3) {
                #expect(try Read.dump(["--metadata", meta, "-m", "--dev-id", String(id)]) == (try Tool.run("thin_dump", [meta, "-m", "--dev-id", String(id)])).stdout)
            }
            // The wrong block: thin_dump's message, exit 1, nothing on stdout.
            let wrong = try Tool.run("thin_dump", [meta, "-m\(held + 1)"])
            let ours = Read.dumpFailure(["--metadata", meta, "-m\(held + 1)"])
            #expect(!wrong.ok && wrong.stdout.isEmpty && ours.output.isEmpty)
            #expect(ours.error?.hasPrefix(wrong.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) == true, "\(ours.error ?? "") vs \(wrong.stderr)")
        } else {
            let ours = Read.dumpFailure(["--metadata", meta, "-m"])
            #expect(ours.error?.hasPrefix(tm.stderr.trimmingCharacters(in: .whitespacesAndNewlines)) == true && !tm.ok)
            #expect(ours.output.isEmpty)
        }
    }

    @Test func metadataSnapArgumentSpellings() throws {
        func opts(_ args: [String]) throws -> PoolDump.Options { try Dump.parse(["--metadata", "x"] + args).options }
        #expect(try opts([]).mode == .live)
        for args in [["-m"], ["--metadata-snap"], ["-m", "--dev-id", "3"]] {
            let o = try opts(args)
            #expect(o.mode == .held(block: nil), "\(args)")
        }
        for args in [["-m5"], ["-m", "5"], ["--metadata-snap=5"], ["--metadata-snap", "5"]] {
            let o = try opts(args)
            #expect(o.mode == .held(block: 5), "\(args)")
        }
        #expect(try opts(["-m", "--dev-id", "3"]).deviceIDs == [3])
        #expect(throws: (any Error).self) { try Dump.parse(["--metadata", "x", "-mfoo"]) }
        #expect(try PoolCommand.Ls.parse(["--metadata", "x", "-m7"]).snap.mode() == .held(block: 7))
    }

    /// Run merging, on hand-made input: equal times only, across any boundary, singles for runs of one.
    @Test func runMerging() throws {
        let out = TextOutput.memory()
        var w = ThinDumpXMLWriter(out: out)
        w.beginDevice(.init(id: 1, mappedBlocks: 6, transaction: 2, creationTime: 3, snapTime: 4))
        for (v, d, t) in [(0, 10, 1), (1, 11, 1), (2, 12, 2), (3, 13, 2), (5, 14, 2), (6, 16, 2), (7, UInt64.max >> 24, 0)] as [(UInt64, UInt64, UInt32)] {
            try w.mapping(virtualBlock: v, dataBlock: d, time: t)
        }
        try w.endDevice()
        try out.flush()
        #expect(out.text == """
              <device dev_id="1" mapped_blocks="6" transaction="2" creation_time="3" snap_time="4">
                <range_mapping origin_begin="0" data_begin="10" length="2" time="1"/>
                <range_mapping origin_begin="2" data_begin="12" length="2" time="2"/>
                <single_mapping origin_block="5" data_block="14" time="2"/>
                <single_mapping origin_block="6" data_block="16" time="2"/>
                <single_mapping origin_block="7" data_block="1099511627775" time="0"/>
              </device>

            """)
    }

    @Test func decimalFormatting() throws {
        let out = TextOutput.memory()
        for v: UInt64 in [0, 9, 10, 99, 100, 12345, UInt64.max] { out.append(decimal: v); out.append(byte: 32) }
        try out.flush()
        #expect(out.text == "0 9 10 99 100 12345 18446744073709551615 ")
    }
}
