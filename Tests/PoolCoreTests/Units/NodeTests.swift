import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// B-tree nodes (FORMAT.md §3.1, §3.2): layout read from hand-built bytes and from nodes the
/// kernel wrote, structural checks, in-node edits.
@Suite("Node")
struct NodeTests {
    /// A leaf built byte by byte (not through Node): flags, count, capacity, value size,
    /// keys from 32, values after room for `maxEntries` keys.
    static func handBuiltLeaf(keys: [UInt64], values: [UInt64], maxEntries: Int = 252, valueSize: Int = 8) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 4096)
        func put32(_ o: Int, _ v: UInt32) { for i in 0..<4 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        func put64(_ o: Int, _ v: UInt64) { for i in 0..<8 { b[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        put32(4, 2)
        put32(16, UInt32(keys.count))
        put32(20, UInt32(maxEntries))
        put32(24, UInt32(valueSize))
        for (i, k) in keys.enumerated() { put64(32 + 8 * i, k) }
        for (i, v) in values.enumerated() { put64(32 + 8 * maxEntries + valueSize * i, v) }
        return b
    }

    @Test func valuesStartAfterRoomForMaxEntriesKeys() throws {
        let bytes = Self.handBuiltLeaf(keys: [3, 9, 40], values: [0xAAAA, 0xBBBB, 0xCCCC])
        let n = try Node(decoding: bytes, location: 7, leafValueSize: 8)
        #expect(n.isLeaf && n.count == 3 && n.maxEntries == 252)
        #expect(n.keys == [3, 9, 40])
        // A reader that put the values right after the 3 keys would read zeros or keys here.
        #expect((0..<3).map(n.value64) == [0xAAAA, 0xBBBB, 0xCCCC])
        #expect(Array(n.valueBytes(1)) == [0xBB, 0xBB, 0, 0, 0, 0, 0, 0])
    }

    @Test func capacityIsTheLargestMultipleOfThreeThatFits() {
        // FORMAT.md §3.2, as found in every node of the kernel images.
        #expect(Node.maxEntries(valueSize: 4) == 336)
        #expect(Node.maxEntries(valueSize: 8) == 252)
        #expect(Node.maxEntries(valueSize: 16) == 168)
        #expect(Node.maxEntries(valueSize: 24) == 126)
    }

    /// Every node the kernel wrote in `tmeta` (all four trees and both space maps' trees)
    /// decodes, has the capacity `maxEntries(valueSize:)` gives, and a fresh empty leaf made
    /// by PoolCore is byte-identical to the kernel's (an empty device's bottom root).
    @Test func kernelNodesDecodeWithTheCapacityWeCompute() throws {
        let dir = TempDir("node-k")
        let reader = try MetadataReader(path: try KernelFixtures.decompress("tmeta", into: dir))
        let live = reader.live
        var seen: [Int: Int] = [:]
        func walk(_ t: BTreeReader) throws {
            try t.walkNodes { n, _ in
                #expect(n.maxEntries == Node.maxEntries(valueSize: n.valueSize), "block \(n.location)")
                seen[n.valueSize, default: 0] += 1
                return .children
            }
        }
        try walk(live.detailsTree)
        try walk(live.topLevelTree)
        for (id, _) in try live.devices() { try walk(try live.mappingTree(of: id)) }
        try walk(BTreeReader(source: reader.source, root: reader.superblock.dataSpaceMapRoot.bitmapRoot, leafValueSize: 16))
        try walk(BTreeReader(source: reader.source, root: reader.superblock.dataSpaceMapRoot.refCountRoot, leafValueSize: 4))
        try walk(BTreeReader(source: reader.source, root: reader.superblock.metadataSpaceMapRoot.refCountRoot, leafValueSize: 4))
        #expect(seen.keys.sorted() == [4, 8, 16, 24], "\(seen)")

        let empty = try KernelFixtures.decompress("tmeta_device_id_reuse", into: dir)
        let r2 = try MetadataReader(path: empty)
        let root = try r2.live.mappingRoot(of: 1)
        let kernelLeaf = try r2.source.readBlock(root)
        #expect(Node(emptyLeaf: true, valueSize: 8, location: root).sealed() == kernelLeaf)
    }

    @Test func structuralDamageIsNamed() throws {
        func decode(_ edit: (inout [UInt8]) -> Void, leafValueSize: Int = 8) -> MetadataError? {
            var b = Self.handBuiltLeaf(keys: [1, 2, 3], values: [1, 2, 3])
            edit(&b)
            do { _ = try Node(decoding: b, location: 9, leafValueSize: leafValueSize); return nil } catch { return error }
        }
        #expect(decode { _ in } == nil)
        #expect(decode { $0[4] = 0 } == .badNode(block: 9, reason: "flags 0 mark neither internal nor leaf"))
        #expect(decode { $0[4] = 3 } == .badNode(block: 9, reason: "flags 3 mark both internal and leaf"))
        #expect(decode({ _ in }, leafValueSize: 24) == .valueSize(block: 9, expected: 24, found: 8))
        #expect(decode { $0[20] = 0; $0[21] = 2 } == .badNode(block: 9, reason: "max_entries 512 does not fit a block with 8-byte values"))
        #expect(decode { $0[16] = 253 } == .badNode(block: 9, reason: "nr_entries 253 exceeds max_entries 252"))
        #expect(decode { $0[40] = 1 } == .keysOutOfOrder(block: 9, index: 1))  // keys 1, 1, 3: not strictly ascending
    }

    @Test func shortInputThrowsInsteadOfTrapping() {
        for size in [0, 31, 100, 4095] {
            #expect(throws: MetadataError.shortBlock(block: 5, size: size)) {
                try Node(decoding: [UInt8](repeating: 0xFF, count: size), location: 5, leafValueSize: 8)
            }
        }
    }

    @Test func lowerBoundIsTheLastKeyAtOrBelow() throws {
        let n = try Node(decoding: Self.handBuiltLeaf(keys: [10, 20, 30], values: [0, 0, 0]), location: 1, leafValueSize: 8)
        #expect([5, 10, 11, 20, 29, 30, 99].map { n.lowerBound($0) } == [-1, 0, 0, 1, 1, 2, 2])
        let empty = Node(emptyLeaf: true, valueSize: 8, location: 1)
        #expect(empty.lowerBound(0) == -1)
    }

    @Test func editsKeepKeysAndValuesPaired() throws {
        var n = Node(emptyLeaf: true, valueSize: 24, location: 4)
        func value(_ k: UInt64) -> [UInt8] { (0..<24).map { UInt8(truncatingIfNeeded: k &* 31 &+ UInt64($0)) } }
        var model: [UInt64] = []
        var rng = SeededRNG(seed: 5)
        for _ in 0..<126 {
            var k = rng.next() % 10_000
            while model.contains(k) { k = rng.next() % 10_000 }
            let i = n.lowerBound(k) + 1
            n.insertEntry(at: i, key: k, value: value(k))
            model.insert(k, at: i)
        }
        #expect(n.count == 126 && n.keys == model.sorted())
        for _ in 0..<60 { n.removeEntry(at: Int(rng.next() % UInt64(n.count))) }
        #expect(n.count == 66)
        // Decoding the sealed block sees the same pairs (ascending keys, each with its own value).
        let back = try Node(decoding: try BlockValidator.check(n.sealed(), kind: .node, location: 4), location: 4, leafValueSize: 24)
        #expect(back.keys == n.keys && back.keys == back.keys.sorted())
        for i in 0..<back.count { #expect(Array(back.valueBytes(i)) == value(back.key(i))) }
    }

    @Test func theChecksumCoversTheWholeBlockAfterItsField() throws {
        let sealed = Node(emptyLeaf: true, valueSize: 8, location: 12).sealed()
        try BlockValidator.check(sealed, kind: .node, location: 12)
        for offset in [4, 16, 31, 2000, 4095] {  // header, keys, unused space at the end
            var b = sealed
            b[offset] ^= 1
            #expect(throws: MetadataError.self, "byte \(offset)") { try BlockValidator.check(b, kind: .node, location: 12) }
        }
        // The same bytes are not a valid bitmap (another salt) nor valid at another location.
        #expect(throws: MetadataError.self) { try BlockValidator.check(sealed, kind: .bitmap, location: 12) }
        #expect(throws: MetadataError.wrongLocation(block: 13, kind: .node, found: 12)) {
            try BlockValidator.check(sealed, kind: .node, location: 13)
        }
    }
}
