import Delta
import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// `serve --pool` (net's PoolStreamReceiver over this helper's Replayer): a broken receive
/// continues at the checkpoint's byte offset, byte-identical.
@Suite struct PoolReceiverTests {
    /// A source over bytes from `start`, that throws (a broken connection) after `cut` bytes.
    final class CutSource: ByteSource {
        let bytes: [UInt8]
        var at: Int
        let cut: Int?
        struct Broken: Error {}
        init(_ bytes: [UInt8], from start: Int = 0, cut: Int? = nil) { self.bytes = bytes; at = start; self.cut = cut }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            if let c = cut, at >= c { throw Broken() }
            let n = min(buffer.count, 64 << 10, bytes.count - at, (cut ?? Int.max) - at)
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[at..<at + n])) }
            at += n
            return n
        }
    }

    @Test func brokenReceiveContinuesAtTheCheckpointOffset() throws {
        let src = try SourceChain(seed: 17, rounds: 2)
        let out = TempDir("poolrecv")
        let s = src.snapshots
        _ = try send(src.path, s[0], to: out.file("full"))
        _ = try send(src.path, s[1], from: s[0], to: out.file("inc"))
        let dst = try emptyPool(out)
        let receiver = try PoolStreamReceiver(pool: UserspacePool(folder: dst), checkpointBytes: 64 << 10)
        for (file, dev) in [(out.file("full"), s[0]), (out.file("inc"), s[1])] {
            let bytes = try fileBytes(file)
            #expect(throws: CutSource.Broken.self) {
                _ = try receiver.receive(device: dev, streamID: "abc-\(dev)", offset: 0, from: CutSource(bytes, cut: bytes.count * 3 / 4))
            }
            let pending = try #require(try receiver.pendingReceive(device: dev))
            #expect(pending.streamID == "abc-\(dev)" && pending.resumeOffset > 0 && pending.resumeOffset < UInt64(bytes.count))
            // Another stream id or offset is refused.
            #expect(throws: ReceiveRefused.self) {
                _ = try receiver.receive(device: dev, streamID: "other", offset: pending.resumeOffset, from: CutSource(bytes))
            }
            let done = try receiver.receive(device: dev, streamID: "abc-\(dev)", offset: pending.resumeOffset,
                                            from: CutSource(bytes, from: Int(pending.resumeOffset)))
            #expect(done.message.contains("resumed"), "\(done.message)")
            #expect(try receiver.pendingReceive(device: dev) == nil)
            #expect(try SourceChain.image(dst, dev) == src.image(dev))
            #expect(try thinCheck(dst).ok)
        }
        // A corrupt stream is refused as such.
        var bad = try fileBytes(out.file("full"))
        bad[200] ^= 1
        let other = try emptyPool(out, "other")
        #expect(throws: ReceiveRefused.self) {
            _ = try PoolStreamReceiver(pool: UserspacePool(folder: other)).receive(device: 5, streamID: "x", offset: 0, from: CutSource(bad))
        }
    }
}
