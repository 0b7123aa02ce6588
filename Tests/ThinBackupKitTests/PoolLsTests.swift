import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// `thin-backup pool ls` against thin_ls 0.9.0 and against the generator's own model.
@Suite struct PoolLsTests {
    @Test(arguments: [(UInt64(31), 0), (32, 1), (33, 2), (34, 40), (35, 700), (36, 5000), (37, 25_000), (38, 100_000)])
    func randomPoolsMatchThinLs(seed: UInt64, mappings: Int) throws {
        try Tool.requireThinTools()
        let dir = TempDir("ls")
        defer { withExtendedLifetime(dir) {} }
        let pool = RandomPoolXML.generate(seed: seed, mappings: mappings)
        let meta = try RandomPool.restore(pool, into: dir)
        for (ours, theirs) in [
            (["--fields", Read.allLsFields], ["-o", Read.allLsFields]),
            ([], ["-o", Read.defaultLsFields]),
            (["-o", "DEV,MAPPED,EXCLUSIVE,SHARED", "--no-headers"], ["-o", "DEV,MAPPED,EXCLUSIVE,SHARED", "--no-headers"]),
        ] {
            let t = try Tool.run("thin_ls", [meta] + theirs)
            try #require(t.ok, "\(t.stderr)")
            #expect(try Read.ls(["--metadata", meta] + ours) == t.stdout, "seed \(seed) \(ours)")
        }
        // Independent model: exclusive = mappings whose data block no other mapping uses.
        let expected = pool.exclusiveCounts()
        let json = try Read.ls(["--metadata", meta, "--format", "json"])
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [[String: UInt64]]
        #expect(rows.map { $0["dev"]! } == pool.devices.map(\.id))
        for (row, d) in zip(rows, pool.devices) {
            #expect(row["mapped_blocks"] == UInt64(d.mappings.count), "seed \(seed) dev \(d.id)")
            #expect(row["exclusive_blocks"] == UInt64(expected[d.id]!), "seed \(seed) dev \(d.id)")
            #expect(row["shared_blocks"] == UInt64(d.mappings.count - expected[d.id]!))
            #expect(row["mapped_bytes"] == UInt64(d.mappings.count) * UInt64(pool.dataBlockSize) * 512)
            #expect(row["snap_time"] == UInt64(d.snapTime) && row["creation_time"] == UInt64(d.creationTime))
        }
    }

    @Test(arguments: KernelFixtures.names)
    func kernelFixturesMatchThinLs(name: String) throws {
        try Tool.requireThinTools()
        let dir = TempDir("lsk")
        defer { withExtendedLifetime(dir) {} }
        let meta = try KernelFixtures.decompress(name, into: dir)
        for snap in [[String](), ["-m"]] {
            let t = try Tool.run("thin_ls", [meta, "-o", Read.allLsFields] + snap)
            if !t.ok { continue }  // no metadata snapshot held
            #expect(try Read.ls(["--metadata", meta, "--fields", Read.allLsFields] + snap) == t.stdout, "\(name) \(snap)")
            #expect(try Read.ls(["--metadata", meta] + snap) == (try Tool.run("thin_ls", [meta, "-o", Read.defaultLsFields] + snap)).stdout)
        }
    }

    /// Data blocks on both sides of `UseCounts`' page boundaries (2^21 blocks), on counter-word
    /// boundaries (32 blocks), the last block of the data device, a block three devices map and a
    /// device that maps nothing: the exclusive counts written out by hand, and thin_ls's bytes.
    @Test func pageBoundariesMatchThinLsAndHandCounts() throws {
        try Tool.requireThinTools()
        let dir = TempDir("lsp")
        defer { withExtendedLifetime(dir) {} }
        let p: UInt64 = 1 << 21
        #expect(PoolListing.UseCounts.pageShift == 21)
        let dataBlocks = 3 * p + 64
        func single(_ v: UInt64, _ d: UInt64) -> String { "    <single_mapping origin_block=\"\(v)\" data_block=\"\(d)\" time=\"0\"/>\n" }
        let xml = """
            <superblock uuid="" time="1" transaction="1" flags="0" version="2" data_block_size="128" nr_data_blocks="\(dataBlocks)">
              <device dev_id="1" mapped_blocks="7" transaction="0" creation_time="0" snap_time="0">
            \(single(0, 0))    <range_mapping origin_begin="1" data_begin="\(p - 2)" length="3" time="0"/>
            \(single(10, 2 * p - 1))\(single(11, 2 * p))\(single(20, dataBlocks - 1))  </device>
              <device dev_id="2" mapped_blocks="5" transaction="0" creation_time="1" snap_time="1">
            \(single(1, p - 1))\(single(2, p))\(single(5, 2 * p + 7))\(single(6, 31))\(single(7, 32))  </device>
              <device dev_id="3" mapped_blocks="2" transaction="0" creation_time="1" snap_time="1">
            \(single(100, p))\(single(101, 33))  </device>
              <device dev_id="4" mapped_blocks="0" transaction="0" creation_time="1" snap_time="1">
              </device>
            </superblock>

            """
        let xmlPath = dir.file("pages.xml")
        try xml.write(toFile: xmlPath, atomically: false, encoding: .utf8)
        let meta = dir.sparseFile("pages.meta", size: 8 << 20)
        let r = try Tool.run("thin_restore", ["-i", xmlPath, "-o", meta])
        try #require(r.ok, "\(r.stderr)")
        // Device 1: blocks 0, p-2, 2p-1, 2p and the last are its own; p-1 (with 2) and p (with 2 and 3) are not.
        let json = try Read.ls(["--metadata", meta, "--format", "json"])
        let rows = try JSONSerialization.jsonObject(with: Data(json.utf8)) as! [[String: UInt64]]
        #expect(rows.map { [$0["dev"]!, $0["mapped_blocks"]!, $0["exclusive_blocks"]!, $0["shared_blocks"]!] }
                == [[1, 7, 5, 2], [2, 5, 3, 2], [3, 2, 1, 1], [4, 0, 0, 0]])
        for fields in [Read.allLsFields, Read.defaultLsFields] {
            let t = try Tool.run("thin_ls", [meta, "-o", fields])
            try #require(t.ok, "\(t.stderr)")
            #expect(try Read.ls(["--metadata", meta, "--fields", fields]) == t.stdout)
        }
    }

    @Test func humanisedSizes() {
        // Values from FORMAT.md §7.3 (observed with thin_ls 0.9.0).
        #expect(PoolListing.humanise(4_194_304) == "4096KiB")
        #expect(PoolListing.humanise(702_087_168) == "670MiB")
        #expect(PoolListing.humanise(327_680) == "320KiB")
        #expect(PoolListing.humanise(0) == "0")
        #expect(PoolListing.humanise(1_114_112) == "1088KiB")
    }

    @Test func unknownFieldIsRejected() {
        #expect(throws: JobError.self) { try PoolListing.fields("DEV,BOGUS") }
    }
}
