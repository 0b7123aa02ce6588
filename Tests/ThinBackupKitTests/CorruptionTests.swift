import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Bad input: kernel images corrupted at chosen places. `dump` and `pool check` must fail
/// with one line naming the block and the fault — never crash, hang, or finish the XML.
@Suite struct CorruptionTests {
    /// A corrupted copy of tmeta and the blocks of interest in device 1's mapping tree.
    struct Target {
        let dir = TempDir("corrupt")
        let meta: String
        let root: UInt64       // internal root of device 1's mapping tree
        let leaf: UInt64       // a leaf in the middle of it
        let leafParent: UInt64
        let surgery: Surgery

        init() throws {
            meta = try KernelFixtures.decompress("tmeta", into: dir)
            surgery = Surgery(path: meta)
            let tree = try MetadataReader(path: meta).live.mappingTree(of: 1)
            var leaves: [(UInt64, UInt64)] = []  // (leaf, parent)
            var stack: [UInt64] = []
            try tree.walkNodes { n, depth in
                stack.removeLast(max(0, stack.count - depth))
                if n.isLeaf { leaves.append((n.location, stack.last ?? 0)) }
                stack.append(n.location)
                return .children
            }
            root = tree.root
            try #require(leaves.count > 4)
            (leaf, leafParent) = leaves[leaves.count / 2]
        }

        func dumpError() -> (error: String?, output: String) { Read.dumpFailure(["--metadata", meta]) }
    }

    /// Asserts dump and check both fail, dump with exactly `message`, check with it as prefix.
    func expectFailure(_ t: Target, _ message: String, dumpMessage: String? = nil, oracleFails: Bool = true, sourceLocation: SourceLocation = #_sourceLocation) {
        let d = t.dumpError()
        #expect(d.error == (dumpMessage ?? message), sourceLocation: sourceLocation)
        #expect(!d.output.contains("</superblock>"), sourceLocation: sourceLocation)
        let c = Read.checkFailure(t.meta)
        #expect(c?.hasPrefix(message) == true, "check: \(c ?? "passed")", sourceLocation: sourceLocation)
        if oracleFails {
            #expect(Tool.hasThinTools, "thin-provisioning-tools is not installed (scripts/setup.sh installs it)", sourceLocation: sourceLocation)
            // thin_dump refuses it too (exit 1).
            #expect((try? Tool.run("thin_dump", [t.meta]))?.ok == false, "thin_dump accepted it", sourceLocation: sourceLocation)
        }
    }

    @Test func badChecksum() throws {
        let t = try Target()
        try t.surgery.patch(t.leaf, reseal: nil) { $0[100] ^= 0x40 }
        let d = t.dumpError()
        #expect(d.error?.hasPrefix("block \(t.leaf): bad B-tree node checksum (stored 0x") == true, "\(d.error ?? "none")")
        #expect(Read.checkFailure(t.meta)?.hasPrefix("block \(t.leaf): bad B-tree node checksum") == true)
        try Tool.requireThinTools()
        #expect(!(try Tool.run("thin_dump", [t.meta])).ok)
    }

    @Test func lyingOwnLocation() throws {
        let t = try Target()
        try t.surgery.patch(t.leaf, reseal: .node) { $0.setLE64(8, t.leaf + 1) }
        expectFailure(t, "block \(t.leaf): B-tree node says it lives at block \(t.leaf + 1)")
    }

    @Test func keysOutOfOrderInsideALeaf() throws {
        let t = try Target()
        try t.surgery.patch(t.leaf, reseal: .node) { b in
            let k0 = b.le64(32), k1 = b.le64(40)
            b.setLE64(32, k1)
            b.setLE64(40, k0)
        }
        expectFailure(t, "block \(t.leaf): B-tree keys out of order at entry 1")
    }

    @Test func keyOutsideTheParentsRange() throws {
        let t = try Target()
        // The leaf's first key drops below the key its parent gives it.
        try t.surgery.patch(t.leaf, reseal: .node) { b in b.setLE64(32, 0) }
        let d = t.dumpError()
        #expect(d.error == "block \(t.leaf): B-tree keys out of order at entry 0")
        #expect(!d.output.contains("</superblock>"))
        #expect(Read.checkFailure(t.meta)?.hasPrefix("block \(t.leaf): B-tree keys out of order in the mapping tree of device 1: key 0 below its parent's key") == true)
        try Tool.requireThinTools()
        #expect(!(try Tool.run("thin_dump", [t.meta])).ok)
    }

    @Test func cycle() throws {
        let t = try Target()
        // The root's last child pointer leads back to the root.
        try t.surgery.patch(t.root, reseal: .node) { b in
            let n = Int(b.le32(16)), maxE = Int(b.le32(20))
            b.setLE64(32 + 8 * maxE + 8 * (n - 1), t.root)
        }
        let d = t.dumpError()
        #expect(d.error == "block \(t.root): B-tree cycle (node reached again from below itself)")
        #expect(!d.output.contains("</superblock>"))
        #expect(Read.checkFailure(t.meta)?.hasPrefix("block \(t.root): B-tree cycle in the mapping tree of device 1") == true)
        try Tool.requireThinTools()
        // Deliberate difference: thin_dump 0.9.0 silently leaves the looping subtree out
        // and exits 0 — a partial dump passed off as complete. We refuse instead.
        let td = try Tool.run("thin_dump", [t.meta])
        let pristine = TempDir("pristine")
        let full = try withExtendedLifetime(pristine) { try Tool.run("thin_dump", [try KernelFixtures.decompress("tmeta", into: pristine)]) }
        #expect(td.ok && td.stdout.count < full.stdout.count)
    }

