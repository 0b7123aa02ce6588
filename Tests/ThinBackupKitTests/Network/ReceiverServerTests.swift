import Delta
import Foundation
import Testing
import TestSupport
import ReceiverRequest
@testable import ThinBackupKit

/// A `serve` receiver in this process, with a spool directory as its receiver.
final class LocalReceiver {
    let dir = TempDir("tb-serve")
    let spool: String
    let server: ReceiverServer
    let tokenFile: String
    static let token = "s3cret-token-\(UInt64.random(in: 0 ... .max))"

    init(maxStreamBytes: UInt64 = 1 << 40, tls: ReceiverTLS? = nil,
         receiver: ((String) throws -> any StreamReceiving)? = nil) throws {
        spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        tokenFile = dir.file("token")
        try "\(Self.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var config = ReceiverConfiguration(host: "127.0.0.1", port: 0, token: Self.token)
        config.maxStreamBytes = maxStreamBytes
        config.tls = tls
        config.logger.logLevel = .critical
        server = try ReceiverServer.start(config, receiver: try receiver?(spool) ?? SpoolReceiver(directory: spool))
    }

    deinit { server.stop() }

    func options(token: String? = nil) throws -> TransportOptions {
        var o = fastRetry()
        if let token {
            let f = dir.file("other-token")
            try token.write(toFile: f, atomically: true, encoding: .utf8)
            o.tokenFile = f
        } else {
            o.tokenFile = tokenFile
        }
        return o
    }

    var spoolFiles: [String] { (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? [] }
}

/// GET a path on a receiver with a token; returns (status, JSON body).
func receiverGET(port: Int, path: String, token: String) throws -> (Int, [String: Any]) {
    var r = HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)\(path)")
    r.headers.append(("Authorization", "Bearer \(token)"))
    let response = try CurlEasy().perform(r)
    let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
    return (response.status, json)
}

/// A receiver that holds every receive until released (to keep a device busy).
final class GateReceiver: StreamReceiving, @unchecked Sendable {
    let gate = DispatchSemaphore(value: 0)
    let inner: SpoolReceiver
    init(_ inner: SpoolReceiver) { self.inner = inner }
    func pendingReceive(device: UInt64) throws -> PendingReceive? { try inner.pendingReceive(device: device) }
    func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome {
        gate.wait()
        return try inner.receive(device: device, streamID: streamID, offset: offset, from: source)
    }
}

/// Refuses every stream, as a receive refuses one made for another base.
final class RefusingReceiver: StreamReceiving, @unchecked Sendable {
    func pendingReceive(device: UInt64) throws -> PendingReceive? { nil }
    func receive(device: UInt64, streamID: String, offset: UInt64, from source: any ByteSource) throws -> ReceiverOutcome {
        var header = [UInt8](repeating: 0, count: 100)
        _ = try header.withUnsafeMutableBytes { try source.read(into: $0) }
        throw ReceiveRefused("stream for base snapshot 4 but device 4 here is not that snapshot")
    }
}

