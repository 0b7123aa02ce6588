import ArgumentParser
import Delta
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Runs a subcommand in this process, as `thin-backup ARGS` would; returns its error line, if any.
@discardableResult
func cli(_ args: [String]) throws -> String? {
    var command = try RootCommand.parseAsRoot(args)
    do {
        try command.run()
        return nil
    } catch {
        return "\(error)"
    }
}

@Suite("Network end to end: send/receive/merge over serve, nginx and moto", .serialized)
struct NetworkEndToEndTests {
    @Test func replicationToServeIsByteIdentical() throws {
        let src = try SourceChain(seed: 601, rounds: 4, label: "repl-src")
        let out = TempDir("repl-dst")
        let dst = try emptyPool(out)
        let rx = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst)) })
        let to = "tb://127.0.0.1:\(rx.server.port)"
        var base: UInt64?
        for snap in src.snapshots {
            let error = try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--to", to, "--token-file", rx.tokenFile, "-q"]
                                + (base.map { ["--from", "\($0)"] } ?? []))
            #expect(error == nil, "send \(snap): \(error ?? "")")
            #expect(try SourceChain.image(dst, snap) == src.image(snap), "snapshot \(snap)")
            let check = try thinCheck(dst)
            #expect(check.ok, "thin_check after \(snap): \(check.stderr)")
            let (_, status) = try receiverGET(port: rx.server.port, path: "/v1/devices/\(snap)/receive", token: LocalReceiver.token)
            #expect(status["state"] as? String == "complete")
            base = snap
        }
        // A stream for a base this pool never received is refused; the reason reaches the sender.
        let other = try emptyPool(out, "fresh")
        let rx2 = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: other)) })
        let meta = try fileBytes("\(other)/metadata")
        let s = src.snapshots
        let error = try cli(["send", "--pool", src.path, "--from", "\(s[0])", "--snap", "\(s[2])",
                             "--to", "tb://127.0.0.1:\(rx2.server.port)", "--token-file", rx2.tokenFile, "-q"])
        #expect(error?.contains("HTTP 422") == true, "\(error ?? "accepted")")
        #expect(error?.contains("never received") == true, "\(error ?? "accepted")")
        #expect(try fileBytes("\(other)/metadata") == meta)
    }

    @Test func aCutReplicationResumesFromTheReceiversCheckpoint() throws {
        let src = try SourceChain(seed: 604, rounds: 1, label: "cut-src")
        let out = TempDir("cut-dst")
        let dst = try emptyPool(out)
        let rx = try LocalReceiver(receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst), checkpointBytes: 256 << 10) })
        let snap = src.snapshots[0]
        let size = try send(src.path, snap, to: out.file("probe.tbs")).streamBytes
        #expect(size > 256 << 10)
        func status(_ dev: UInt64) throws -> [String: Any] {
            try receiverGET(port: rx.server.port, path: "/v1/devices/\(dev)/receive", token: LocalReceiver.token).1
        }

        // 1. The connection is cut at 3/4 and the sender gives up at once (--retries 1): the
        //    receiver keeps its checkpoint, and the same send run again continues from it.
        let proxy = try CutProxy(upstream: rx.server.port, cutAfter: Int(size * 3 / 4), cuts: 1, direction: "up")
        let args = ["send", "--pool", src.path, "--snap", "\(snap)", "--to", "tb://127.0.0.1:\(proxy.port)",
                    "--token-file", rx.tokenFile, "-q"]
        let first = try cli(args + ["--retries", "1"])
        #expect(first != nil, "the cut send succeeded")
        var after = try status(snap)
        for _ in 0..<300 where after["state"] as? String == "receiving" {  // until the receiver sees the cut
            usleep(10_000)
            after = try status(snap)
        }
        #expect(after["state"] as? String == "interrupted", "\(after)")
        #expect(after["resumeToken"] as? String != nil, "\(after)")
        #expect(try cli(args) == nil)
        #expect(try SourceChain.image(dst, snap) == src.image(snap))
        let done = try status(snap)
        #expect((done["message"] as? String)?.contains("resumed") == true, "\(done)")

        // 2. Cut again (another device), with retries: the sender asks where to continue and resends
        //    from the receiver's checkpoint out of what it kept, in the same run.
        let proxy2 = try CutProxy(upstream: rx.server.port, cutAfter: Int(size * 3 / 4), cuts: 1, direction: "up")
        let second = try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--as", "77", "--to", "tb://127.0.0.1:\(proxy2.port)",
                              "--token-file", rx.tokenFile, "-q"])
        #expect(second == nil, "\(second ?? "")")
        #expect(try SourceChain.image(dst, 77) == src.image(snap))
        let done77 = try status(77)
        #expect((done77["message"] as? String)?.contains("resumed") == true, "\(done77)")
        #expect(try thinCheck(dst).ok)
    }

    @Test func sendAndReceiveThroughNginx() throws {
        let nginx = try NginxServer()
        let src = try SourceChain(seed: 602, rounds: 3, label: "http-src")
        let out = TempDir("http-dst")
        let dst = try emptyPool(out)
        let s = src.snapshots
        let full = "\(nginx.url)/chain/full.tbs", incr = "\(nginx.url)/chain/incr.tbs"
        #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", full, "-q"]) == nil)
        #expect(try cli(["send", "--pool", src.path, "--from", "\(s[0])", "--snap", "\(s[2])", "--to", incr, "-q"]) == nil)
        #expect(try cli(["receive", "--pool", dst, "--from", full, "-q"]) == nil)
        #expect(try cli(["receive", "--pool", dst, "--from", incr, "-q"]) == nil)
        #expect(try SourceChain.image(dst, s[2]) == src.image(s[2]))
        #expect(try thinCheck(dst).ok)
        // merge --stream over HTTP: an origin file equal to s[0], plus the incremental, gives s[2].
        let origin = out.file("origin.img")
        try Data(try src.image(s[0])).write(to: URL(fileURLWithPath: origin))
        #expect(try cli(["merge", "--stream", incr, "--into", origin, "-q"]) == nil)
        #expect(try fileBytes(origin) == src.image(s[2]))
    }

    @Test func sendAndReceiveThroughS3() throws {
        let moto = try MotoServer()
        let src = try SourceChain(seed: 603, rounds: 2, label: "s3-src")
        let out = TempDir("s3-dst")
        let dst = try emptyPool(out)
        let s = src.snapshots
        let ep = ["--endpoint", moto.endpoint]
        try ProcessEnvironment.with(moto.environment()) { () throws -> Void in
            #expect(try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", "s3://\(moto.bucket)/full", "-q"] + ep) == nil)
            #expect(try cli(["send", "--pool", src.path, "--from", "\(s[0])", "--snap", "\(s[1])", "--to", "s3://\(moto.bucket)/incr", "-q"]
                            + ep) == nil)
            #expect(try cli(["receive", "--pool", dst, "--from", "s3://\(moto.bucket)/full", "-q"] + ep) == nil)
            #expect(try cli(["receive", "--pool", dst, "--from", "s3://\(moto.bucket)/incr", "-q"] + ep) == nil)
        }
        #expect(try SourceChain.image(dst, s[1]) == src.image(s[1]))
        #expect(try thinCheck(dst).ok)
        // A wrong secret: one clear line naming the S3 error.
        let error = try ProcessEnvironment.with(moto.environment(secret: "wrong")) {
            try cli(["send", "--pool", src.path, "--snap", "\(s[0])", "--to", "s3://\(moto.bucket)/again", "-q"] + ep)
        }
        #expect(error?.contains("SignatureDoesNotMatch") == true, "\(error ?? "accepted")")
    }
}
