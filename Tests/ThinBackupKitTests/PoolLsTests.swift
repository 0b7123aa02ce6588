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
