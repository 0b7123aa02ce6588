import Foundation
@testable import PoolCore
import TestSupport
import Testing

/// Kernel → ThinBackup: pools written by a real Linux kernel (make-fixture.sh
/// scenarios, one folder each under $TB_KERNEL_FIXTURES) are read by ThinBackup
/// exactly as thin-provisioning-tools and the kernel itself read them.
///
/// Each check that needs a `thin-backup` subcommand is enabled as soon as the
/// built binary lists it; the byte-level check through PoolCore needs nothing else.
@Suite("Kernel fixtures: kernel-written pools read by ThinBackup", .serialized)
struct KernelFixtureTests {
    static var fixturesSet: Bool { KernelEnv.fixturesRoot != nil }

    @Test("the fixture folder holds scenario outputs made by the kernel",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)))
    func fixturesPresent() throws {
        let dirs = KernelEnv.scenarios
        #expect(!dirs.isEmpty, "no make-fixture.sh output under \(KernelEnv.fixturesRoot ?? "")")
        for dir in dirs {
            let m = try Manifest(path: "\(dir)/manifest.json")
            // make-fixture's own model check of the kernel's work must have passed.
            #expect(m.int("verification.checks_failed") == 0, "\(dir): verify.txt has failures")
            #expect(m.int("verification.checks_ok") ?? 0 > 0, "\(dir): no verification recorded")
        }
    }

    // MARK: device bytes through PoolCore (no CLI needed)

    @Test("PoolCore rebuilds every device with the sha256 the kernel read (live and held snapshot)",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func deviceBytes(dir: String) throws {
        let m = try Manifest(path: "\(dir)/manifest.json")
        let reader = try MetadataReader(path: "\(dir)/metadata.img")
        let data = try RandomAccessFile(path: "\(dir)/data.img", writable: false)
        let final = try readKernelHashes("\(dir)/vm/sha256-final.txt")
        #expect(!final.isEmpty)
        let liveIDs = Set(try reader.live.devices().map(\.id))
        #expect(liveIDs == Set(final.keys), "\(dir): device ids in metadata vs read by the kernel")
        for (id, want) in final.sorted(by: { $0.key < $1.key }) {
            let got = try SHA256Pipe.device(ThinDeviceReader(view: reader.live, data: data, device: id), size: want.bytes)
            #expect(got == want.sha, "\(dir): thin\(id) final: PoolCore \(got) kernel \(want.sha)")
        }

        guard m.bool("metadata_snapshot.held_at_end") == true else { return }
        let msnap = try reader.metadataSnapshot()
        #expect(msnap.superblock.location == UInt64(m.int("metadata_snapshot.held_root_block") ?? -1))
        let atReserve = try readKernelHashes("\(dir)/vm/sha256-msnap.txt")
        let changed = m.dict("metadata_snapshot.blocks_changed_after_reserve")
        var compared = 0
        for (id, want) in atReserve.sorted(by: { $0.key < $1.key }) {
            // A metadata snapshot freezes mappings, not data: blocks overwritten in place
            // or discarded after the reserve read differently now (see README "Kernel tests": the metadata snapshot is not a data snapshot).
            if let blocks = changed[String(id)] as? [String: Any], !blocks.isEmpty { continue }
            let got = try SHA256Pipe.device(ThinDeviceReader(view: msnap, data: data, device: id), size: want.bytes)
            #expect(got == want.sha, "\(dir): thin\(id) via metadata snapshot: PoolCore \(got) kernel \(want.sha)")
            compared += 1
        }
        #expect(compared > 0, "\(dir): no device unchanged since the reserve to compare through the msnap")
    }

    // MARK: thin-backup dump

    @Test("`thin-backup dump` and `dump -m` equal thin_dump of the kernel's metadata",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func dump(dir: String) throws {
        let meta = "\(dir)/metadata.img"
        try expectSame(["dump", "--metadata", meta], file: "\(dir)/ref/thin_dump.xml", dir: dir)
        if FileManager.default.fileExists(atPath: "\(dir)/ref/thin_dump-msnap.xml") {
            try expectSame(["dump", "--metadata", meta, "-m"], file: "\(dir)/ref/thin_dump-msnap.xml", dir: dir)
        }
    }

    // MARK: thin-backup delta

    @Test("`thin-backup delta` equals thin_delta for every pair (plain and --verbose, live and -m)",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func delta(dir: String) throws {
        let meta = "\(dir)/metadata.img"
        let reader = try MetadataReader(path: meta)
        var views: [(flag: [String], prefix: String, ids: [UInt64])] = [([], "thin_delta", try reader.live.devices().map(\.id))]
        if reader.superblock.heldRoot != 0 {
            views.append((["-m"], "thin_delta-msnap", try reader.metadataSnapshot().devices().map(\.id)))
        }
        var runs = 0
        for view in views {
            for a in view.ids {
                for b in view.ids where a != b {
                    let pair = ["--thin1", "\(a)", "--thin2", "\(b)"]
                    let ref = "\(dir)/ref/\(view.prefix)-\(a)-\(b).xml"
                    let plain: String
                    if a < b, FileManager.default.fileExists(atPath: ref) {
                        plain = try String(contentsOfFile: ref, encoding: .utf8)
                    } else {
                        plain = try oracle("thin_delta", view.flag + ["--snap1", "\(a)", "--snap2", "\(b)", meta])
                    }
                    try expectSame(["delta", "--metadata", meta] + pair + view.flag, text: plain, dir: dir)
                    let v = try oracle("thin_delta", view.flag + ["--verbose", "--snap1", "\(a)", "--snap2", "\(b)", meta])
                    try expectSame(["delta", "--metadata", meta] + pair + view.flag + ["--verbose"], text: v, dir: dir)
                    runs += 1
                }
            }
        }
        #expect(runs >= 2)
    }

    // MARK: thin-backup pool check / ls / read

    @Test("`thin-backup pool check` is clean on the kernel's pool",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func poolCheck(dir: String) throws {
        let pool = try PoolDir.of(dir, sizes: readKernelHashes("\(dir)/vm/sha256-final.txt").mapValues(\.bytes))
        let r = try CLI.run(["pool", "check"] + pool.args(for: ["pool", "check"]))
        #expect(r.ok, "\(dir): pool check failed (\(r.status)): \(r.stderr)\(r.stdout)")
    }

    @Test("`thin-backup pool ls` equals thin_ls (live and -m)",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func poolLs(dir: String) throws {
        let pool = try PoolDir.of(dir, sizes: readKernelHashes("\(dir)/vm/sha256-final.txt").mapValues(\.bytes))
        let fields = "DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,TRANSACTION,CREATE_TIME,SNAP_TIME"
        var cases: [([String], String)] = [([], "thin_ls.txt")]
        if FileManager.default.fileExists(atPath: "\(dir)/ref/thin_ls-msnap.txt") {
            cases.append((["-m"], "thin_ls-msnap.txt"))
        }
        for (flag, refName) in cases {
            let args = ["pool", "ls"] + pool.args(for: ["pool", "ls"]) + flag + ["-o", fields]
            let r = try CLI.run(args)
            #expect(r.ok, "\(dir): \(args.joined(separator: " ")): \(r.stderr)")
            let want = try String(contentsOfFile: "\(dir)/ref/\(refName)", encoding: .utf8)
            #expect(table(r.stdout) == table(want),
                    "\(dir) \(refName): \(firstDifference(r.stdout, want))")
        }
    }

    @Test("`thin-backup pool read` gives every device with the sha256 the kernel read",
          .enabled(if: fixturesSet, Comment(rawValue: KernelEnv.skipFixtures)),
          arguments: KernelEnv.scenarios)
    func poolRead(dir: String) throws {
        let final = try readKernelHashes("\(dir)/vm/sha256-final.txt")
        let pool = try PoolDir.of(dir, sizes: final.mapValues(\.bytes))
        let tmp = TempDir("kread")
        for (id, want) in final.sorted(by: { $0.key < $1.key }) {
            let out = tmp.file("thin\(id)")
            let args = ["pool", "read"] + pool.args(for: ["pool", "read"]) + ["--dev", "\(id)", "--to", out]
            let r = try CLI.run(args)
            #expect(r.ok, "\(dir): \(args.joined(separator: " ")): \(r.stderr)")
            guard r.ok else { continue }
            try padTo(out, size: want.bytes)
            let got = try SHA256Pipe.file(out)
            #expect(got == want.sha, "\(dir): pool read thin\(id): \(got), kernel \(want.sha)")
            try? FileManager.default.removeItem(atPath: out)
        }
    }

    // MARK: helpers

    func oracle(_ tool: String, _ args: [String]) throws -> String {
        let r = try Tool.run(tool, args)
        guard r.ok else { throw KernelTestError("\(tool) \(args.joined(separator: " ")): \(r.stderr)") }
        return r.stdout
    }

    func expectSame(_ args: [String], file: String, dir: String) throws {
        try expectSame(args, text: String(contentsOfFile: file, encoding: .utf8), dir: dir)
    }

    func expectSame(_ args: [String], text: String, dir: String) throws {
        let r = try CLI.run(args)
        #expect(r.ok, "\(dir): thin-backup \(args.joined(separator: " ")): \(r.stderr)")
        #expect(r.stdout == text,
                "\(dir): thin-backup \(args.joined(separator: " ")): \(firstDifference(r.stdout, text))")
    }

    /// Whitespace-separated cells of each non-empty line (thin_ls aligns columns).
    func table(_ s: String) -> [[String]] {
        s.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }.filter { !$0.isEmpty }
    }
}

/// A `--pool DIR` copy of a fixture (`metadata`, `data`, and a `pool.json` giving the
/// device sizes that dm-thin keeps in its table lines, not in the metadata). Copies,
/// because nothing may change the kernel's images; one per fixture folder.
final class PoolDir: @unchecked Sendable {
    let tmp = TempDir("kpool")
    let path: String

    nonisolated(unsafe) private static var cache: [String: PoolDir] = [:]
    private static let lock = NSLock()

    /// The shared copy of `fixture` (its metadata.img, data.img) with devices of `sizes` bytes.
    static func of(_ fixture: String, sizes: [UInt64: UInt64]) throws -> PoolDir {
        lock.lock()
        defer { lock.unlock() }
        if let p = cache[fixture] { return p }
        let p = try PoolDir(fixture: fixture, sizes: sizes)
        cache[fixture] = p
        return p
    }

    private init(fixture: String, sizes: [UInt64: UInt64]) throws {
        path = tmp.path
        for (from, to) in [("metadata.img", "metadata"), ("data.img", "data")] {
            let cp = try Tool.run("cp", ["--sparse=always", "\(fixture)/\(from)", "\(path)/\(to)"])
            guard cp.ok else { throw KernelTestError("cp \(from): \(cp.stderr)") }
        }
        let devices = sizes.sorted { $0.key < $1.key }.map { "\"\($0.key)\": {\"size\": \($0.value)}" }
        try "{\"version\": 1, \"devices\": {\(devices.joined(separator: ", "))}}\n"
            .write(toFile: "\(path)/pool.json", atomically: true, encoding: .utf8)
    }

    /// `--pool DIR` when the command takes it, else `--metadata F` (and `--data F`).
    func args(for command: [String]) -> [String] {
        let help = CLI.help(command)
        if help.contains("--pool") { return ["--pool", path] }
        var a = ["--metadata", "\(path)/metadata"]
        if help.contains("--data") { a += ["--data", "\(path)/data"] }
        return a
    }
}

/// Extends a file with zeros to `size` bytes (a reader may stop at the last mapped block).
func padTo(_ path: String, size: UInt64) throws {
    let attrs = try FileManager.default.attributesOfItem(atPath: path)
    let cur = (attrs[.size] as? NSNumber)?.uint64Value ?? 0
    if cur < size {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: size)
        try h.close()
    }
}
