import Delta
import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// Composing a chain's records (prune's consolidation) gives streams that restore byte-equal to
/// replaying the chain, full or as an increment of a kept ancestor.
@Suite struct ComposeTests {
    func compose(_ files: [String], to out: String) throws -> (SendSummary, StreamComposer) {
        let c = try StreamComposer(inputs: try files.map { try Transport.source(for: $0) },
                                   sink: try Transport.sink(for: out), level: 3, streamID: randomDigest())
        return (try c.compose(), c)
    }

    @Test(arguments: [31, 32, 33] as [UInt64]) func composedStreamsRestoreLikeTheChain(seed: UInt64) throws {
        let src = try SourceChain(seed: seed, rounds: 7)
        let out = TempDir("compose")
        let s = src.snapshots
        var files: [String] = []
        var digests: [String] = []
        for (i, snap) in s.enumerated() {
            let f = out.file("s\(i).tbs")
            digests.append(try send(src.path, snap, from: i == 0 ? nil : s[i - 1], to: f).targetDigest!)
            files.append(f)
        }
        // The whole chain as one full stream: receive it and merge it; both equal the last snapshot.
        let (full, fc) = try compose(files, to: out.file("full.tbs"))
        #expect(!full.header.isIncremental && full.targetDigest?.description == digests.last)
        #expect(fc.copiedBlocks > 0 && fc.recompressedBlocks > 0, "copied \(fc.copiedBlocks), recompressed \(fc.recompressedBlocks)")
        let v = try verifyStream(source: try Transport.source(for: out.file("full.tbs")), quiet: true)
        #expect(v.contentChecked && v.discardBlocks == 0)
        let dst = try emptyPool(out)
        #expect(try receive(dst, out.file("full.tbs")).contentDigest == digests.last)
        #expect(try SourceChain.image(dst, s.last!) == src.image(s.last!))
        let merged = out.file("merged")
        #expect(FileManager.default.createFile(atPath: merged, contents: nil))
        _ = try runMerge(stream: out.file("full.tbs"), into: merged, quiet: true)
        #expect(try fileBytes(merged) == src.image(s.last!))

        // Streams 3…6 as one increment of snapshot 2 (its kept ancestor): applies where the chain's
        // snapshot 2 was received, and gives what replaying 3…6 gives.
        let (inc, _) = try compose(Array(files[3...]), to: out.file("inc.tbs"))
        #expect(inc.header.isIncremental && inc.header.base?.device == s[2] && inc.header.baseFingerprint.description == digests[2])
        let a = try emptyPool(out, "a"), b = try emptyPool(out, "b")
        for f in files[0...2] { _ = try receive(a, f); _ = try receive(b, f) }
        #expect(try receive(a, out.file("inc.tbs")).contentDigest == digests.last)
        for f in files[3...] { _ = try receive(b, f) }
        #expect(try SourceChain.image(a, s.last!) == SourceChain.image(b, s.last!))
        #expect(try SourceChain.image(a, s.last!) == src.image(s.last!))
        #expect(try thinCheck(a).ok)
        // Merged onto the file of snapshot 2: the same bytes.
        let m2 = out.file("m2")
        #expect(FileManager.default.createFile(atPath: m2, contents: nil))
        for f in files[0...2] { _ = try runMerge(stream: f, into: m2, quiet: true) }
        _ = try runMerge(stream: out.file("inc.tbs"), into: m2, quiet: true)
        #expect(try fileBytes(m2) == src.image(s.last!))
    }

    @Test func aBrokenChainIsRefused() throws {
        let src = try SourceChain(seed: 34, rounds: 3)
        let out = TempDir("compose-bad")
        let s = src.snapshots
        _ = try send(src.path, s[0], to: out.file("f"))
        _ = try send(src.path, s[2], from: s[1], to: out.file("i2"))
        #expect(throws: StreamError.self) { _ = try compose([out.file("f"), out.file("i2")], to: out.file("x")) }
    }
}