    @Test func wrongValueSize() throws {
        let t = try Target()
        try t.surgery.patch(t.leaf, reseal: .node) { $0.setLE32(24, 16) }
        expectFailure(t, "block \(t.leaf): B-tree value size 16 does not fit this tree (expected 8)")
    }

    @Test func underfullNode() throws {
        let t = try Target()
        // A non-root leaf with 2 of 252 entries: thin_check refuses it and so does pool check;
        // thin_dump 0.9.0 dumps what is there, and so does dump.
        try t.surgery.patch(t.leaf, reseal: .node) { $0.setLE32(16, 2) }
        #expect(Read.checkFailure(t.meta)?.hasPrefix("block \(t.leaf): bad B-tree node: 2 entries in a non-root node, at least 84 expected") == true)
        try Tool.requireThinTools()
        #expect(!(try Tool.run("thin_check", [t.meta])).ok)
        let td = try Tool.run("thin_dump", [t.meta])
        let ours = try Read.dump(["--metadata", t.meta])
        #expect(td.ok && ours == td.stdout)
    }

    @Test func wrongMagic() throws {
        let t = try Target()
        try t.surgery.patch(0, reseal: .superblock) { $0.setLE64(0x20, 27_022_011) }
        // thin_dump 0.9.0 checks only the superblock checksum, so it accepts this one.
        expectFailure(t, "block 0: bad superblock magic 27022011 (expected 27022010)", oracleFails: false)
    }

    @Test func truncatedFile() throws {
        let t = try Target()
        // Cut the file just before the leaf: the pointer to it leads beyond the end.
        try t.surgery.truncate(blocks: t.leaf)
        let d = t.dumpError()
        #expect(d.error == "block \(t.leafParent): points to block \(t.leaf), beyond the metadata device (\(t.leaf) blocks)")
        #expect(!d.output.contains("</superblock>"))
        #expect(Read.checkFailure(t.meta) == "block \(t.leaf): beyond the end of the metadata device (\(t.leaf) blocks of 4096 bytes)")
    }

    @Test func emptyAndTinyFiles() throws {
        let t = try Target()
        try t.surgery.truncate(blocks: 0)
        #expect(t.dumpError().error == "block 0: beyond the end of the metadata device (0 blocks of 4096 bytes)")
        let zero = t.dir.sparseFile("zero", size: 1 << 20)
        #expect(Read.dumpFailure(["--metadata", zero]).error == "block 0: the metadata device is not formatted (all zeros)")
        #expect(Read.checkFailure(zero) == "block 0: the metadata device is not formatted (all zeros)")
    }

    /// An error after more than a buffer's worth of XML went out: the output never gets
    /// its closing tag, and the command still fails.
    @Test func errorLateInALargeDump() throws {
        try Tool.requireThinTools()
        let dir = TempDir("corruptbig")
        defer { withExtendedLifetime(dir) {} }
        let meta = try RandomPool.restore(seed: 77, mappings: 120_000, into: dir)
        let view = try MetadataReader(path: meta).live
        let lastDev = try #require(try view.devices().last?.id)
        var lastLeaf: UInt64 = 0
        try view.mappingTree(of: lastDev).forEachLeaf { lastLeaf = $0.location }
        try Surgery(path: meta).patch(lastLeaf, reseal: nil) { $0[4000] ^= 1 }
        let d = Read.dumpFailure(["--metadata", meta])
        #expect(d.error?.hasPrefix("block \(lastLeaf): bad B-tree node checksum") == true)
        #expect(!d.output.contains("</superblock>"))
    }

    /// The real binary: exit status 1 and exactly one line on stderr.
    @Test func binaryExitsOneWithOneLine() throws {
        let t = try Target()
        try t.surgery.patch(t.leaf, reseal: .node) { $0.setLE32(24, 16) }
        let bin = Repo.root + "/.build/debug/thin-backup"
        try #require(FileManager.default.isExecutableFile(atPath: bin), "build first: swift build --build-tests")
        for args in [["dump", "--metadata", t.meta], ["pool", "check", "--metadata", t.meta], ["pool", "ls", "--metadata", t.meta]] {
            let r = try Tool.run(bin, args)
            #expect(r.status == 1, "\(args)")
            #expect(r.stderr.hasPrefix("thin-backup: block \(t.leaf): B-tree value size 16") && r.stderr.filter { $0 == "\n" }.count == 1, "\(r.stderr)")
            #expect(!r.stdout.contains("</superblock>"))
        }
        let m = try Tool.run(bin, ["dump", "--metadata", t.meta, "-m"])
        #expect(m.status == 1 && m.stderr == "thin-backup: no current metadata snapshot\n")
    }
}
