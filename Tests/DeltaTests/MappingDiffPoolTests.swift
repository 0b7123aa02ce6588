import Delta
@testable import PoolCore
import Testing
import TestSupport

/// The diff on pools built with PoolCore's snapshots, writes, discards and
/// deletes, against a brute-force comparison of the devices' full mappings.
@Suite struct MappingDiffPoolTests {
    /// Random histories: snapshots (of snapshots), clustered writes, discards, deletes and
    /// commits; then every ordered pair of devices is diffed, live and (when one
    /// is held) through the metadata snapshot.
    @Test(arguments: 1...30)
    func matchesBruteForce(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        func below(_ n: UInt64) -> UInt64 { rng.next() % n }
        let pool = try ModelPool()
        try pool.createThin(1)
        let span: UInt64 = [300, 3000, 30_000][Int(below(3))]
        let initial = seed % 15 == 0 ? 20_000 : below(3000)
        var written: UInt64 = 0
        while written < initial {
            let n = min(1 + below(200), initial - written)
            try pool.write(1, at: below(span), count: n)
            written += n
        }
        try pool.commit()
        var nextID: UInt64 = 2
        var held: [UInt64: [UInt64: UInt64]]? = nil
        for _ in 0..<(10 + below(30)) {
            let devs = pool.devices
            let dev = devs[Int(below(UInt64(devs.count)))]
            switch below(100) {
            case 0..<25 where devs.count < 7:
                try pool.snapshot(nextID, of: dev)
                nextID += 1 + below(3)
            case 0..<60:
                for _ in 0..<(1 + below(4)) { try pool.write(dev, at: below(span), count: 1 + below(40)) }
            case 60..<75:
                for _ in 0..<(1 + below(3)) { try pool.discard(dev, at: below(span), count: 1 + below(60)) }
            case 75..<80 where devs.count > 2:
                try pool.delete(dev)
            case 80..<84 where held == nil:
                try pool.md.reserveMetadataSnapshot()
                held = pool.model
            default:
                try pool.commit()
            }
        }
        try pool.commit()
        let (live, _) = try pool.committedView()
        try expectMatches(pool.model, live, seed: seed)
        if let held {
            let snap = try MetadataReader(source: pool.device).metadataSnapshot()
            try expectMatches(held, snap, seed: seed)
        }
    }

    private func expectMatches(_ model: [UInt64: [UInt64: UInt64]], _ view: MetadataView, seed: UInt64) throws {
        let devs = model.keys.sorted()
        let runs = model.mapValues { ReferenceDelta.runs($0) }
        for a in devs {
            for b in devs {
                let expected = ReferenceDelta.steps(runs[a]!, runs[b]!)
                let diff = try MappingDiff(view: view, left: a, right: b)
                #expect(try diff.allRuns() == expected, "seed \(seed): all \(a) → \(b)")
                #expect(try diff.changeRuns() == expected.filter { $0.kind != .same }, "seed \(seed): changes \(a) → \(b)")
            }
        }
    }

