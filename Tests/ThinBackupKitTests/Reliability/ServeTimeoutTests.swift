import Delta
import Foundation
import NIOCore
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// A sender that sends 1 MiB and then goes silent with its connection open: the receiver's idle
/// timeout ends that receive as interrupted (resumable), another device's receive goes through,
/// and the same send run again finishes the stalled device.
@Suite(.serialized) struct ServeTimeoutTests {
    /// A raw TCP connection (no HTTP library: it must be able to stall mid-body).
    final class RawConnection {
        let fd: Int32
        init?(port: Int) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok != 0 { close(fd); return nil }
        }
        func send(_ bytes: [UInt8]) {
            var done = 0
            while done < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
                if n <= 0 { return }
                done += n
            }
        }
        deinit { close(fd) }
    }

    @Test func stalledSenderTimesOutAndStaysResumable() throws {
        let src = try SourceChain(seed: 811, rounds: 2, label: "stall-src")
        let out = TempDir("stall")
        let dst = try emptyPool(out)
        let snap = src.snapshots[0], other = src.snapshots[1]
        let streamFile = out.file("full.tbs")
        _ = try send(src.path, snap, to: streamFile)
        let stream = try fileBytes(streamFile)
        try #require(stream.count > 1 << 20)

        var config = ReceiverConfiguration(host: "127.0.0.1", port: 0, token: LocalReceiver.token)
        config.logger.logLevel = .critical
        config.idleTimeout = .seconds(2)
        let server = try ReceiverServer.start(config, receiver: try PoolStreamReceiver(pool: UserspacePool(folder: dst), checkpointBytes: 256 << 10))
        defer { server.stop() }
        let tokenFile = out.file("token")
        try "\(LocalReceiver.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        func state(_ dev: UInt64) throws -> [String: Any] {
            try receiverGET(port: server.port, path: "/v1/devices/\(dev)/receive", token: LocalReceiver.token).1
        }

        // 1 MiB of the stream, then silence (the connection stays open until the end of the test).
        let conn = try #require(RawConnection(port: server.port))
        let head = "PUT /v1/devices/\(snap)/receive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(LocalReceiver.token)\r\n"
            + "X-TB-Stream-Id: 0123abcd\r\nX-TB-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
        conn.send(Array(head.utf8))
        conn.send(Array(String(1 << 20, radix: 16).utf8) + [13, 10] + Array(stream[0..<(1 << 20)]) + [13, 10])
        var seen = try state(snap)
        for _ in 0..<200 where seen["state"] as? String != "receiving" {
            usleep(20_000)
            seen = try state(snap)
        }
        #expect(seen["state"] as? String == "receiving", "\(seen)")

        // Another device's receive goes through (it never waits for the stalled one).
        let otherError = try cli(["send", "--pool", src.path, "--snap", "\(other)", "--to", "tb://127.0.0.1:\(server.port)",
                                  "--token-file", tokenFile, "-q"])
        #expect(otherError == nil, "\(otherError ?? "")")

        // The stalled receive ended interrupted, with a resume point; it no longer blocks its device.
        for _ in 0..<1500 where seen["state"] as? String == "receiving" {
            usleep(20_000)
            seen = try state(snap)
        }
        #expect(seen["state"] as? String == "interrupted", "\(seen)")
        #expect(seen["resumeToken"] as? String != nil, "no checkpoint before the stall: \(seen)")
        let again = try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--to", "tb://127.0.0.1:\(server.port)",
                             "--token-file", tokenFile, "-q"])
        #expect(again == nil, "\(again ?? "")")
        #expect(try SourceChain.image(dst, snap) == src.image(snap))
        #expect(try SourceChain.image(dst, other) == src.image(other))
        #expect(try thinCheck(dst).ok)
        _ = conn
    }

    @Test func serveRefusesBadTimeouts() throws {
        #expect(throws: (any Error).self) { try ServeCommand.parse(["--pool", "/x", "--listen", ":0", "--token-file", "/t", "--idle-timeout", "0"]) }
        #expect(throws: (any Error).self) { try NetworkOptions.parse(["--stall-timeout", "0"]).transportOptions() }
        let o = try NetworkOptions.parse(["--connect-timeout", "7", "--stall-timeout", "9"]).transportOptions()
        #expect(o.timeouts == NetworkTimeouts(connect: 7, stall: 9))
    }
}
