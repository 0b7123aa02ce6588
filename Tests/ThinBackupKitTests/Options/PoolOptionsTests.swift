import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// One way to name a pool: `--pool DIR` and `--metadata F --data F` reach the same pool in every
/// command, `-m` means the same everywhere, and one send reads the metadata through one handle.
@Suite struct PoolOptionsTests {
    @Test func folderAndPathsNameTheSamePool() throws {
        let exe = try ThinBackupBinary.required()
        let src = try SourceChain(seed: 21, rounds: 2)
        let out = TempDir("pooloptions")
        let s = src.snapshots
        func tb(_ args: [String]) throws -> Tool.Result { try Tool.run(exe, args) }
        let byFolder = ["--pool", src.path]
        let byPaths = ["--metadata", "\(src.path)/metadata", "--data", "\(src.path)/data"]
        for (cmd, extra) in [(["dump"], [String]()), (["pool", "ls"], []), (["pool", "check"], []),
                             (["delta"], ["--thin1", "\(s[0])", "--thin2", "\(s[1])"])] {
            let a = try tb(cmd + byFolder + extra), b = try tb(cmd + byPaths + extra)
            #expect(a.ok && b.ok, "\(cmd): \(a.stderr) \(b.stderr)")
            #expect(!a.stdout.isEmpty && a.stdout == b.stdout, "\(cmd)")
        }
        // A send by paths, given the size the folder's pool.json records, is the same stream content.
        let size = try ThinPool(folder: src.path, readOnly: true).virtualSize(of: s[0])
        let a = try tb(["send"] + byFolder + ["--snap", "\(s[0])", "--to", out.file("a"), "--json"])
        let b = try tb(["send"] + byPaths + ["--snap", "\(s[0])", "--to", out.file("b"), "--json", "--size", "\(size)"])
        #expect(a.ok && b.ok, "\(a.stderr) \(b.stderr)")
        func digest(_ r: Tool.Result) -> String? { r.stdout.firstMatch(of: /"targetDigest":"([0-9a-f]{32})"/).map { String($0.1) } }
        #expect(digest(a) != nil && digest(a) == digest(b))
        let dst = try emptyPool(out)
        let v = try tb(["verify"] + byPaths + ["--dev", "\(s[0])", "--digest", digest(a) ?? ""])
        #expect(v.ok, "\(v.stderr)")
        #expect(try tb(["receive", "--pool", dst, "--from", out.file("b")]).ok)
        // Both spellings together, or --data alone: usage (64). Receipts need pool.json: a
        // receive into bare paths is refused as usage, the pool untouched.
        #expect(try tb(["dump", "--pool", src.path, "--metadata", "\(src.path)/metadata"]).status == 64)
        #expect(try tb(["dump", "--data", "\(src.path)/data"]).status == 64)
        let meta = try fileBytes("\(dst)/metadata")
        let r = try tb(["receive", "--metadata", "\(dst)/metadata", "--data", "\(dst)/data", "--from", out.file("a")])
        #expect(r.status == 64 && r.stderr.contains("pool.json"), "\(r.stderr)")
        #expect(try fileBytes("\(dst)/metadata") == meta)
        // verify by metadata alone needs the data device: usage, naming --data.
        let nodata = try tb(["verify", "--metadata", "\(src.path)/metadata", "--dev", "\(s[0])", "--digest", digest(a) ?? ""])
        #expect(nodata.status == 64 && nodata.stderr.contains("--data"), "\(nodata.stderr)")
        // backup keeps its lock and catalog in a pool folder: by paths it is usage.
        let bk = try tb(["backup"] + byPaths + ["--dev", "1", "--repo", out.file("repo")])
        #expect(bk.status == 64, "\(bk.stderr)")
    }

    /// Bare `--metadata/--data` record no device sizes (issue #12: a 128 MiB volume was sent with
    /// the 512 MiB data device's size and restored as 512 MiB). Without `--size` the send is
    /// refused as usage with one line asking for it, no stream written; with it, the stream's
    /// device has that size.
    @Test func sendByPathsNeedsTheDeviceSize() throws {
        let exe = try ThinBackupBinary.required()
        let src = try SourceChain(seed: 24, rounds: 1)
        let out = TempDir("pooloptions-size")
        let snap = src.snapshots[0]
        let device = try ThinPool(folder: src.path, readOnly: true).virtualSize(of: snap)
        let dataFile = try FileManager.default.attributesOfItem(atPath: "\(src.path)/data")[.size] as! UInt64
        #expect(device != dataFile, "the fixture must tell the device's size from the data device's")
        let byPaths = ["--metadata", "\(src.path)/metadata", "--data", "\(src.path)/data"]
        let r = try Tool.run(exe, ["send"] + byPaths + ["--snap", "\(snap)", "--to", out.file("s.tbs")])
        #expect(r.status == 64, "\(r.status) \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1 && r.stderr.contains("give thin device \(snap)'s size with --size"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.file("s.tbs")) && !FileManager.default.fileExists(atPath: out.file("s.tbs.partial")))
        // Given --size, the stream's device is that large: merged into a new file, the file has that size.
        let sized = try Tool.run(exe, ["send"] + byPaths + ["--snap", "\(snap)", "--to", out.file("s.tbs"), "--size", "\(device)", "--quiet"])
        #expect(sized.ok, "\(sized.stderr)")
        let merged = try Tool.run(exe, ["merge", "--stream", out.file("s.tbs"), "--into", out.file("s.img")])
        #expect(merged.ok, "\(merged.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: out.file("s.img"))[.size] as? UInt64 == device)
    }

