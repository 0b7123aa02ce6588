import Delta
import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// A receive killed with SIGKILL mid-stream, then resumed, gives a byte-identical device.
@Suite struct KillResumeTests {
    /// Starts `receive --checkpoint 1M` on a pipe, feeds it `fraction` of the stream, waits for a
    /// checkpoint to be committed, then kills it with SIGKILL.
    func killMidStream(pool: String, stream: [UInt8], fraction: Double) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try ThinBackupBinary.required())
        p.arguments = ["receive", "--pool", pool, "--checkpoint", "1M", "--quiet"]
        let pipe = Pipe()
        p.standardInput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let cut = Int(Double(stream.count) * fraction)
        try pipe.fileHandleForWriting.write(contentsOf: Data(stream[0..<cut]))
        // Wait (up to 60 s) until the sidecar shows a committed checkpoint.
        var seen = false
        for _ in 0..<600 {
            if let s = try? String(contentsOfFile: "\(pool)/pool.json", encoding: .utf8), s.contains("partial") {
                seen = true
                break
            }
            usleep(100_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        try? pipe.fileHandleForWriting.close()
        #expect(seen, "no checkpoint was committed before the kill")
        #expect(p.terminationReason == .uncaughtSignal)
    }

    @Test func killedReceiveResumesFromTheWholeStreamAndFromAToken() throws {
        let exe = try ThinBackupBinary.required()
        let src = try SourceChain(seed: 9, rounds: 1)
        let out = TempDir("kill")
        let snap = src.snapshots[0]
        let streamFile = out.file("full.tbs")
        _ = try send(src.path, snap, to: streamFile)
        let stream = try fileBytes(streamFile)
        let want = try src.image(snap)

        // 1. Resume by receiving the whole stream again.
        let a = try emptyPool(out, "a")
        try killMidStream(pool: a, stream: stream, fraction: 0.7)
        #expect(try thinCheck(a).ok)
        let r1 = try receive(a, streamFile, resume: true)
        #expect(r1.outcome == "resumed")
        #expect(try SourceChain.image(a, snap) == want)
        #expect(try thinCheck(a).ok)

        // 2. Resume from the token the receiver reports, with a stream of only the rest.
        let b = try emptyPool(out, "b")
        try killMidStream(pool: b, stream: stream, fraction: 0.7)
        let tok = try Tool.run(exe, ["receive", "--pool", b, "--resume-token"])
        #expect(tok.ok, "\(tok.stderr)")
        let token = tok.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let restFile = out.file("rest.tbs")
        let sent = try Tool.run(exe, ["send", "--pool", src.path, "--snap", "\(snap)", "--to", restFile, "--resume-from", token, "--quiet"])
        #expect(sent.ok, "\(sent.stderr)")
        #expect(try fileBytes(restFile).count < stream.count)
        let recv = try Tool.run(exe, ["receive", "--pool", b, "--from", restFile, "--resume", "--json"])
        #expect(recv.ok, "\(recv.stderr)")
        #expect(recv.stdout.contains("\"outcome\":\"resumed\""))
        #expect(try SourceChain.image(b, snap) == want)
        #expect(try thinCheck(b).ok)
    }
}
