import Foundation
import Testing
@testable import ThinBackupKit
import TestSupport

/// `serve --pool`: receives into different devices of one pool run at once — a stalled sender
/// holds nothing another device's receive needs — and interleaved receives (their data
/// writes and checkpoint commits alternating) both land byte-identical with thin_check clean.
@Suite(.serialized) struct ConcurrentReceiveTests {
    typealias RawConnection = ServeTimeoutTests.RawConnection

    /// Opens `PUT /v1/devices/DEV/receive` with a chunked body.
    static func openPut(_ port: Int, dev: UInt64, stream: String) throws -> RawConnection {
        let conn = try #require(RawConnection(port: port))
        let head = "PUT /v1/devices/\(dev)/receive HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(LocalReceiver.token)\r\n"
            + "X-TB-Stream-Id: \(stream)\r\nX-TB-Offset: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
        conn.send(Array(head.utf8))
        return conn
    }

    static func chunk(_ conn: RawConnection, _ bytes: ArraySlice<UInt8>) {
        if bytes.isEmpty { return }
        conn.send(Array(String(bytes.count, radix: 16).utf8) + [13, 10] + Array(bytes) + [13, 10])
    }

    static func end(_ conn: RawConnection) { conn.send(Array("0\r\n\r\n".utf8)) }

    /// The answer's head (status line and headers), read from the connection.
    static func responseHead(_ conn: RawConnection) -> String {
        var got: [UInt8] = []
        var byte: UInt8 = 0
        while !got.suffix(4).elementsEqual([13, 10, 13, 10]), read(conn.fd, &byte, 1) == 1 { got.append(byte) }
        return String(decoding: got, as: UTF8.self)
    }

    static func state(_ port: Int, _ dev: UInt64) throws -> [String: Any] {
        try receiverGET(port: port, path: "/v1/devices/\(dev)/receive", token: LocalReceiver.token).1
    }

    /// Polls until `dev` leaves `receiving` (the end of a body is answered after the commit).
    static func waitEnded(_ port: Int, _ dev: UInt64) throws -> [String: Any] {
        var seen = try state(port, dev)
        for _ in 0..<3000 where seen["state"] as? String == "receiving" || seen["state"] as? String == "idle" {
            usleep(20_000)
            seen = try state(port, dev)
        }
        return seen
    }

    @Test func aStalledSenderDoesNotDelayAnotherDevice() throws {
        try Tool.requireThinTools()
        let src = try SourceChain(seed: 821, rounds: 2, label: "conc-src")
        let out = TempDir("conc")
        let dst = try emptyPool(out)
        let stalled = src.snapshots[0], other = src.snapshots[1]
        _ = try send(src.path, stalled, to: out.file("a.tbs"))
        let a = try fileBytes(out.file("a.tbs"))
        try #require(a.count > 1 << 20)

        var config = ReceiverConfiguration(host: "127.0.0.1", port: 0, token: LocalReceiver.token)
        config.logger.logLevel = .critical
        config.idleTimeout = .seconds(3600)  // the stall is never ended by the server during this test
        let server = try ReceiverServer.start(config, receiver: try PoolStreamReceiver(pool: UserspacePool(folder: dst), checkpointBytes: 256 << 10))
        defer { server.stop() }
        let tokenFile = out.file("token")
        try "\(LocalReceiver.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)

        // A: 1 MiB (past a checkpoint), then silence with the connection open.
        var conn: RawConnection? = try Self.openPut(server.port, dev: stalled, stream: "0123abcd")
        Self.chunk(conn!, a[0..<(1 << 20)])
        var seen = try Self.state(server.port, stalled)
        for _ in 0..<500 where seen["state"] as? String != "receiving" || (seen["offset"] as? Int ?? 0) < 1 << 20 {
            usleep(20_000)
            seen = try Self.state(server.port, stalled)
        }
        #expect(seen["state"] as? String == "receiving" && seen["offset"] as? Int == 1 << 20, "\(seen)")

        // B: a whole receive into another device, while A stays open and stalled.
        let otherError = try cli(["send", "--pool", src.path, "--snap", "\(other)", "--to", "tb://127.0.0.1:\(server.port)",
                                  "--token-file", tokenFile, "-q"])
        #expect(otherError == nil, "\(otherError ?? "")")
        // (The pool stays open, and locked to other processes, while A runs: its bytes are compared below.)
        #expect(try Self.state(server.port, other)["state"] as? String == "complete")
        // A did not time out or end: B never waited for it.
        #expect(try Self.state(server.port, stalled)["state"] as? String == "receiving")

        // A second receive into the stalled device is still refused while A holds it.
        let second = try Self.openPut(server.port, dev: stalled, stream: "0123abcd")
        Self.chunk(second, a[0..<4096])
        let answer = Self.responseHead(second)
        #expect(answer.hasPrefix("HTTP/1.1 409"), "\(answer)")

        // A's sender goes away: interrupted at its checkpoint, and the same send finishes it.
        conn = nil
        seen = try Self.waitEnded(server.port, stalled)
        #expect(seen["state"] as? String == "interrupted", "\(seen)")
        let again = try cli(["send", "--pool", src.path, "--snap", "\(stalled)", "--to", "tb://127.0.0.1:\(server.port)",
                             "--token-file", tokenFile, "-q"])
        #expect(again == nil, "\(again ?? "")")
        #expect(try SourceChain.image(dst, stalled) == src.image(stalled))
        #expect(try SourceChain.image(dst, other) == src.image(other))
        #expect(try thinCheck(dst).ok)
    }