    /// Blocks read by the changes-only diff: never a block both trees reach (so
    /// nothing under a shared subtree), no block twice, exactly the unshared nodes.
    @Test(arguments: 1...12)
    func changesReadOnlyUnsharedBlocks(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed &* 7919)
        func below(_ n: UInt64) -> UInt64 { rng.next() % n }
        let pool = try ModelPool()
        try pool.createThin(1)
        try pool.write(1, at: 0, count: 5000 + below(20_000))
        try pool.commit()
        try pool.snapshot(2, of: 1)
        try pool.commit()
        for _ in 0..<(1 + below(8)) {
            let dev: UInt64 = below(2) == 0 ? 1 : 2
            if below(4) == 0 {
                try pool.discard(dev, at: below(30_000), count: 1 + below(30))
            } else {
                try pool.write(dev, at: below(30_000), count: 1 + below(30))
            }
        }
        try pool.commit()
        let (view, counter) = try pool.committedView()
        let plain = try pool.plainView()
        let left = try ModelPool.nodes(of: 2, in: plain), right = try ModelPool.nodes(of: 1, in: plain)
        let shared = left.intersection(right)
        #expect(!shared.isEmpty, "seed \(seed): the trees share nothing; the test proves nothing")
        let diff = try MappingDiff(view: view, left: 2, right: 1)
        let before = counter.reads
        let before0 = counter.distinct
        _ = try diff.changeRuns()
        let read = counter.distinct.subtracting(before0)
        #expect(read.isDisjoint(with: shared), "seed \(seed): read shared blocks \(read.intersection(shared).sorted())")
        #expect(counter.reads - before == read.count, "seed \(seed): a block was read twice")
        #expect(read == left.symmetricDifference(right), "seed \(seed): exactly the unshared nodes are read")
    }

    /// After a one-block write to the origin of a snapshot with a large tree, the
    /// changes-only diff reads exactly the two changed root-to-leaf paths; the
    /// full diff reads every node of both trees once.
    @Test func oneBlockChangeReadsOnlyTheChangedPaths() throws {
        let pool = try ModelPool()
        try pool.createThin(1)
        for start in stride(from: UInt64(0), to: 200_000, by: 1000) {
            try pool.write(1, at: start, count: 400)  // 80,000 mappings, 400-block extents
        }
        try pool.commit()
        try pool.snapshot(2, of: 1)
        try pool.commit()
        try pool.write(1, at: 123_456 - 123_456 % 1000 + 17, count: 1)
        try pool.commit()

        let (view, counter) = try pool.committedView()
        let plain = try pool.plainView()
        let snap = try ModelPool.nodes(of: 2, in: plain), origin = try ModelPool.nodes(of: 1, in: plain)
        let changedPaths = snap.symmetricDifference(origin)
        var depth = 0
        try plain.mappingTree(of: 1).walkNodes { _, d in depth = max(depth, d); return .children }
        #expect(depth >= 2, "the tree should have at least three levels (depth \(depth))")
        #expect(changedPaths.count == 2 * (depth + 1), "one write copies one path")

        let diff = try MappingDiff(view: view, left: 2, right: 1)
        var start = counter.distinct, reads = counter.reads
        let changes = try diff.changeRuns()
        #expect(changes == [DeltaRun(kind: .different, begin: 123_017, length: 1,
                                     leftData: pool.model[2]![123_017], rightData: pool.model[1]![123_017])])
        #expect(counter.distinct.subtracting(start) == changedPaths)
        #expect(counter.reads - reads == changedPaths.count)

        start = counter.distinct
        reads = counter.reads
        let all = try diff.allRuns()
        #expect(all == ReferenceDelta.steps(pool.model[2]!, pool.model[1]!))
        let union = snap.union(origin)
        #expect(counter.reads - reads == union.count, "every node of both trees read exactly once")
        #expect(counter.distinct.isSuperset(of: union))
        #expect(union.count > 50 * changedPaths.count)
    }

    /// Identical devices (a fresh snapshot) need no read beyond the top-level lookup.
    @Test func freshSnapshotReadsNothing() throws {
        let pool = try ModelPool()
        try pool.createThin(1)
        try pool.write(1, at: 10, count: 3000)
        try pool.snapshot(2, of: 1)
        try pool.commit()
        let (view, counter) = try pool.committedView()
        let diff = try MappingDiff(view: view, left: 1, right: 2)
        let reads = counter.reads
        #expect(try diff.changeRuns().isEmpty)
        #expect(counter.reads == reads)
        let all = try diff.allRuns()
        #expect(all == ReferenceDelta.steps(pool.model[1]!, pool.model[2]!))
        #expect(all.allSatisfy { $0.kind == .same } && all.reduce(0) { $0 + $1.length } == 3000)
    }
}

/// Trees of different heights: the origin's root splits after the snapshot, so the
/// snapshot's leaves sit one level deeper in the origin's tree than in its own.
@Suite struct MappingDiffHeightTests {
    static func height(_ view: MetadataView, _ dev: UInt64) throws -> Int {
        var h = 0
        try view.mappingTree(of: dev).walkNodes { _, d in h = max(h, d); return .children }
        return h
    }

    @Test(arguments: [false, true])
    func rootSplitAfterSnapshot(writeSnapshotToo: Bool) throws {
        let pool = try ModelPool()
        try pool.createThin(1)
        // Sequential writes until the root (internal, over leaves) is nearly full.
        var v: UInt64 = 0
        while true {
            try pool.write(1, at: v, count: 500)
            v += 500
            try pool.commit()
            let root = try pool.plainView().mappingTree(of: 1)
            let n = try root.node(root.root)
            if n.isInternal && n.count >= 245 { break }
            #expect(v < 200_000, "the root never filled up")
            if v >= 200_000 { return }
        }
        try pool.snapshot(2, of: 1)
        try pool.commit()
        let before = try Self.height(pool.plainView(), 1)
        // Append until the origin's root splits.
        while try Self.height(pool.plainView(), 1) == before {
            try pool.write(1, at: v, count: 500)
            v += 500
            try pool.commit()
        }
        if writeSnapshotToo {
            try pool.write(2, at: 1234, count: 3)
            try pool.discard(2, at: 20_000, count: 7)
            try pool.commit()
        }
        let plain = try pool.plainView()
        #expect(try Self.height(plain, 1) == Self.height(plain, 2) + 1)
        let a = try ModelPool.nodes(of: 2, in: plain), b = try ModelPool.nodes(of: 1, in: plain)
        let shared = a.intersection(b)
        #expect(shared.count > 200, "the snapshot still shares its leaves with the origin")
        for (l, r) in [(UInt64(2), UInt64(1)), (1, 2)] {
            let (view, counter) = try pool.committedView()
            let diff = try MappingDiff(view: view, left: l, right: r)
            let seen = counter.distinct
            let changes = try diff.changeRuns()
            let read = counter.distinct.subtracting(seen)
            #expect(read.isDisjoint(with: shared), "\(l)→\(r): read \(read.intersection(shared).count) shared blocks")
            #expect(read == a.symmetricDifference(b), "\(l)→\(r): read exactly the unshared nodes")
            let expected = ReferenceDelta.steps(pool.model[l]!, pool.model[r]!)
            #expect(changes == expected.filter { $0.kind != .same })
            #expect(try diff.allRuns() == expected)
        }
    }
}
