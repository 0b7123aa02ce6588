import ArgumentParser
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// The exit codes users and scripts rely on: 0 ok, 1 failure, 64 usage, 75 busy — chosen in
/// one place (`ExitStatus`), each with one `thin-backup: …` line on stderr.
@Suite struct ExitStatusTests {
    @Test func errorsMapToTheirCodes() {
        #expect(ExitStatus.of(JobError("x")).code == 1)
        #expect(ExitStatus.of(JobError(.usage, "x")).code == 64)
        let busy = ExitStatus.of(JobError(.busy, "x"))
        #expect(busy.code == 75 && busy.message == "thin-backup: x")
        #expect(ExitStatus.of(MetadataError.noMetadataSnapshot).code == 1)
        #expect(ExitStatus.of(TransportError(.usage, "bad url")).code == 64)
        #expect(ExitStatus.of(TransportError(.connection, "reset")).code == 1)
        #expect(ExitStatus.of(ValidationError("v")).code == 64)
        #expect(ExitStatus.of(CocoaError(.fileNoSuchFile)).code == 1, "an error of no known kind is a failure, never a success")
    }

    @Test func exitCodesThroughTheBinary() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("exitcodes")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        func oneLine(_ r: Tool.Result) -> Bool { r.stderr.hasPrefix("thin-backup: ") && r.stderr.split(separator: "\n").count == 1 }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "4M").status == 0)
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "1M").status == 0)
        // Failure: 1.
        let missing = try tb("pool", "info", "--pool", tmp.file("nope"))
        #expect(missing.status == 1 && oneLine(missing), "\(missing.stderr)")
        let noDev = try tb("send", "--pool", pool, "--snap", "9", "--to", tmp.file("s"))
        #expect(noDev.status == 1 && oneLine(noDev), "\(noDev.stderr)")
        // Usage: 64, from the parser and from the job layer alike.
        #expect(try tb("send", "--pool", pool, "--snap", "1").status == 64)
        // --help and `help SUB` print the subcommand's help on stdout and exit 0.
        for help in [try tb("pool", "read", "--help"), try tb("help", "pool", "read")] {
            #expect(help.status == 0 && help.stdout.contains("OVERVIEW: Read a whole thin device") && help.stdout.contains("--dev"), "\(help.stdout)\(help.stderr)")
        }
        #expect(try tb("restore", "--repo", tmp.file("r"), "--dev", "1", "--to", tmp.file("o"), "--at", "yesterday").status == 64)
        let noData = try tb("verify", "--metadata", "\(pool)/metadata", "--dev", "1", "--digest", String(repeating: "0", count: 32))
        #expect(noData.status == 64 && oneLine(noData), "\(noData.stderr)")
        // Busy: 75 while another run holds the pool lock.
        let lock = try PoolLock(pool: pool, command: "test holder")
        let busy = try tb("backup", "--pool", pool, "--dev", "1", "--repo", tmp.file("repo"))
        lock.release()
        #expect(busy.status == 75 && oneLine(busy) && busy.stderr.contains("test holder"), "\(busy.stderr)")
        #expect(try tb("backup", "--pool", pool, "--dev", "1", "--repo", tmp.file("repo"), "--quiet").status == 0)
    }
}
