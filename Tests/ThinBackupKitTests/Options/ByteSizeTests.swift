import ArgumentParser
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Every size and offset option takes the same spellings, refuses what is not a size (and any
/// value beyond 2^64-1) as a usage error, and `send --size` takes whole sectors only.
@Suite struct ByteSizeTests {
    /// Each option, parsed by the command line as users give it, with every spelling of 1 GiB.
    @Test func everySizeOptionTakesTheSameSpellings() throws {
        let spellings = ["1073741824", "1048576k", "1048576K", "1024M", "1024m", "1G", "1g", "1GiB", "1gib", "1GB", "1024MiB"]
        // (arguments before the value, option, how the parsed command shows the value)
        let cases: [([String], String, (any ParsableCommand) -> UInt64?)] = [
            (["send", "--pool", "p", "--snap", "1", "--to", "x"], "--size", { ($0 as? SendCommand)?.size?.bytes }),
            (["send", "--pool", "p", "--snap", "1", "--to", "x"], "--part-size", { ($0 as? SendCommand)?.network.partSize.bytes }),
            (["pool", "create", "--pool", "p", "--data-size", "1G"], "--metadata-size", { ($0 as? PoolCommand.Create)?.metadataSize?.bytes }),
            (["pool", "create", "--pool", "p"], "--data-size", { ($0 as? PoolCommand.Create)?.dataSize.bytes }),
            (["pool", "create", "--pool", "p", "--data-size", "1G"], "--block-size", { ($0 as? PoolCommand.Create)?.blockSize.bytes }),
            (["pool", "create-thin", "--pool", "p", "--dev", "1"], "--size", { ($0 as? PoolCommand.CreateThin)?.size.bytes }),
            (["pool", "write", "--pool", "p", "--dev", "1", "--from", "f"], "--offset", { ($0 as? PoolCommand.Write)?.offset.bytes }),
            (["pool", "write", "--pool", "p", "--dev", "1", "--from", "f"], "--commit-every", { ($0 as? PoolCommand.Write)?.commitEvery.bytes }),
            (["pool", "discard", "--pool", "p", "--dev", "1", "--length", "0"], "--offset", { ($0 as? PoolCommand.Discard)?.offset.bytes }),
            (["pool", "discard", "--pool", "p", "--dev", "1", "--offset", "0"], "--length", { ($0 as? PoolCommand.Discard)?.length.bytes }),
            (["pool", "resize", "--pool", "p"], "--data-size", { ($0 as? PoolCommand.Resize)?.dataSize?.bytes }),
            (["receive", "--pool", "p"], "--checkpoint", { ($0 as? ReceiveCommand)?.checkpoint?.bytes }),
            (["serve", "--pool", "p", "--listen", ":0", "--token-file", "t"], "--checkpoint", { ($0 as? ServeCommand)?.checkpoint.bytes }),
            (["serve", "--pool", "p", "--listen", ":0", "--token-file", "t"], "--max-stream-size", { ($0 as? ServeCommand)?.maxStreamSize.bytes }),
            (["migrate", "--pool", "p", "--dev", "1", "--to", "tb://h:1"], "--until-delta", { ($0 as? MigrateCommand)?.untilDelta.bytes }),
        ]
        for (args, option, value) in cases {
            for s in spellings {
                let c = try RootCommand.parseAsRoot(args + [option, s])
                #expect(value(c) == 1 << 30, "\(args) \(option) \(s)")
            }
            for bad in ["", "1x", "G", "1.5G", "-1", "1iB", "1 G", "16777216T", "18446744073709551616"] {
                #expect(throws: (any Error).self, "\(args) \(option) \(bad)") { try RootCommand.parseAsRoot(args + [option, bad]) }
            }
        }
        #expect(ByteSize(argument: "16777215T")?.bytes == 16_777_215 << 40, "the largest whole-T size")
        #expect(ByteSize(argument: "18446744073709551615")?.bytes == .max)
    }

    /// Through the binary: a size beyond 2^64 is a usage error (64), never a trap; `send --size`
    /// off a sector boundary is refused with one line; README's `pool discard … --length 1G` works.
    @Test func sizesThroughTheBinary() throws {
        let exe = try ThinBackupBinary.required()
        let tmp = TempDir("bytesize")
        let pool = tmp.file("p")
        func tb(_ args: String...) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb("pool", "create", "--pool", pool, "--data-size", "4MiB").ok)
        #expect(try tb("pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "1G").ok)
        let src = tmp.file("in")
        try Data(repeating: 7, count: 3 << 20).write(to: URL(fileURLWithPath: src))
        #expect(try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--offset", "64k", "--commit-every", "1M").ok)
        #expect(try tb("pool", "snapshot", "--pool", pool, "--origin", "1", "--dev", "2").ok)
        let huge = try tb("pool", "write", "--pool", pool, "--dev", "1", "--from", src, "--offset", "16777216T")
        #expect(huge.status == 64 && huge.stderr.contains("16777216T"), "\(huge.stderr)")
        let odd = try tb("send", "--pool", pool, "--snap", "2", "--to", tmp.file("s"), "--size", "1000")
        #expect(odd.status == 64 && odd.stderr.contains("512"), "\(odd.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("s")))
        let sent = try tb("send", "--pool", pool, "--snap", "2", "--to", tmp.file("s"), "--size", "1GiB", "--quiet")
        #expect(sent.ok, "\(sent.stderr)")
        #expect(try tb("pool", "discard", "--pool", pool, "--dev", "1", "--offset", "0", "--length", "1G").ok)
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        #expect(try p.details(of: 1).mappedBlocks == 0, "the whole device discarded")
        #expect(try p.details(of: 2).mappedBlocks == 48, "the snapshot keeps its 3 MiB")
    }
}
