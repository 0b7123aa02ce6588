import Foundation
import PoolCore
import Testing
import TestSupport
@testable import Delta

/// A stored receipt read through `JSONValue` is what JSONDecoder reads; one with a checkpoint
/// (`partial`) goes to JSONDecoder and reads the same.
@Suite struct ReceiptJSONTests {
    @Test func storedReceiptsReadAsJSONDecoderReadsThem() throws {
        var rng = SeededRNG(seed: 99)
        func d() -> Digest128 { Digest128(high: UInt64.random(in: 0...UInt64.max, using: &rng), low: UInt64.random(in: 0...UInt64.max, using: &rng)) }
        func id() -> SnapshotIdentity {
            SnapshotIdentity(device: UInt64.random(in: 0...UInt64.max, using: &rng), creationTime: UInt32.random(in: 0...UInt32.max, using: &rng),
                             snapshottedTime: UInt32.random(in: 0...UInt32.max, using: &rng), transactionID: UInt64.random(in: 0...UInt64.max, using: &rng))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        // A field added to these must be added to `StoredReceipt.json` too: these counts fail first.
        #expect(Mirror(reflecting: ThinPool.StoredReceipt(transaction: 0, receipt: Receipt(sourcePool: .zero, source: id(), streamID: .zero,
                                                                                           contentDigest: .zero, mappingDigest: .zero), local: nil)).children.count == 3)
        #expect(Mirror(reflecting: Receipt(sourcePool: .zero, source: id(), streamID: .zero, contentDigest: .zero, mappingDigest: .zero)).children.count == 6)
        #expect(Mirror(reflecting: Digest128.zero).children.count == 2)
        #expect(Mirror(reflecting: id()).children.count == 4)
        for i in 0..<300 {
            var r = Receipt(sourcePool: d(), source: id(), streamID: d(), contentDigest: d(), mappingDigest: d())
            if i % 10 == 0 {
                let h = StreamHeader(blockSize: 65536, virtualSize: 1 << 30, streamID: d(), sourcePool: d(), target: id(), base: nil, baseFingerprint: .zero)
                r.partial = PartialReceive(header: h, progress: StreamProgress(streamID: d()), digest: d(), streamOffset: 77, label: "l\"/é")
            }
            let s = ThinPool.StoredReceipt(transaction: UInt64.random(in: 0...UInt64.max, using: &rng), receipt: r, local: i % 3 == 0 ? nil : id())
            let text = String(decoding: try enc.encode(s), as: UTF8.self)
            // Written as JSONEncoder writes it (by the writer without a checkpoint, by JSONEncoder with one).
            #expect(try s.encoded() == text, "case \(i)")
            #expect((s.json?.encoded(pretty: false)).map { String(decoding: $0, as: UTF8.self) } == (i % 10 == 0 ? nil : text), "case \(i)")
            let got = ThinPool.StoredReceipt.decode(text)
            #expect(got == s, "case \(i)")
            #expect(got == (try JSONDecoder().decode(ThinPool.StoredReceipt.self, from: Data(text.utf8))), "case \(i)")
        }
        // Out of range for a UInt32 field, or not a receipt: nil, as JSONDecoder's try? gave.
        #expect(ThinPool.StoredReceipt.decode(#"{"transaction":1,"receipt":{"sourcePool":{"high":1,"low":2},"source":{"device":1,"creationTime":4294967296,"snapshottedTime":0,"transactionID":0},"streamID":{"high":1,"low":2},"contentDigest":{"high":1,"low":2},"mappingDigest":{"high":1,"low":2}}}"#) == nil)
        #expect(ThinPool.StoredReceipt.decode("{}") == nil)
    }
}
