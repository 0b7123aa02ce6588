import Delta
@testable import PoolCore
import Testing
import TestSupport

/// The sharing-aware walk on metadata the kernel wrote: snapshots whose trees
/// share internal nodes and leaves.
@Suite struct KernelSharingTests {
    /// Every metadata block of a device's bottom tree, by a plain walk.
    static func nodes(_ view: MetadataView, _ dev: UInt64) throws -> Set<UInt64> {
        var out = Set<UInt64>()
        try view.mappingTree(of: dev).walkNodes { n, _ in out.insert(n.location); return .children }
        return out
    }

    /// For every ordered pair of devices: the changes-only diff reads no block
    /// that both trees reach, only the blocks one tree alone reaches (a tenth of
    /// the full diff's reads or less when 90% of the nodes are shared); the full
    /// diff reads each node of both trees once.
    @Test(arguments: ["tmeta", "tmeta_with_shared_internals_and_leaves", "tmeta_with_shared_internal_root"])
    func changesSkipSharedBlocks(image: String) throws {
        let dir = TempDir("ksh")
        let path = try KernelFixtures.decompress(image, into: dir)
        let device = try FileMetadataDevice(path: path)
        let plain = try MetadataReader(source: device).live
        let devs = try plain.devices().map(\.id)
        var sharingPairs = 0
        for a in devs {
            for b in devs where a != b {
                let left = try Self.nodes(plain, a), right = try Self.nodes(plain, b)
                let shared = left.intersection(right)
                let changed = CountingReader(device)
                let view = try MetadataReader(source: changed).live
                let diff = try MappingDiff(view: view, left: a, right: b)
                let (before, seen) = (changed.reads, changed.distinct)  // superblock, top-level lookups
                var changeRuns: [DeltaRun] = []
                try diff.changes { changeRuns.append($0) }
                let readByChanges = changed.reads - before
                let walked = changed.distinct.subtracting(seen)
                #expect(walked.isDisjoint(with: shared),
                        "\(image) \(a)→\(b): read shared blocks \(walked.intersection(shared).sorted().prefix(10))")
                #expect(readByChanges == walked.count, "\(image) \(a)→\(b): a block read twice")

                let full = CountingReader(device)
                let fview = try MetadataReader(source: full).live
                let fdiff = try MappingDiff(view: fview, left: a, right: b)
                let fbefore = full.reads
                var allRuns: [DeltaRun] = []
                try fdiff.all { allRuns.append($0) }
                let union = left.union(right)
                #expect(full.reads - fbefore == union.count, "\(image) \(a)→\(b): each node read once")
                #expect(allRuns.filter { $0.kind != .same } == changeRuns)
                // Exactly the nodes only one tree reaches are read (their ancestors are unshared too).
                #expect(readByChanges == union.count - shared.count, "\(image) \(a)→\(b)")
                if shared.count * 10 > union.count * 9 {
                    sharingPairs += 1
                    #expect(readByChanges * 10 < full.reads - fbefore,
                            "\(image) \(a)→\(b): changes read \(readByChanges) of \(union.count) nodes (\(shared.count) shared)")
                }
            }
        }
        if image != "tmeta" { #expect(sharingPairs > 0, "\(image): no pair shares 90% of its nodes") }
    }
}
