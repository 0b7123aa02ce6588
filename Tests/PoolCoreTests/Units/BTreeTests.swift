import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// Copy-on-write B-tree mutation (FORMAT.md §3.7) checked against a model and through the
/// read path: contents, the one-third fill rule, reference counts, and that a committed
/// tree is never overwritten.
@Suite("BTree")
struct BTreeTests {
    static func value(_ k: UInt64, _ gen: UInt64 = 0) -> [UInt8] {
        var v = [UInt8](repeating: 0, count: 8)
        v.setLE64(0, k &* 3 &+ gen)
        return v
    }

    /// A transaction on a fresh in-memory metadata device.
    static func freshTM(blocks: UInt64 = 4096) throws -> TransactionManager {
        try TransactionManager(formatting: MemoryMetadataDevice(blockCount: blocks), metadataBlocks: blocks)
    }

    /// Every node of the tree at `root`, checking what thin_check checks: keys within the
    /// parent's range (the walk throws otherwise) and non-root nodes at least a third full.
    static func nodes(_ tm: TransactionManager, _ root: UInt64, valueSize: Int = 8) throws -> [Node] {
        var out: [Node] = []
        try BTreeReader(source: tm, root: root, leafValueSize: valueSize).walkNodes { n, depth in
            if depth > 0 { #expect(n.count >= n.maxEntries / 3, "block \(n.location): \(n.count) of \(n.maxEntries) entries") }
            out.append(n)
            return .children
        }
        return out
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func randomInsertsAndRemovalsMatchAModel(seed: UInt64) throws {
        let tm = try Self.freshTM()
        let tree = BTree(tm: tm, leafValueSize: 8, policy: .none)
        var root = try tree.create()
        let baseline = tm.metadataCounts.allocatedCount - 1
        var model: [UInt64: [UInt8]] = [:]
        var rng = SeededRNG(seed: seed)
        for i in 0..<6000 {
            let k = rng.next() % 20_000
            let v = Self.value(k, UInt64(i))
            let (r, old) = try tree.update(root: root, key: k) { _ in v }
            #expect(old == model[k])
            root = r
            model[k] = v
        }
        for _ in 0..<5000 {
            let k = rng.next() % 20_000
            let (r, removed) = try tree.remove(root: root, key: k)
            #expect(removed == model[k])
            root = r
            model[k] = nil
        }
        let reader = BTreeReader(source: tm, root: root, leafValueSize: 8)
        #expect(try reader.entries64().map(\.0) == model.keys.sorted())
        for (k, v) in model { #expect(try reader.lookup(k) == v) }
        for k in [20_000, 20_001, UInt64.max] { #expect(try reader.lookup(k) == nil) }
        #expect(try reader.entries64(in: 5000..<6000).map(\.0) == model.keys.filter { (5000..<6000).contains($0) }.sorted())
        // Every node has exactly one reference and nothing else leaked: the allocated
        // metadata blocks are the bootstrap ones plus this tree's nodes.
        let nodes = try Self.nodes(tm, root)
        #expect(nodes.count > 3, "the tree should have several levels' worth of nodes")
        for n in nodes { #expect(tm.metadataCounts[n.location] == 1) }
        #expect(tm.metadataCounts.allocatedCount == baseline + UInt64(nodes.count))
    }

    @Test func removingEverythingLeavesAnEmptyRootLeaf() throws {
        let tm = try Self.freshTM()
        let tree = BTree(tm: tm, leafValueSize: 8, policy: .none)
        var root = try tree.create()
        let keys = (0..<2000).map { UInt64($0) * 7 }
        for k in keys { root = try tree.insert(root: root, key: k, value: Self.value(k)) }
        #expect(try Self.nodes(tm, root).count > 8)
        for k in keys.reversed() { root = try tree.remove(root: root, key: k).root }
        let n = try tm.node(root, leafValueSize: 8)
        #expect(n.isLeaf && n.count == 0)
        let again = try tree.remove(root: root, key: 7)
        #expect(again.root == root && again.removed == nil)
    }

    /// Changes after a commit go to new blocks: the committed tree still reads as it was.
    @Test func aCommittedTreeIsNeverOverwritten() throws {
        let dev = MemoryMetadataDevice(blockCount: 2048)
        let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: 100)
        let tree = BTree(tm: md.tm, leafValueSize: 8, policy: .none)
        var root = try tree.create()
        for k in 0..<UInt64(1500) { root = try tree.insert(root: root, key: k, value: Self.value(k)) }
        try md.tm.incMetadata(root)  // held by the test, like a snapshot
        try md.commit()
        let committedRoot = root
        let committedBlocks = try Self.nodes(md.tm, root).map(\.location)
        let before = committedBlocks.map { dev.blocks[$0] }
        for k in stride(from: UInt64(0), to: 1500, by: 3) { root = try tree.remove(root: root, key: k).root }
        for k in 1500..<UInt64(1800) { root = try tree.insert(root: root, key: k, value: Self.value(k)) }
        try md.commit()
        #expect(root != committedRoot)
        #expect(committedBlocks.map { dev.blocks[$0] } == before)
        let old = BTreeReader(source: dev, root: committedRoot, leafValueSize: 8)
        #expect(try old.entries64().map(\.0) == Array(0..<1500))
    }

    /// Copying a shared node gives its children one more reference each (FORMAT.md §3.7);
    /// deleting one of two owners leaves the tree intact, deleting the other frees it all.
    @Test func sharedNodesAreCopiedWithTheirChildrenCounted() throws {
        let tm = try Self.freshTM()
        let tree = BTree(tm: tm, leafValueSize: 8, policy: .none)
        var root = try tree.create()
        for k in 0..<UInt64(1000) { root = try tree.insert(root: root, key: k, value: Self.value(k)) }
        let baseline = tm.metadataCounts.allocatedCount
        let shared = root
        let children = try tm.node(shared, leafValueSize: 8)
        try #require(children.isInternal && children.count > 2)
        try tm.incMetadata(shared)  // a second owner (as create_snap does)
        tm.newThisTransaction.removeAll()  // as after a commit: nothing may change in place
        let mine = try tree.insert(root: shared, key: 5000, value: Self.value(5000))
        #expect(mine != shared && tm.metadataCounts[shared] == 1)
        let copy = try tm.node(mine, leafValueSize: 8)
        let last = children.count - 1  // the child on the path to 5000 was itself copied
        for i in 0..<last { #expect(tm.metadataCounts[children.value64(i)] == 2, "child \(i)") }
        #expect(copy.value64(last) != children.value64(last) && tm.metadataCounts[children.value64(last)] == 1)
        // The other owner's tree is untouched.
        #expect(try BTreeReader(source: tm, root: shared, leafValueSize: 8).entries64().map(\.0) == Array(0..<1000))

        try tree.deleteTree(root: shared)
        #expect(try BTreeReader(source: tm, root: mine, leafValueSize: 8).entries64().map(\.0) == Array(0..<1000) + [5000])
        for i in 0..<last { #expect(tm.metadataCounts[children.value64(i)] == 1) }
        try tree.deleteTree(root: mine)
        #expect(tm.metadataCounts.allocatedCount == baseline - UInt64(try countNodes(1000)))
    }

    /// Nodes of a 1000-entry tree built by ascending inserts (root + leaves), from the tree itself.
    private func countNodes(_ n: Int) throws -> Int {
        let tm = try Self.freshTM()
        let tree = BTree(tm: tm, leafValueSize: 8, policy: .none)
        var root = try tree.create()
        for k in 0..<UInt64(n) { root = try tree.insert(root: root, key: k, value: Self.value(k)) }
        return try Self.nodes(tm, root).count
    }
}
