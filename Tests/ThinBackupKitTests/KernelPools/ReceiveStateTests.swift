import Delta
import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// The state a receive into a kernel pool keeps on the host (receipts by thin id, the chain
/// `--keep` walks, devices in progress), without a kernel.
@Suite("Kernel receive state: receipts, chains, in-progress devices")
struct ReceiveStateTests {
    static func receipt(_ n: UInt64) -> Receipt {
        Receipt(sourcePool: Digest128(high: 1, low: 2), source: SnapshotIdentity(device: n, creationTime: UInt32(n), snapshottedTime: 0, transactionID: 0),
                streamID: Digest128(high: n, low: n), contentDigest: Digest128(high: 9, low: n), mappingDigest: Digest128(high: 8, low: n))
    }

    /// Chain 10 ← 11 ← 12 ← 13 (each received onto the one before), and 20 on its own.
    static func chain() -> ReceiveState {
        var s = ReceiveState()
        s.receipts["10"] = .init(receipt: receipt(10), creationTime: 1, base: nil)
        s.receipts["11"] = .init(receipt: receipt(11), creationTime: 2, base: 10)
        s.receipts["12"] = .init(receipt: receipt(12), creationTime: 3, base: 11)
        s.receipts["13"] = .init(receipt: receipt(13), creationTime: 4, base: 12)
        s.receipts["20"] = .init(receipt: receipt(20), creationTime: 5, base: nil)
        return s
    }

    @Test("a receipt counts only for the device it was recorded for (same id, same creation time)")
    func validByCreationTime() {
        let s = Self.chain()
        let v = s.valid([10: 1, 11: 2, 12: 99, 20: 5])
        #expect(Set(v.keys) == [10, 11, 20], "12 was re-created (another creation time), 13 is gone")
        #expect(v[11] == Self.receipt(11))
    }

    @Test("--keep N deletes the older versions of the newest's chain only")
    func keepWalksTheChain() {
        let s = Self.chain()
        #expect(s.pruned(newest: 13, keep: 2) == [11, 10])
        #expect(s.pruned(newest: 13, keep: 1) == [12, 11, 10])
        #expect(s.pruned(newest: 13, keep: 4).isEmpty)
        #expect(s.pruned(newest: 12, keep: 1) == [11, 10], "a newer version (13) is never pruned from below")
        #expect(s.pruned(newest: 20, keep: 1).isEmpty, "another chain is untouched")
        #expect(s.pruned(newest: 13, keep: 0) == [12, 11, 10], "the version just received always stays")
        var loop = s
        loop.receipts["10"]!.base = 13
        #expect(loop.pruned(newest: 13, keep: 1) == [12, 11, 10], "a cycle in a damaged file ends the walk")
    }

    @Test("stored atomically and read back; a damaged file is one clear error")
    func roundTrip() throws {
        let dir = TempDir("receive-state")
        let path = dir.file("receipts.json")
        #expect(try ReceiveState.load(path) == ReceiveState(), "no file: empty state")
        var s = Self.chain()
        s.inProgress = [14]
        try s.store(path)
        #expect(try ReceiveState.load(path) == s)
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
        try Data("{\"receipts\": 3".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ReceiveState.load(path)
            Issue.record("a damaged state file was read")
        } catch {
            #expect("\(error)".contains("receipts.json: unreadable receive state"), "\(error)")
        }
    }

    @Test("the activation name stays within device-mapper's 127 characters for long pool names")
    func activationName() {
        #expect(KernelReceivingPool.activationName("pool2", 7) == "tbr-7-pool2")
        let long = KernelReceivingPool.activationName(String(repeating: "p", count: 127), 16_777_215)
        #expect(long.count == 127 && long.hasPrefix("tbr-16777215-ppp"))
    }
}
