import Delta
import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

@Suite struct SendReceiveTests {
    @Test func fullThenChainOfIncrementalsRoundTrip() throws {
        let src = try SourceChain(seed: 1)
        let out = TempDir("sr-out")
        let dst = try emptyPool(out)
        var base: UInt64?
        var baseDigest: String?
        for (k, snap) in src.snapshots.enumerated() {
            let file = out.file("s\(k).tbs")
            // Alternate: base digest computed by reading the base, or handed over from the previous send.
            let sent = try send(src.path, snap, from: base, to: file, baseDigest: k % 2 == 0 ? nil : baseDigest)
            let got = try receive(dst, file)
            #expect(got.outcome == "received")
            #expect(got.contentDigest == sent.targetDigest)
            #expect(try SourceChain.image(dst, snap) == src.image(snap), "snapshot \(snap)")
            let c = try thinCheck(dst)
            #expect(c.ok, "thin_check after \(snap): \(c.stderr)")
            // The digest the sender printed checks the received device.
            #expect(try verifyDevice(UserspacePool(folder: dst), device: snap, digest: sent.targetDigest!, quiet: true)
                    == sent.targetDigest)
            base = snap
            baseDigest = sent.targetDigest
        }
        // The source pool is as it was: no metadata snapshot left held, thin_check clean.
        #expect(try MetadataReader(path: "\(src.path)/metadata").superblock.heldRoot == 0)
        #expect(try thinCheck(src.path).ok)
        // Some streams carried all-zero runs and discards.
        let last = try send(src.path, src.snapshots[5], from: src.snapshots[0], to: out.file("wide.tbs"))
        #expect(last.zeroBlocks > 0 && last.discardBlocks > 0 && last.dataBlocks > 0)
        // Every received device has its block digest map (README); `pool delete` removes it.
        for snap in src.snapshots { #expect(FileManager.default.fileExists(atPath: "\(dst)/digests/\(snap)"), "map of \(snap)") }
        let gone = src.snapshots.last!
        #expect(try Tool.run(try ThinBackupBinary.required(), ["pool", "delete", "--pool", dst, "--dev", "\(gone)"]).ok)
        #expect(!FileManager.default.fileExists(atPath: "\(dst)/digests/\(gone)"))
        #expect(FileManager.default.fileExists(atPath: "\(dst)/digests/\(src.snapshots[0])"))
    }

    @Test func receivingTwiceChangesNothingAndWrongBasesAreRefused() throws {
        let src = try SourceChain(seed: 2, rounds: 3)
        let out = TempDir("sr-twice")
        let dst = try emptyPool(out)
        let s = src.snapshots
        _ = try send(src.path, s[0], to: out.file("full"))
        _ = try send(src.path, s[1], from: s[0], to: out.file("inc1"))
        _ = try send(src.path, s[2], from: s[1], to: out.file("inc2"))
        // Out of order: inc2 before inc1 names its missing base.
        #expect(throws: (any Error).self) { _ = try receive(dst, out.file("inc2")) }
        _ = try receive(dst, out.file("full"))
        _ = try receive(dst, out.file("inc1"))
        let meta = try fileBytes("\(dst)/metadata")
        #expect(try receive(dst, out.file("inc1")).outcome == "alreadyReceived")
        #expect(try receive(dst, out.file("full")).outcome == "alreadyReceived")
        #expect(try fileBytes("\(dst)/metadata") == meta)
        // A pool of another block size takes the stream (issue #13): the same bytes and digest.
        let other = try emptyPool(out, "dst128", blockSize: 128 * 1024)
        let r = try receive(other, out.file("full"))
        #expect(r.outcome == "received")
        #expect(r.contentDigest == (try receive(dst, out.file("full"))).contentDigest)
        let a = try ThinPool(folder: dst, readOnly: true), b = try ThinPool(folder: other, readOnly: true)
        defer { a.close(); b.close() }
        let size = Int(try a.virtualSize(of: r.device))
        #expect(try b.read(r.device, offset: 0, count: size) == a.read(r.device, offset: 0, count: size))
    }

