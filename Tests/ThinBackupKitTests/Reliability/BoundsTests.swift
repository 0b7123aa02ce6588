import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport
import ReceiverRequest
import Delta

/// Numbers from the command line near 2^64, pipe input, overwrite refusals, busy exit code:
/// each case once trapped (SIGILL), wrote nothing, or overwrote silently.
@Suite struct BoundsTests {
    static var binary: String { CrashPoints.binary }
    static let max = "18446744073709551615"

    func pool(_ dir: TempDir) throws -> String {
        let p = dir.file("pool")
        let pool = try ThinPool.create(folder: p, dataSize: 8 << 20, blockSize: 65536, metadataSize: 2 << 20)
        try pool.createThin(1, virtualSize: 1 << 20)
        try pool.write(1, offset: 0, [UInt8](repeating: 7, count: 65536))
        try pool.commit()
        pool.close()
        return p
    }

    func run(_ args: [String], stdin: Data? = nil) throws -> Tool.Result { try Tool.run(Self.binary, args, stdin: stdin) }

    func image(_ p: String) throws -> [UInt8] { try SourceChain.image(p, 1) }

    @Test func hugeNumbersAreErrorsNotTraps() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("bounds")
        let p = try pool(dir)
        let before = try image(p)
        let input = dir.file("in")
        FileManager.default.createFile(atPath: input, contents: Data([1, 2, 3]))
        let cases: [([String], String)] = [
            (["pool", "write", "--pool", p, "--dev", "1", "--offset", Self.max, "--from", input], "beyond its end"),
            (["pool", "discard", "--pool", p, "--dev", "1", "--offset", Self.max, "--length", "1"], "beyond its end"),
            (["pool", "discard", "--pool", p, "--dev", "1", "--offset", "65536", "--length", Self.max], "beyond its end"),
            (["pool", "discard", "--pool", p, "--dev", "1", "--offset", "18446744073709486080", "--length", "65536"], "beyond its end"),
            (["pool", "create-thin", "--pool", p, "--dev", "2", "--size", "16E"], ""),
            (["pool", "create-thin", "--pool", p, "--dev", "2", "--size", "9223372036854775808000"], ""),
        ]
        for (args, message) in cases {
            let r = try run(args)
            #expect(r.status == 1 || r.status == 64, "\(args): status \(r.status) \(r.stderr)")
            #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("overflow"), "\(args): \(r.stderr)")
            // A failure is one line; a value the parser refuses (exit 64) gets ArgumentParser's usage text.
            if r.status == 1 { #expect(r.stderr.split(separator: "\n").count == 1, "\(args): one clear line wanted: \(r.stderr)") }
            if !message.isEmpty { #expect(r.stderr.contains(message), "\(args): \(r.stderr)") }
        }
        // The size the issue used: refused (beyond 8 EiB), and nothing was created.
        let huge = try run(["pool", "create-thin", "--pool", p, "--dev", "2", "--size", Self.max])
        #expect(huge.status == 1 || huge.status == 64, "\(huge.stderr)")
        #expect(huge.stderr.contains("beyond") || huge.stderr.contains("size"), "\(huge.stderr)")
        let open = try ThinPool(folder: p, readOnly: true)
        #expect(try open.devices() == [1])
        open.close()
        #expect(try image(p) == before)
        #expect(try thinCheck(p).ok)
    }

    @Test func poolWriteFromAPipeReadsToTheEnd() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("pipe")
        let p = try pool(dir)
        var bytes = [UInt8](repeating: 0, count: 200_000)
        var rng = SeededRNG(seed: 5)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
        // stdin
        let r = try run(["pool", "write", "--pool", p, "--dev", "1", "--offset", "4096", "--from", "-"], stdin: Data(bytes))
        #expect(r.ok, "\(r.stderr)")
        #expect(Array(try image(p)[4096..<4096 + bytes.count]) == bytes)
        // A FIFO fed by another process.
        let fifo = dir.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        let rev = Array(bytes.reversed())
        let feeder = Thread {
            let fd = open(fifo, O_WRONLY)
            rev.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        feeder.start()
        let f = try run(["pool", "write", "--pool", p, "--dev", "1", "--offset", "65536", "--from", fifo])
        #expect(f.ok, "\(f.stderr)")
        #expect(Array(try image(p)[65536..<65536 + rev.count]) == rev)
        // Input longer than the device from the offset: refused with a clear line, not truncated silently.
        // (fewer bytes than a pipe holds: the command stops reading at the device's end)
        let long = try run(["pool", "write", "--pool", p, "--dev", "1", "--offset", "\((1 << 20) - 1000)", "--from", "-"],
                           stdin: Data(bytes[0..<4000]))
        #expect(long.status == 1)
        #expect(long.stderr.contains("past the end"), "\(long.stderr)")
        // A character device at its end at once: nothing written, no error.
        let before = try image(p)
        let null = try run(["pool", "write", "--pool", p, "--dev", "1", "--from", "/dev/null"])
        #expect(null.ok, "\(null.stderr)")
        #expect(try image(p) == before)
        #expect(try thinCheck(p).ok)
    }

    @Test func existingOutputsAreNotOverwrittenWithoutForce() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("force")
        let p = try pool(dir)
        let out = dir.file("out")
        FileManager.default.createFile(atPath: out, contents: Data("keep me".utf8))
        let read = try run(["pool", "read", "--pool", p, "--dev", "1", "--to", out])
        #expect(read.status == 1 && read.stderr.contains("--force"), "\(read.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data("keep me".utf8))
        let send = try run(["send", "--pool", p, "--snap", "1", "--to", out, "--live-metadata", "--quiet"])
        #expect(send.status == 1 && send.stderr.contains("--force"), "\(send.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data("keep me".utf8))
        let forced = try run(["pool", "read", "--pool", p, "--dev", "1", "--to", out, "--force"])
        #expect(forced.ok, "\(forced.stderr)")
        #expect(FileManager.default.contents(atPath: out).map([UInt8].init) == (try image(p)))

        // pool create over an existing file: one line, not NSCocoaErrorDomain.
        let create = try run(["pool", "create", "--pool", out, "--data-size", "8M"])
        #expect(create.status == 1)
        #expect(create.stderr.contains("not a folder") && !create.stderr.contains("NSCocoaErrorDomain"), "\(create.stderr)")
    }