@Suite("serve: the HTTP receiver", .serialized)
struct ReceiverServerTests {
    @Test func sendToReceiverStoresExactBytes() throws {
        let rx = try LocalReceiver()
        let payload = Net.randomBytes(10 << 20 + 99, seed: 81)
        try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)/7", options: rx.options()))
        #expect(FileManager.default.contents(atPath: rx.spool + "/7.stream").map(Array.init) == payload)
        let (code, status) = try receiverGET(port: rx.server.port, path: "/v1/devices/7/receive", token: LocalReceiver.token)
        #expect(code == 200)
        #expect(status["state"] as? String == "complete")
    }

    @Test func aTinyStreamIsSentAtFinish() throws {
        let rx = try LocalReceiver()
        let payload = Net.randomBytes(1000, seed: 82)
        var o = try rx.options()
        o.targetDevice = 3
        try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)", options: o))
        #expect(FileManager.default.contents(atPath: rx.spool + "/3.stream").map(Array.init) == payload)
    }

    @Test func wrongTokenGets401AndNothingIsWritten() throws {
        let rx = try LocalReceiver()
        let payload = Net.randomBytes(3 << 20, seed: 83)
        let error = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)/7",
                                                       options: rx.options(token: "wrong-token")))
        }
        #expect(error?.description.contains("HTTP 401") == true)
        #expect(error?.description.contains("bearer token") == true)
        // A PUT straight away (no status request first) is refused the same way.
        var put = HTTPRequest(method: "PUT", url: "http://127.0.0.1:\(rx.server.port)/v1/devices/7/receive")
        put.headers = [("Authorization", "Bearer wrong"), ("X-TB-Stream-Id", "00ff-1")]
        put.body = .bytes(Array(payload.prefix(1 << 20)))
        #expect(try CurlEasy().perform(put).status == 401)
        #expect(rx.spoolFiles.isEmpty)
        #expect(try receiverGET(port: rx.server.port, path: "/v1/devices/7/receive", token: "").0 == 401)
    }

    @Test func requestsNeverNameFiles() throws {
        let rx = try LocalReceiver()
        for path in ["/etc/passwd", "/v1/devices/../../etc/receive", "/v1/devices/7%2F..%2Fx/receive", "/v1/devices/-1/receive",
                     "/v1/devices/7/receive/../../x", "/v1/devices/+2/receive", "/v1/devices/0x2/receive"] {
            #expect(try receiverGET(port: rx.server.port, path: path, token: LocalReceiver.token).0 == 404, "\(path)")
        }
    }

    @Test func oversizedHeadersAreRefused() throws {
        let rx = try LocalReceiver()
        var r = HTTPRequest(method: "GET", url: "http://127.0.0.1:\(rx.server.port)/v1/devices/1/receive")
        r.headers = [("Authorization", "Bearer \(LocalReceiver.token)"), ("X-Padding", String(repeating: "a", count: 20_000))]
        let status = try CurlEasy().perform(r).status
        #expect(status == 431)
        #expect(try receiverGET(port: rx.server.port, path: "/v1/devices/1/receive", token: LocalReceiver.token).0 == 200)
    }

    @Test func aSecondReceiveIntoABusyDeviceGets409() throws {
        let rx = try LocalReceiver(receiver: { GateReceiver(try SpoolReceiver(directory: $0)) })
        let gate = (rx.server.registry.receiver as! GateReceiver).gate
        let first = Net.randomBytes(2 << 20, seed: 84)
        let second = Net.randomBytes(2 << 20, seed: 85)
        let url = "tb://127.0.0.1:\(rx.server.port)/5"
        let sink1 = try Transport.sink(for: url, options: rx.options())
        try first.withUnsafeBytes { try sink1.write(UnsafeRawBufferPointer(rebasing: $0.prefix(1 << 20))) }
        // Device 5 is now busy: wait until the server says so.
        for _ in 0..<200 {
            if try receiverGET(port: rx.server.port, path: "/v1/devices/5/receive", token: LocalReceiver.token).1["state"]
                as? String == "receiving" { break }
            usleep(10_000)
        }
        var o = try rx.options()
        o.retry = .none
        let error = #expect(throws: TransportError.self) { try pour(second, into: try Transport.sink(for: url, options: o)) }
        #expect(error?.description.contains("HTTP 409") == true)
        #expect(error?.description.contains("already receiving") == true)
        // Another device is not blocked by it (one gate pass for each receive).
        gate.signal()
        gate.signal()
        try pour(second, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)/6", options: rx.options()))
        try first.withUnsafeBytes { try sink1.write(UnsafeRawBufferPointer(rebasing: $0.dropFirst(1 << 20))) }
        try sink1.finish()
        #expect(FileManager.default.contents(atPath: rx.spool + "/5.stream").map(Array.init) == first)
        #expect(FileManager.default.contents(atPath: rx.spool + "/6.stream").map(Array.init) == second)
    }

    @Test func aRefusedStreamsReasonReachesTheSender() throws {
        let rx = try LocalReceiver(receiver: { _ in RefusingReceiver() })
        let payload = Net.randomBytes(8 << 20, seed: 86)
        let error = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)/4", options: rx.options()))
        }
        #expect(error?.description.contains("HTTP 422") == true)
        #expect(error?.description.contains("not that snapshot") == true)
        let (_, status) = try receiverGET(port: rx.server.port, path: "/v1/devices/4/receive", token: LocalReceiver.token)
        #expect(status["state"] as? String == "refused")
    }

    @Test func aStreamOverTheSizeLimitGets413() throws {
        let rx = try LocalReceiver(maxStreamBytes: 1 << 20)
        let payload = Net.randomBytes(3 << 20, seed: 87)
        let error = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(rx.server.port)/2", options: rx.options()))
        }
        #expect(error?.description.contains("HTTP 413") == true)
        #expect(!rx.spoolFiles.contains("2.stream"))
    }

    @Test func aCutUploadResumesAtTheReceiversResumePoint() throws {
        let rx = try LocalReceiver()
        // The first two connections are cut after 3 MiB of upload each.
        let proxy = try CutProxy(upstream: rx.server.port, cutAfter: 3 << 20, cuts: 2, direction: "up")
        let payload = Net.randomBytes(12 << 20 + 5, seed: 88)
        let sink = try Transport.sink(for: "tb://127.0.0.1:\(proxy.port)/9", options: rx.options())
        try pour(payload, into: sink)
        #expect(FileManager.default.contents(atPath: rx.spool + "/9.stream").map(Array.init) == payload)
        #expect(((sink as? ReceiverSink)?.resumes ?? 0) >= 1)
    }

    @Test func tbsThroughATLSFrontVerifiesTheCertificate() throws {
        let rx = try LocalReceiver()
        let tls = try TLSFrontProxy(upstream: rx.server.port)
        let payload = Net.randomBytes(5 << 20 + 3, seed: 90)
        let url = "tbs://127.0.0.1:\(tls.port)/12"
        // Verification is on by default: a self-signed certificate is refused.
        let error = #expect(throws: TransportError.self) { try pour(payload, into: try Transport.sink(for: url, options: rx.options())) }
        #expect(error?.kind == .tls, "\(String(describing: error))")
        #expect(!rx.spoolFiles.contains("12.stream"))
        // Trusted with --ca-file: the stream arrives exactly.
        var o = try rx.options()
        o.tls.caFile = tls.caFile
        try pour(payload, into: try Transport.sink(for: url, options: o))
        #expect(FileManager.default.contents(atPath: rx.spool + "/12.stream").map(Array.init) == payload)
    }

    @Test func killedServerRestartedThenTheSameSendResumes() throws {
        let tb = try Net.thinBackup()
        let dir = TempDir("tb-serve-kill")
        let spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try LocalReceiver.token.write(toFile: dir.file("token"), atomically: true, encoding: .utf8)
        let port = Net.freePort()
        func startServer() throws -> ServerProcess {
            let p = try ServerProcess("serve", tb, ["serve", "--spool", spool, "--listen", "127.0.0.1:\(port)",
                                                    "--token-file", dir.file("token")], directory: dir)
            #expect(Net.waitForPort(port), "serve did not start: \(p.stderr)")
            return p
        }
        var o = fastRetry(2)
        o.tokenFile = dir.file("token")
        let payload = Net.randomBytes(16 << 20, seed: 89)
        let url = "tb://127.0.0.1:\(port)/11"

        let server = try startServer()
        do {
            let sink = try Transport.sink(for: url, options: o)
            try payload.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0.prefix(9 << 20))) }
            for _ in 0..<500 {
                let s = try receiverGET(port: port, path: "/v1/devices/11/receive", token: LocalReceiver.token).1
                if (s["offset"] as? Int ?? 0) >= 4 << 20 { break }
                usleep(10_000)
            }
            server.kill()  // SIGKILL mid-stream
        }
        let restarted = try startServer()
        let (_, status) = try receiverGET(port: port, path: "/v1/devices/11/receive", token: LocalReceiver.token)
        #expect(status["state"] as? String == "interrupted")
        let resumeAt = status["offset"] as? Int ?? 0
        #expect(resumeAt >= 3 << 20)

        // The same send, run again, continues at the resume point.
        let sink = try Transport.sink(for: url, options: o)
        try pour(payload, into: sink)
        #expect((sink as? ReceiverSink)?.resumes == 1)
        #expect(FileManager.default.contents(atPath: spool + "/11.stream").map(Array.init) == payload)
        #expect(restarted.stderr.contains("from byte \(resumeAt)"))
        restarted.stop()
    }
}

