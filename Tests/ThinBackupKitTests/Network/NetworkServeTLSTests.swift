import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// `serve --tls-cert/--tls-key`: the receiver terminates TLS itself and senders use tbs://.
@Suite("serve with built-in TLS", .serialized)
struct NetworkServeTLSTests {
    @Test func fullAndIncrementalOverTbsAreByteIdentical() throws {
        let certs = TempDir("tls-certs")
        let pem = try Net.selfSignedCertificate(in: certs)
        let src = try SourceChain(seed: 611, rounds: 2, label: "tls-src")
        let out = TempDir("tls-dst")
        let dst = try emptyPool(out)
        let tls = try ReceiverTLS(certificateFile: pem.cert, keyFile: pem.key)
        let rx = try LocalReceiver(tls: tls, receiver: { _ in try PoolStreamReceiver(pool: UserspacePool(folder: dst)) })
        let to = "tbs://127.0.0.1:\(rx.server.port)"
        let (full, incremental) = (src.snapshots[0], src.snapshots[1])
        let metaBefore = try fileBytes("\(dst)/metadata")

        // Default verification: the self-signed certificate is refused, nothing reaches the pool.
        let untrusted = try cli(["send", "--pool", src.path, "--snap", "\(full)", "--to", to, "--token-file", rx.tokenFile, "-q"])
        #expect(untrusted?.lowercased().contains("certificate") == true, "\(untrusted ?? "accepted")")
        // A plain tb:// client on the TLS port fails (no HTTP answer), also without touching the pool.
        let plain = try cli(["send", "--pool", src.path, "--snap", "\(full)", "--to", "tb://127.0.0.1:\(rx.server.port)",
                             "--token-file", rx.tokenFile, "-q", "--retries", "1"])
        #expect(plain != nil, "a plain HTTP send to the TLS port was accepted")
        #expect(try fileBytes("\(dst)/metadata") == metaBefore)

        // Trusted with --ca-file: a full then an incremental stream replicate exactly.
        for (snap, base) in [(full, nil), (incremental, full)] as [(UInt64, UInt64?)] {
            let error = try cli(["send", "--pool", src.path, "--snap", "\(snap)", "--to", to, "--ca-file", pem.cert,
                                 "--token-file", rx.tokenFile, "-q"] + (base.map { ["--from", "\($0)"] } ?? []))
            #expect(error == nil, "send \(snap): \(error ?? "")")
            #expect(try SourceChain.image(dst, snap) == src.image(snap), "snapshot \(snap)")
            let check = try thinCheck(dst)
            #expect(check.ok, "thin_check after \(snap): \(check.stderr)")
        }
    }

    @Test func theServeCommandSpeaksOnlyTLS() throws {
        let tb = try Net.thinBackup()
        let dir = TempDir("tb-serve-tls")
        let pem = try Net.selfSignedCertificate(in: dir)
        let spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try LocalReceiver.token.write(toFile: dir.file("token"), atomically: true, encoding: .utf8)
        let port = Net.freePort()
        let server = try ServerProcess("serve-tls", tb, ["serve", "--spool", spool, "--listen", "127.0.0.1:\(port)",
                                                         "--token-file", dir.file("token"),
                                                         "--tls-cert", pem.cert, "--tls-key", pem.key], directory: dir)
        #expect(Net.waitForPort(port), "serve did not start: \(server.stderr)")
        var o = fastRetry(1)
        o.tokenFile = dir.file("token")
        let payload = Net.randomBytes(3 << 20 + 5, seed: 612)
        let spooled = { (d: Int) in FileManager.default.contents(atPath: spool + "/\(d).stream").map(Array.init) }

        // Without the CA: a certificate error, never retried, nothing spooled.
        let refused = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: "tbs://127.0.0.1:\(port)/21", options: o))
        }
        #expect(refused?.kind == .tls, "\(String(describing: refused))")
        #expect(refused?.message.lowercased().contains("certificate") == true, "\(String(describing: refused))")
        #expect(spooled(21) == nil)

        // Plain HTTP to the TLS port: a clean transport error, nothing spooled, the server lives on.
        let plain = #expect(throws: TransportError.self) {
            try pour(payload, into: try Transport.sink(for: "tb://127.0.0.1:\(port)/22", options: o))
        }
        #expect(plain?.kind != .usage, "\(String(describing: plain))")
        #expect(spooled(22) == nil)
        #expect(server.process.isRunning, "serve died: \(server.stderr)")
        #expect(server.stderr.contains("TLS handshake failed: a plain HTTP request on the TLS port"), "\(server.stderr)")

        // With --ca-file the stream arrives exactly.
        o.tls.caFile = pem.cert
        try pour(payload, into: try Transport.sink(for: "tbs://127.0.0.1:\(port)/23", options: o))
        #expect(spooled(23) == payload)
        server.stop()
    }

    @Test func badTLSFilesAreOneLineErrors() throws {
        let dir = TempDir("tb-tls-bad")
        let pem = try Net.selfSignedCertificate(in: dir), other = try Net.selfSignedCertificate(in: dir, name: "other")
        let spool = dir.file("spool")
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try LocalReceiver.token.write(toFile: dir.file("token"), atomically: true, encoding: .utf8)
        try "not a certificate\n".write(toFile: dir.file("junk.pem"), atomically: true, encoding: .utf8)
        let base = ["serve", "--spool", spool, "--listen", "127.0.0.1:0", "--token-file", dir.file("token")]

        // Only one of the two: a usage error before anything starts.
        #expect(throws: (any Error).self) { try RootCommand.parseAsRoot(base + ["--tls-cert", pem.cert]) }
        #expect(throws: (any Error).self) { try RootCommand.parseAsRoot(base + ["--tls-key", pem.key]) }
        for (cert, key, expected) in [
            (dir.file("missing.pem"), pem.key, "--tls-cert \(dir.file("missing.pem")): no such file"),
            (pem.cert, dir.file("missing-key.pem"), "--tls-key \(dir.file("missing-key.pem")): no such file"),
            (dir.file("junk.pem"), pem.key, "--tls-cert \(dir.file("junk.pem")):"),
            (pem.cert, dir.file("junk.pem"), "--tls-key \(dir.file("junk.pem")):"),
            (pem.cert, other.key, "does not fit the certificate"),
        ] {
            let error = try cli(base + ["--tls-cert", cert, "--tls-key", key])
            #expect(error?.contains(expected) == true, "\(cert) \(key): \(error ?? "accepted")")
            #expect(error?.contains("\n") == false, "\(error ?? "")")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
    }
}