    /// A pool folder without `pool.json` (e.g. made by `thin_restore`) opens, and its devices are
    /// as large as the data device (README, "The userspace pool"): `pool info` and a send say so;
    /// `send --size` records the device's real size instead.
    @Test func poolFolderWithoutPoolJSONTakesTheDataDeviceSize() throws {
        let exe = try ThinBackupBinary.required()
        let out = TempDir("pooloptions-nojson")
        let pool = out.file("p")
        func tb(_ args: [String]) throws -> Tool.Result { try Tool.run(exe, args) }
        #expect(try tb(["pool", "create", "--pool", pool, "--data-size", "8M"]).ok)
        #expect(try tb(["pool", "create-thin", "--pool", pool, "--dev", "1", "--size", "1M"]).ok)
        try FileManager.default.removeItem(atPath: "\(pool)/pool.json")
        let info = try tb(["pool", "info", "--pool", pool])
        #expect(info.ok && info.stdout.contains("device 1: size \(8 << 20) bytes"), "\(info.stdout) \(info.stderr)")
        for (extra, size) in [([String](), UInt64(8 << 20)), (["--size", "1M"], UInt64(1 << 20))] {
            let stream = out.file("s\(size).tbs")
            let sent = try tb(["send", "--pool", pool, "--snap", "1", "--to", stream, "--live-metadata", "--quiet"] + extra)
            #expect(sent.ok, "\(extra): \(sent.stderr)")
            let img = out.file("s\(size).img")
            let merged = try tb(["merge", "--stream", stream, "--into", img, "--quiet"])
            #expect(merged.ok, "\(merged.stderr)")
            #expect(try FileManager.default.attributesOfItem(atPath: img)[.size] as? UInt64 == size, "\(extra)")
        }
    }

    /// `-m BLOCK` is one option: send checks the block as dump does, and refuses -m with --live-metadata.
    @Test func metadataSnapMeansTheSameEverywhere() throws {
        let src = try SourceChain(seed: 22, rounds: 1)
        let out = TempDir("pooloptions-m")
        let p = try ThinPool(folder: src.path)
        try p.reserveMetadataSnapshot()
        let held = p.heldMetadataSnapshot!
        p.close()
        let send = try SendCommand.parse(["--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", out.file("x"), "-m", "\(held + 1)"])
        #expect(send.snap.mode() == .held(block: held + 1))
        #expect(throws: MetadataError.metadataSnapshotMismatch(asked: held + 1, held: held)) { try send.run() }
        let dump = try Dump.parse(["--pool", src.path, "-m", "\(held + 1)"])
        #expect(throws: MetadataError.metadataSnapshotMismatch(asked: held + 1, held: held)) { try dump.run(to: .memory()) }
        #expect(throws: (any Error).self) {
            try SendCommand.parse(["--pool", src.path, "--snap", "1", "--to", "x", "-m", "--live-metadata"])
        }
        let ok = try SendCommand.parse(["--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", out.file("y"), "-m", "\(held)", "--quiet"])
        try ok.run()
        #expect(FileManager.default.fileExists(atPath: out.file("y")))
    }

    /// A send opens the metadata once: after the first read the file can move away and the
    /// send (through a live view, which needs no pool change) still reads every block it needs.
    @Test func oneSendOpensTheMetadataOnce() throws {
        let src = try SourceChain(seed: 23, rounds: 1)
        let out = TempDir("pooloptions-once")
        let access = UserspacePool(folder: src.path)
        defer { access.close() }
        _ = try access.readMetadata()
        try FileManager.default.moveItem(atPath: "\(src.path)/metadata", toPath: out.file("moved"))
        var r = SendRequest(pool: access, target: src.snapshots[0], destination: out.file("s"))
        r.metadataMode = .live
        let sent = try runSend(r)
        #expect(sent.dataBlocks > 0)
        try FileManager.default.moveItem(atPath: out.file("moved"), toPath: "\(src.path)/metadata")
        #expect(try verifyDevice(UserspacePool(folder: src.path), device: src.snapshots[0], digest: sent.targetDigest!, quiet: true)
                == sent.targetDigest!)
    }
}