    /// A full and an incremental receive, their bodies sent in alternating slices, so their data
    /// writes and their checkpoint commits interleave in the pool.
    @Test func interleavedReceivesBothLand() throws {
        try Tool.requireThinTools()
        let src = try SourceChain(seed: 822, rounds: 3, label: "inter-src")
        let out = TempDir("inter")
        let dst = try emptyPool(out)
        let s0 = src.snapshots[0], s1 = src.snapshots[1], s2 = src.snapshots[2]
        _ = try send(src.path, s0, to: out.file("s0.tbs"))
        _ = try send(src.path, s1, from: s0, to: out.file("s1.tbs"))
        _ = try send(src.path, s2, to: out.file("s2.tbs"))
        let incr = try fileBytes(out.file("s1.tbs")), full = try fileBytes(out.file("s2.tbs"))

        var config = ReceiverConfiguration(host: "127.0.0.1", port: 0, token: LocalReceiver.token)
        config.logger.logLevel = .critical
        let server = try ReceiverServer.start(config, receiver: try PoolStreamReceiver(pool: UserspacePool(folder: dst), checkpointBytes: 128 << 10))
        defer { server.stop() }
        let tokenFile = out.file("token")
        try "\(LocalReceiver.token)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        // The incremental's base first.
        let base = try cli(["send", "--pool", src.path, "--snap", "\(s0)", "--to", "tb://127.0.0.1:\(server.port)", "--token-file", tokenFile, "-q"])
        #expect(base == nil, "\(base ?? "")")

        let ci = try Self.openPut(server.port, dev: s1, stream: "1111aaaa")
        let cf = try Self.openPut(server.port, dev: s2, stream: "2222bbbb")
        let slice = 192 << 10
        var i = 0, f = 0
        var bothReceiving = false
        while i < incr.count || f < full.count {
            let ni = min(incr.count, i + slice), nf = min(full.count, f + slice)
            Self.chunk(ci, incr[i..<ni])
            Self.chunk(cf, full[f..<nf])
            i = ni
            f = nf
            if i < incr.count && f < full.count {
                let a = try Self.state(server.port, s1)["state"] as? String, b = try Self.state(server.port, s2)["state"] as? String
                if a == "receiving" && b == "receiving" { bothReceiving = true }
            }
        }
        #expect(bothReceiving, "the two receives never ran at the same time")
        Self.end(ci)
        Self.end(cf)
        let ri = try Self.waitEnded(server.port, s1), rf = try Self.waitEnded(server.port, s2)
        #expect(ri["state"] as? String == "complete", "\(ri)")
        #expect(rf["state"] as? String == "complete", "\(rf)")
        #expect(try SourceChain.image(dst, s1) == src.image(s1))
        #expect(try SourceChain.image(dst, s2) == src.image(s2))
        #expect(try SourceChain.image(dst, s0) == src.image(s0), "the incremental's base changed")
        #expect(try thinCheck(dst).ok)
        _ = (ci, cf)
    }
}
