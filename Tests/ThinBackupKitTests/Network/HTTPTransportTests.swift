import Delta
import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// Writes `bytes` to a sink in uneven pieces (as an encoder would) and finishes it.
func pour(_ bytes: [UInt8], into sink: any ByteSink, seed: UInt64 = 1) throws {
    var rng = SeededRNG(seed: seed)
    var at = 0
    try bytes.withUnsafeBytes { all in
        while at < all.count {
            let n = min(all.count - at, Int(rng.next() % 300_000) + 1)
            try sink.write(UnsafeRawBufferPointer(rebasing: all[at..<at + n]))
            at += n
        }
    }
    try sink.finish()
}

/// Reads a source to its end in uneven pieces.
func drain(_ source: any ByteSource, seed: UInt64 = 2) throws -> [UInt8] {
    var rng = SeededRNG(seed: seed)
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let want = Int(rng.next() % UInt64(buffer.count)) + 1
        let n = try buffer.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0.prefix(want))) }
        if n == 0 { return out }
        out.append(contentsOf: buffer.prefix(n))
    }
}

func fastRetry(_ attempts: Int = 6) -> TransportOptions {
    var o = TransportOptions()
    o.retry = RetryPolicy(attempts: attempts, baseDelay: 0.05, maxDelay: 0.5)
    return o
}

@Suite("HTTP transport against nginx (WebDAV PUT)", .serialized)
struct HTTPTransportTests {
    @Test func streamingPutAndGetRoundTrip() throws {
        let nginx = try NginxServer()
        let payload = Net.randomBytes(12 << 20 + 12345, seed: 61)
        let url = "\(nginx.url)/backups/full.tbs"
        try pour(payload, into: try Transport.sink(for: url, options: fastRetry()))
        // The server's own copy of the file is the oracle, then our GET.
        let onDisk = FileManager.default.contents(atPath: nginx.root + "/backups/full.tbs")
        #expect(onDisk.map { Array($0) == payload } == true)
        let got = try drain(try Transport.source(for: url, options: fastRetry()))
        #expect(got.count == payload.count)
        #expect(got == payload)
    }

    @Test func downloadStartingAtAnOffset() throws {
        let nginx = try NginxServer()
        let payload = Net.randomBytes(3 << 20, seed: 62)
        try Data(payload).write(to: URL(fileURLWithPath: nginx.root + "/s.tbs"))
        let got = try drain(try Transport.source(for: "\(nginx.url)/s.tbs", options: fastRetry(), startOffset: 1_000_003))
        #expect(got == Array(payload[1_000_003...]))
    }

    @Test func cutDownloadsResumeWithRangeAndGiveExactBytes() throws {
        let nginx = try NginxServer()
        let payload = Net.randomBytes(9 << 20, seed: 63)
        try Data(payload).write(to: URL(fileURLWithPath: nginx.root + "/cut.tbs"))
        // The first three connections are cut after 2 MiB (+ headers) each.
        let proxy = try CutProxy(upstream: nginx.port, cutAfter: 2 << 20, cuts: 3, direction: "down")
        let source = try Transport.source(for: "http://127.0.0.1:\(proxy.port)/cut.tbs", options: fastRetry())
        let got = try drain(source)
        #expect(got.count == payload.count)
        #expect(got == payload)
        #expect((source as? HTTPGetSource)?.resumes == 3)
    }

    @Test func anAbandonedUploadLeavesNoObject() throws {
        let nginx = try NginxServer()
        let payload = Net.randomBytes(6 << 20, seed: 64)
        do {
            let sink = try Transport.sink(for: "\(nginx.url)/half.tbs", options: fastRetry())
            try payload.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0.prefix(5 << 20))) }
            // The producer fails here: the sink is released without finish().
        }
        usleep(300_000)
        #expect(!FileManager.default.fileExists(atPath: nginx.root + "/half.tbs"))
    }

    @Test func httpErrorsNameStatusAndURL() throws {
        let nginx = try NginxServer()
        let error = #expect(throws: TransportError.self) {
            _ = try drain(try Transport.source(for: "\(nginx.url)/missing.tbs", options: fastRetry()))
        }
        #expect(error?.description.contains("HTTP 404") == true)
        #expect(error?.description.contains("/missing.tbs") == true)
    }

    @Test func connectionRefusedIsRetriedThenReported() throws {
        let port = Net.freePort()
        let error = #expect(throws: TransportError.self) {
            _ = try drain(try Transport.source(for: "http://127.0.0.1:\(port)/x", options: fastRetry(3)))
        }
        #expect(error?.kind == .connection)
        #expect(error?.description.contains("127.0.0.1:\(port)") == true)
    }
}
