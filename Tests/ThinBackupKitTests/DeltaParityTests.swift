import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// `thin-backup delta` against Debian's thin_delta 0.9.0, byte for byte.
@Suite struct DeltaParityTests {
    /// Compares plain, --verbose and --changes-only (plain and verbose) for one ordered pair.
    static func expectParity(_ path: String, _ a: UInt64, _ b: UInt64, snap: [String] = [], label: String) throws {
        let args = ["--metadata", path, "--thin1", "\(a)", "--thin2", "\(b)"] + snap
        let plain = try DeltaRunner.oracle(path, a, b, snap)
        #expect(try DeltaRunner.ours(args) == plain, "\(label) \(a)→\(b) \(snap): plain")
        #expect(try DeltaRunner.ours(args + ["--changes-only"]) == DeltaRunner.withoutSame(plain),
                "\(label) \(a)→\(b) \(snap): --changes-only")
        let verbose = try DeltaRunner.oracle(path, a, b, snap + ["--verbose"])
        #expect(try DeltaRunner.ours(args + ["--verbose"]) == verbose, "\(label) \(a)→\(b) \(snap): --verbose")
        #expect(try DeltaRunner.ours(args + ["--verbose", "--changes-only"]) == DeltaRunner.verboseWithoutSame(verbose),
                "\(label) \(a)→\(b) \(snap): --verbose --changes-only")
    }

    /// Every ordered pair of devices (a device with itself included) of every kernel image;
    /// through the held metadata snapshot (-m) where one is held.
    @Test(arguments: KernelFixtures.names)
    func kernelImages(image: String) throws {
        try Tool.requireThinTools()
        let dir = TempDir("kdelta")
        let path = try KernelFixtures.decompress(image, into: dir)
        let held = try MetadataReader(path: path).superblock.heldRoot != 0
        let live = try DeltaRunner.devices(path)
        #expect(!live.isEmpty)
        for a in live {
            // With a snapshot held (its metadata_snap attribute shown), a sample of the live pairs.
            for b in live where !held || a == live[0] || b == live[0] {
                try Self.expectParity(path, a, b, label: image)
            }
        }
        guard held else { return }
        let snapped = try DeltaRunner.devices(path, metadataSnap: true)
        #expect(!snapped.isEmpty)
        for a in snapped {
            for b in snapped {
                try Self.expectParity(path, a, b, snap: ["-m"], label: image)
            }
        }
    }

    /// Every ordered pair of devices of seeded random pools restored by thin_restore
    /// (trees that share nothing; snapshot chains with rewritten, discarded and new blocks).
    @Test(arguments: [(UInt64(11), 0), (12, 1), (13, 40), (14, 700), (15, 3000), (16, 9000), (17, 30_000), (18, 60_000)])
    func randomRestoredPools(seed: UInt64, mappings: Int) throws {
        try Tool.requireThinTools()
        let dir = TempDir("rdelta")
        let pool = RandomPoolXML.generate(seed: seed, mappings: mappings)
        let path = try RandomPool.restore(pool, into: dir)
        let devs = pool.devices.map(\.id)
        for a in devs {
            for b in devs {
                try Self.expectParity(path, a, b, label: "seed \(seed)")
            }
        }
    }

    /// The forms of -m: alone, joined block, separate block (ours), long with and without value.
    @Test func metadataSnapshotForms() throws {
        try Tool.requireThinTools()
        let dir = TempDir("mdelta")
        let path = try KernelFixtures.decompress("tmeta_with_metadata_snap", into: dir)
        let held = try MetadataReader(path: path).superblock.heldRoot
        let expected = try DeltaRunner.oracle(path, 1, 16, ["-m\(held)"])
        #expect(expected.hasPrefix("<superblock uuid=\"\" time=\"15\" transaction=\"21\" data_block_size=\"128\" nr_data_blocks=\"0\">\n"))
        for form in [["-m"], ["-m\(held)"], ["-m", "\(held)"], ["--metadata-snap"], ["--metadata-snap=\(held)"], ["--metadata-snap", "\(held)"]] {
            #expect(try DeltaRunner.ours(["--metadata", path, "--thin1", "1", "--thin2", "16"] + form) == expected, "\(form)")
            #expect(try DeltaRunner.ours(form + ["--thin1", "1", "--metadata", path, "--thin2", "16"]) == expected, "\(form) first")
        }
        let live = try DeltaRunner.ours(["--metadata", path, "--snap1", "1", "--snap2", "16"])
        #expect(live.hasPrefix("<superblock uuid=\"\" time=\"15\" transaction=\"21\" data_block_size=\"128\" nr_data_blocks=\"65536\" metadata_snap=\"\(held)\">\n"))
    }

    /// --pool DIR reads DIR/metadata.
    @Test func poolFolder() throws {
        try Tool.requireThinTools()
        let dir = TempDir("pdelta")
        let path = try KernelFixtures.decompress("tmeta_with_shared_internals_and_leaves", into: dir)
        try FileManager.default.createDirectory(atPath: dir.file("pool"), withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: path, toPath: dir.file("pool/metadata"))
        let expected = try DeltaRunner.oracle(dir.file("pool/metadata"), 2, 1)
        #expect(try DeltaRunner.ours(["--pool", dir.file("pool"), "--thin1", "2", "--thin2", "1"]) == expected)
    }

    struct Run: Equatable, CustomStringConvertible {
        var kind: String, begin: UInt64, length: UInt64, left: UInt64?, right: UInt64?
        var description: String { "\(kind) \(begin)+\(length) \(left.map(String.init) ?? "-")/\(right.map(String.init) ?? "-")" }
    }

    /// The runs of thin_delta --verbose output: one per `range`, with the data blocks of each side.
    static func verboseRuns(_ xml: String) -> [Run] {
        var out: [Run] = []
        var kind = ""
        for line in xml.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if ["<same>", "<different>", "<left_only>", "<right_only>"].contains(t) {
                kind = String(t.dropFirst().dropLast())
            } else if t.hasPrefix("<range ") {
                let a = attributes(t)
                var r = Run(kind: kind, begin: a["begin"]!, length: a["length"]!, left: nil, right: nil)
                switch kind {
                case "different": (r.left, r.right) = (a["left_data_begin"]!, a["right_data_begin"]!)
                case "same": (r.left, r.right) = (a["data_begin"]!, a["data_begin"]!)
                case "left_only": r.left = a["data_begin"]!
                default: r.right = a["data_begin"]!
                }
                out.append(r)
            }
        }
        return out
    }

    /// --format json: one object a run and line, the runs thin_delta --verbose lists (the
    /// same ones only without --changes-only), with their data blocks.
    @Test func jsonRuns() throws {
        try Tool.requireThinTools()
        let dir = TempDir("jdelta")
        let path = try KernelFixtures.decompress("tmeta", into: dir)
        for (a, b) in [(UInt64(1), UInt64(16)), (16, 1), (3, 9)] {
            let expected = Self.verboseRuns(try DeltaRunner.oracle(path, a, b, ["--verbose"]))
            for changesOnly in [false, true] {
                let text = try DeltaRunner.ours(["--metadata", path, "--thin1", "\(a)", "--thin2", "\(b)", "--format", "json"]
                                                + (changesOnly ? ["--changes-only"] : []))
                var got: [Run] = []
                for line in text.split(separator: "\n") {
                    let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                    #expect(Set(obj.keys) == ["kind", "begin", "length", "left_data", "right_data"])
                    func n(_ k: String) -> UInt64? { (obj[k] as? NSNumber)?.uint64Value }
                    got.append(Run(kind: obj["kind"] as? String ?? "?", begin: n("begin") ?? 0, length: n("length") ?? 0,
                                   left: n("left_data"), right: n("right_data")))
                }
                let want = changesOnly ? expected.filter { $0.kind != "same" } : expected
                #expect(got == want, "\(a)→\(b) changesOnly \(changesOnly)")
                #expect(!want.isEmpty)
            }
        }
    }

    static func attributes(_ element: String) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        let parts = element.split(separator: "\"", omittingEmptySubsequences: false)
        var i = 0
        while i + 1 < parts.count {
            let key = parts[i].split(separator: " ").last.map { String($0.dropLast()) } ?? ""
            out[key] = UInt64(parts[i + 1])
            i += 2
        }
        return out
    }
}