@Suite("Destinations")
struct EndpointTests {
    @Test func parsesEveryKind() throws {
        #expect(try Endpoint(parsing: "-") == .stdio)
        #expect(try Endpoint(parsing: "/tmp/x.tbs") == .file("/tmp/x.tbs"))
        #expect(try Endpoint(parsing: "rel/x") == .file("rel/x"))
        #expect(try Endpoint(parsing: "https://h/a/b") == .http(url: "https://h/a/b"))
        #expect(try Endpoint(parsing: "s3://bkt/a/b.tbs") == .s3(bucket: "bkt", key: "a/b.tbs"))
        #expect(try Endpoint(parsing: "tb://127.0.0.1:8080") == .receiver(host: "127.0.0.1", port: 8080, tls: false, device: nil))
        #expect(try Endpoint(parsing: "tbs://[::1]:9/12") == .receiver(host: "::1", port: 9, tls: true, device: 12))
        for bad in ["s3://bkt", "s3:///k", "tb://host", "tb://h:0", "tb://h:1/x", "ftp://h/x", "http://", ""] {
            #expect(throws: TransportError.self, "\(bad)") { try Endpoint(parsing: bad) }
        }
    }

    /// The receiver takes digits only (`decimalNumber`); Swift's `UInt64("+2")` and `Int("+80")` take a sign.
    @Test func aDeviceOrPortWithASignOrSpaceIsRefusedNamingThePart() throws {
        for (bad, part) in [("tb://h:80/+2", "'+2'"), ("tbs://h:80/-0", "'-0'"), ("tb://h:80/ 2", "' 2'"), ("tb://h:80/2x", "'2x'")] {
            do {
                let e = try Endpoint(parsing: bad)
                Issue.record("\(bad) was taken as \(e)")
            } catch let e as TransportError {
                #expect("\(e)".contains("device part \(part)"), "\(e)")
            }
        }
        #expect(throws: TransportError.self) { try Endpoint(parsing: "tb://h:+80/2") }
        #expect(try Endpoint(parsing: "tb://h:80/0002") == .receiver(host: "h", port: 80, tls: false, device: 2))
    }

    @Test func tokensCompareInConstantTimeButCorrectly() {
        #expect(constantTimeEqual("abc", "abc"))
        #expect(!constantTimeEqual("abc", "abd"))
        #expect(!constantTimeEqual("abc", "abcd"))
        #expect(!constantTimeEqual("", "a"))
    }
}