    @Test func sendThroughTheHeldMetadataSnapshotAndRefuseADeviceInUse() throws {
        let src = try SourceChain(seed: 3, rounds: 2)
        let out = TempDir("sr-held")
        var pool = try ThinPool(folder: src.path)
        try pool.reserveMetadataSnapshot()
        pool.close()
        // Without -m: refused (someone else's snapshot is held).
        #expect(throws: (any Error).self) { _ = try send(src.path, src.snapshots[0], to: out.file("a")) }
        var r = SendRequest(pool: UserspacePool(folder: src.path), target: src.snapshots[0], destination: out.file("a"))
        r.metadataMode = .held(block: nil)
        let sent = try runSend(r)
        #expect(sent.dataBlocks > 0)
        // -m leaves the held snapshot held.
        #expect(try MetadataReader(path: "\(src.path)/metadata").superblock.heldRoot != 0)
        // A snapshot written after the metadata snapshot was taken is in use: refused.
        pool = try ThinPool(folder: src.path)
        try pool.write(src.snapshots[1], offset: 0, [UInt8](repeating: 9, count: 65536))
        try pool.commit()
        pool.close()
        r.target = src.snapshots[1]
        r.destination = out.file("b")
        do {
            _ = try runSend(r)
            Issue.record("sent a device in use")
        } catch {
            #expect("\(error)".contains("in use"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: out.file("b")))
        #expect(!FileManager.default.fileExists(atPath: out.file("b.partial")))
    }

    @Test func mergeAFileOriginWithAChainOfStreams() throws {
        let src = try SourceChain(seed: 4, rounds: 6)
        let out = TempDir("sr-merge")
        let s = src.snapshots
        // The external origin starts as a plain file holding the first snapshot's bytes.
        let origin = out.file("origin.img")
        try Data(try src.image(s[0])).write(to: URL(fileURLWithPath: origin))
        for i in 1..<s.count {
            let f = out.file("m\(i)")
            _ = try send(src.path, s[i], from: s[i - 1], to: f)
            _ = try runMerge(stream: f, into: origin, quiet: true)
        }
        #expect(try fileBytes(origin) == src.image(s.last!))
        // A full stream merged onto an empty file gives the snapshot too.
        let empty = out.file("empty.img")
        _ = FileManager.default.createFile(atPath: empty, contents: nil)
        _ = try send(src.path, s[2], to: out.file("full"))
        _ = try runMerge(stream: out.file("full"), into: empty, quiet: true)
        #expect(try fileBytes(empty) == src.image(s[2]))
        // A damaged stream file is refused before anything is written.
        var bad = try fileBytes(out.file("m3"))
        bad[bad.count / 2] ^= 0x40
        try Data(bad).write(to: URL(fileURLWithPath: out.file("bad")))
        let before = try fileBytes(origin)
        #expect(throws: (any Error).self) { _ = try runMerge(stream: out.file("bad"), into: origin, quiet: true) }
        #expect(try fileBytes(origin) == before)
    }

    @Test func verifyChecksStreamsAndDevices() throws {
        let src = try SourceChain(seed: 5, rounds: 2)
        let out = TempDir("sr-verify")
        let full = try send(src.path, src.snapshots[0], to: out.file("full"))
        _ = try send(src.path, src.snapshots[1], from: src.snapshots[0], to: out.file("inc"))
        let v = try verifyStream(source: try FileSource(path: out.file("full")), quiet: true)
        #expect(v.contentChecked && v.targetDigest == full.targetDigest && !v.incremental)
        let vi = try verifyStream(source: try FileSource(path: out.file("inc")), quiet: true)
        #expect(vi.incremental && !vi.contentChecked && vi.base == src.snapshots[0])
        var bytes = try fileBytes(out.file("full"))
        bytes[100] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: out.file("bad")))
        #expect(throws: StreamError.self) { _ = try verifyStream(source: try FileSource(path: out.file("bad")), quiet: true) }
        // The source device itself matches the digest its send printed; another device does not.
        #expect(try verifyDevice(UserspacePool(folder: src.path), device: src.snapshots[0], digest: full.targetDigest!, quiet: true)
                == full.targetDigest)
        #expect(throws: (any Error).self) {
            _ = try verifyDevice(UserspacePool(folder: src.path), device: src.snapshots[1], digest: full.targetDigest!, quiet: true)
        }
    }
    /// A stream file's rest is handed out mapped (a receive decodes it where it lies): from where the
    /// source stands (a continuing receive opens it at an offset), after which reads find its end;
    /// standard input is never mapped.
    @Test func aFileSourceMapsTheRestOfItsFile() throws {
        let out = TempDir("sr-map")
        let bytes = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 9) }
        try Data(bytes).write(to: URL(fileURLWithPath: out.file("s")))
        let whole = try FileSource(path: out.file("s"))
        let m = try #require(whole.mapRest())
        #expect(Array(m.bytes) == bytes)
        #expect(whole.bytesRead == UInt64(bytes.count))
        var buf = [UInt8](repeating: 0, count: 100)
        #expect(try buf.withUnsafeMutableBytes { try whole.read(into: $0) } == 0, "mapped: at its end")
        #expect(whole.mapRest() == nil, "mapped once")

        let later = try FileSource(path: out.file("s"), startOffset: 123_457)
        #expect(try buf.withUnsafeMutableBytes { try later.read(into: $0) } == 100)
        #expect(buf == Array(bytes[123_457..<123_557]))
        let rest = try #require(later.mapRest())
        #expect(Array(rest.bytes) == Array(bytes[123_557...]), "from where reading stands")
        #expect(later.bytesRead == UInt64(bytes.count - 123_457))
        #expect(try FileSource(path: "-").mapRest() == nil)
    }
}