    @Test func receiveIntoABusyPoolExits75() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("busy")
        let p = try pool(dir)
        let stream = dir.file("s")
        let sent = try run(["send", "--pool", p, "--snap", "1", "--to", stream, "--live-metadata", "--quiet"])
        #expect(sent.ok, "\(sent.stderr)")
        let dst = try emptyPool(dir, "dst")
        let holder = try ThinPool(folder: dst)
        let r = try run(["receive", "--pool", dst, "--from", stream, "--quiet"])
        holder.close()
        #expect(r.status == 75, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("in use"), "\(r.stderr)")
    }

    @Test func abortPunchesUncommittedBlocksBackOut() throws {
        let dir = TempDir("punch")
        let path = dir.file("pool")
        let pool = try ThinPool.create(folder: path, dataSize: 16 << 20, blockSize: 65536, metadataSize: 2 << 20)
        try pool.createThin(1, virtualSize: 8 << 20)
        try pool.commit()
        func allocated() throws -> Int {
            let a = try FileManager.default.attributesOfItem(atPath: "\(path)/data")
            _ = a
            var st = stat()
            stat("\(path)/data", &st)
            return Int(st.st_blocks) * 512
        }
        let empty = try allocated()
        try pool.write(1, offset: 0, [UInt8](repeating: 9, count: 4 << 20))
        #expect(try allocated() >= empty + (4 << 20))
        try pool.abort()
        #expect(try allocated() < empty + (64 << 10), "aborted data blocks still take host space")
        pool.close()
        #expect(!FileManager.default.fileExists(atPath: "\(path)/pool.json.tmp"))
    }

    @Test func deviceNumbersAreDigitsOnly() {
        #expect(decimalNumber("2") == 2)
        #expect(decimalNumber("+2") == nil)
        #expect(decimalNumber("-0") == nil)
        #expect(decimalNumber(" 2") == nil)
        #expect(decimalNumber("") == nil)
        #expect(decimalNumber("18446744073709551615") == UInt64.max)
        #expect(decimalNumber("18446744073709551616") == nil)
        #expect(decimalNumber("000000000000000000001") == nil)
    }
    // MARK: whole sectors, numbers from streams and catalogs

    /// The files a pool is made of, byte for byte (metadata, pool.json) and the data file's size.
    func snapshotFiles(_ p: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in ["metadata", "pool.json"] {
            out[name] = FileManager.default.contents(atPath: "\(p)/\(name)").map { [UInt8]($0) } ?? []
        }
        let size = (try FileManager.default.attributesOfItem(atPath: "\(p)/data")[.size] as? NSNumber)?.uint64Value ?? 0
        out["data size"] = Array("\(size)".utf8)
        return out
    }

    /// Sizes that become device sizes are whole 512-byte sectors (device-mapper counts in sectors):
    /// anything else is one line, exit 64, and nothing is created or changed.
    @Test func sizesAreWholeSectors() throws {
        let exe = try ThinBackupBinary.required()
        let dir = TempDir("sectors")
        let p = try pool(dir)
        let before = try snapshotFiles(p)
        func refused(_ args: [String], _ option: String, _ bytes: String, _ line: Int = #line) throws {
            let r = try Tool.run(exe, args)
            #expect(r.status == 64, "\(args): status \(r.status) \(r.stderr)")
            #expect(r.stderr == "thin-backup: \(option) \(bytes) bytes is not a whole number of 512-byte sectors\n", "\(args): \(r.stderr)")
        }
        try refused(["pool", "create-thin", "--pool", p, "--dev", "2", "--size", "1000"], "--size", "1000")
        try refused(["pool", "create-thin", "--pool", p, "--dev", "2", "--size", Self.max], "--size", Self.max)
        try refused(["pool", "resize", "--pool", p, "--data-size", "16777316"], "--data-size", "16777316")
        try refused(["pool", "resize", "--pool", p, "--metadata-size", "4194305"], "--metadata-size", "4194305")
        try refused(["send", "--pool", p, "--snap", "1", "--to", dir.file("s"), "--live-metadata", "--size", "1000"], "--size", "1000")
        #expect(!FileManager.default.fileExists(atPath: dir.file("s")))
        #expect(try snapshotFiles(p) == before, "a refused command changed the pool")
        let fresh = dir.file("fresh")
        try refused(["pool", "create", "--pool", fresh, "--data-size", "8388609"], "--data-size", "8388609")
        try refused(["pool", "create", "--pool", fresh, "--data-size", "8M", "--metadata-size", "2097000"], "--metadata-size", "2097000")
        #expect(!FileManager.default.fileExists(atPath: fresh), "a refused pool create left a folder")

        // Whole sectors that are not whole blocks stay allowed: a 1.5 KiB device reads back 1536 bytes.
        let ok = try Tool.run(exe, ["pool", "create-thin", "--pool", p, "--dev", "2", "--size", "1536"])
        #expect(ok.ok, "\(ok.stderr)")
        let open = try ThinPool(folder: p, readOnly: true)
        #expect(try open.virtualSize(of: 2) == 1536)
        open.close()
        // The library refuses the same sizes (receives and pool.json edits go through it).
        let lib = try ThinPool(folder: p)
        #expect(throws: PoolError.self) { try lib.createThin(3, virtualSize: 1000) }
        #expect(throws: PoolError.self) { try lib.setVirtualSize(2, 1000) }
        lib.close()
    }

    /// A stream built by hand (any numbers a damaged or hostile stream may carry in its header).
    func craftedStream(_ path: String, virtualSize: UInt64, expectedBlocks: UInt64 = 0, zeroBlocks: UInt64 = 1) throws {
        var h = StreamHeader(blockSize: 65536, virtualSize: virtualSize, streamID: Digest128(high: 7, low: 9),
                             sourcePool: Digest128(high: 1, low: 2),
                             target: SnapshotIdentity(device: 5, creationTime: 1, snapshottedTime: 1, transactionID: 1))
        h.expectedBlocks = expectedBlocks
        var e = StreamEncoder(header: h)
        var bytes = e.start()
        bytes += e.zero(firstBlock: 0, blockCount: zeroBlocks)
        bytes += e.finish(targetDigest: nil)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
    }

    /// A stream whose device size is not whole sectors: receive refuses it with one line and the
    /// pool is unchanged, no device, no pool.json.tmp.
    @Test func receiveOfANonSectorDeviceIsRefused() throws {
        let exe = try ThinBackupBinary.required()
        let dir = TempDir("sector-rx")
        let stream = dir.file("odd.tbs")
        try craftedStream(stream, virtualSize: 1000)
        let p = try pool(dir)
        let before = try snapshotFiles(p)
        let r = try Tool.run(exe, ["receive", "--pool", p, "--from", stream, "--quiet"])
        #expect(r.status == 1, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("1000 bytes is not a whole number of 512-byte sectors"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        #expect(try snapshotFiles(p) == before, "the refused receive changed the pool")
        #expect(!FileManager.default.fileExists(atPath: "\(p)/pool.json.tmp"))
        #expect(try thinCheck(p).ok)
    }

    /// Numbers in a stream's header near 2^64: a block estimate is only an estimate (saturated,
    /// the receive and merge go on); a device beyond 8 EiB is refused with one line. Never a trap.
    @Test func headerNumbersNearTheLimitNeverTrap() throws {
        let exe = try ThinBackupBinary.required()
        let dir = TempDir("header-numbers")
        let estimate = dir.file("estimate.tbs")
        try craftedStream(estimate, virtualSize: 1 << 20, expectedBlocks: .max, zeroBlocks: 16)
        let p = try pool(dir)
        let rx = try Tool.run(exe, ["receive", "--pool", p, "--from", estimate, "--quiet"])
        #expect(rx.ok, "\(rx.status): \(rx.stderr)")
        let open = try ThinPool(folder: p, readOnly: true)
        #expect(try open.virtualSize(of: 5) == 1 << 20)
        open.close()
        let merged = try Tool.run(exe, ["merge", "--stream", estimate, "--into", dir.file("m.img"), "--quiet"])
        #expect(merged.ok, "\(merged.status): \(merged.stderr)")
        #expect(FileManager.default.contents(atPath: dir.file("m.img")) == Data(count: 1 << 20))

        let huge = dir.file("huge.tbs")
        try craftedStream(huge, virtualSize: (1 << 63) + 65536)
        for args in [["merge", "--stream", huge, "--into", dir.file("h.img"), "--quiet"],
                     ["receive", "--pool", p, "--from", huge, "--quiet"],
                     ["verify", "--stream", huge, "--quiet"]] {
            let r = try Tool.run(exe, args)
            #expect(r.status == 1, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains("beyond 8 EiB") && !r.stderr.contains("Fatal error"), "\(args): \(r.stderr)")
        }
    }

    /// A catalog's device size near 2^63 (a damaged or edited catalog): `verify --repo --deep`
    /// reports that backup as a problem (exit 1), never a trap sizing its scratch pool.
    @Test func catalogNumbersAreCheckedByDeepVerify() throws {
        let exe = try ThinBackupBinary.required()
        let w = try WorkflowPool(seed: 17, blocks: 8)
        let repo = w.dir.file("repo")
        try w.day()
        _ = try backup(w, repo: repo, at: nightly(0))
        let good = try Tool.run(exe, ["verify", "--repo", repo, "--deep", "--quiet"])
        #expect(good.ok, "\(good.stderr)")
        let edit = try Tool.run("sqlite3", ["\(repo)/catalog.sqlite", "UPDATE backups SET virtualSize = 9223372036854775807"])
        #expect(edit.ok, "\(edit.stderr)")
        let r = try Tool.run(exe, ["verify", "--repo", repo, "--deep", "--quiet"])
        #expect(r.status == 1, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("too large for a scratch pool") && !r.stderr.contains("Fatal error"), "\(r.stderr)")
    }
}
