import Foundation
import Testing
@testable import ThinBackupKit
import TestSupport

/// The commands as users run them: exit codes, one-line errors, JSON summaries, pipes.
@Suite struct StreamCommandLineTests {
    @Test func pipeSendToReceiveAndOneLineErrors() throws {
        let exe = try ThinBackupBinary.required()
        let src = try SourceChain(seed: 13, rounds: 2)
        let out = TempDir("cli")
        let dst = try emptyPool(out)
        let s = src.snapshots
        // send | receive through a shell pipe.
        let pipe = try Tool.run("bash", ["-c", "\(exe) send --pool \(src.path) --snap \(s[0]) --to - --quiet | "
            + "\(exe) receive --pool \(dst) --json"])
        #expect(pipe.ok, "\(pipe.stderr)")
        #expect(pipe.stdout.contains("\"outcome\":\"received\""))
        #expect(try SourceChain.image(dst, s[0]) == src.image(s[0]))
        // An incremental whose base is missing: exit 1, one line naming both snapshots.
        let inc = out.file("inc")
        #expect(try Tool.run(exe, ["send", "--pool", src.path, "--from", "\(s[0])", "--snap", "\(s[1])", "--to", inc, "--quiet"]).ok)
        let other = try emptyPool(out, "other")
        let r = try Tool.run(exe, ["receive", "--pool", other, "--from", inc])
        #expect(r.status == 1)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].hasPrefix("thin-backup: "), "\(r.stderr)")
        #expect(r.stderr.contains("stream for device \(s[1])") && r.stderr.contains("base device \(s[0])"), "\(r.stderr)")
        // A corrupted stream: exit 1, one line, pool untouched.
        var bytes = try fileBytes(inc)
        bytes[bytes.count / 3] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: out.file("bad")))
        let meta = try fileBytes("\(dst)/metadata")
        let bad = try Tool.run(exe, ["receive", "--pool", dst, "--from", out.file("bad")])
        #expect(bad.status == 1 && bad.stderr.hasPrefix("thin-backup: stream corrupted"), "\(bad.stderr)")
        #expect(bad.stderr.split(separator: "\n").count == 1)
        #expect(try fileBytes("\(dst)/metadata") == meta)
        // Usage errors exit 64.
        #expect(try Tool.run(exe, ["send", "--pool", src.path, "--snap", "1"]).status == 64)
        #expect(try Tool.run(exe, ["verify", "--pool", dst, "--dev", "1"]).status == 64)
    }
}
