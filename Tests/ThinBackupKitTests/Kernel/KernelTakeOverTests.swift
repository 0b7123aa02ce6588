import Foundation
@testable import PoolCore
import TestSupport
import Testing

/// ThinBackup → kernel: pools prepared under $TB_KERNEL_TAKEOVER/<case>/input (by
/// KernelTakeOverPrepare, or a kernel fixture) were handed to the real kernel by
/// `make-fixture.sh take-over` (results in <case>/out). The kernel must accept each
/// one, read every device as ThinBackup does, write and snapshot; ThinBackup must
/// then read the kernel's changes back exactly.
@Suite("Kernel take-over: pools ThinBackup wrote, opened by the kernel", .serialized)
struct KernelTakeOverTests {
    static var takeoverSet: Bool { KernelEnv.takeoverRoot != nil }

    @Test("take-over cases were run",
          .enabled(if: takeoverSet, Comment(rawValue: KernelEnv.skipTakeover)))
    func casesPresent() {
        #expect(!KernelEnv.takeovers.isEmpty, "no <case>/out/manifest.json under \(KernelEnv.takeoverRoot ?? "")")
        // Every prepared input must have been handed to the kernel.
        for dir in KernelEnv.subfolders(of: KernelEnv.takeoverRoot ?? "/nonexistent")
        where FileManager.default.fileExists(atPath: "\(dir)/input/devices.txt") {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/manifest.json"),
                    "\(dir): prepared but the kernel take-over left no manifest (see \(dir)/out.log)")
        }
    }

    @Test("the kernel accepts the pool: rw, no needs_check, no dm errors, writes and snapshots",
          .enabled(if: takeoverSet, Comment(rawValue: KernelEnv.skipTakeover)),
          arguments: KernelEnv.takeovers)
    func kernelAccepts(dir: String) throws {
        let m = try Manifest(path: "\(dir)/out/manifest.json")
        #expect(m.bool("result.ok") == true, "\(dir): kernel take-over failed: \(m.string("result.reason") ?? "?")")
        #expect(m.bool("kernel.accepted") == true, "\(dir): kernel did not accept the pool")
        #expect(m.bool("kernel.writable") == true, "\(dir): kernel did not open the pool writable")
        #expect(m.bool("kernel.status.needs_check") == false, "\(dir): needs_check set")
        #expect(m.string("kernel.status.mode") == "rw", "\(dir): mode \(m.string("kernel.status.mode") ?? "?")")
        let errors = m.value("kernel.dmesg_errors") as? [Any] ?? []
        #expect(errors.isEmpty, "\(dir): dm errors in the guest log: \(errors)")
        #expect(m.bool("snapshot.created") == true, "\(dir): the kernel's create_snap did not happen")
    }

    @Test("the kernel reads every device with the sha256 ThinBackup computes",
          .enabled(if: takeoverSet, Comment(rawValue: KernelEnv.skipTakeover)),
          arguments: KernelEnv.takeovers)
    func kernelReadsOurBytes(dir: String) throws {
        let m = try Manifest(path: "\(dir)/out/manifest.json")
        let kernel = m.dict("sha256_before")
        let devices = try inputDevices(dir)
        #expect(!devices.isEmpty)
        let reader = try MetadataReader(path: "\(dir)/input/metadata")
        let data = try RandomAccessFile(path: "\(dir)/input/data", writable: false)
        for (id, size) in devices.sorted(by: { $0.key < $1.key }) {
            let ours = try SHA256Pipe.device(ThinDeviceReader(view: reader.live, data: data, device: id), size: size)
            let theirs = kernel[String(id)] as? String
            #expect(theirs == ours, "\(dir): thin\(id): kernel read \(theirs ?? "nothing"), ThinBackup \(ours)")
        }
        // `pool read` too, when the input is a ThinBackup pool folder.
        guard FileManager.default.fileExists(atPath: "\(dir)/input/thin-backup-pool") else { return }
        let tmp = TempDir("ktoread")
        for (id, size) in devices.sorted(by: { $0.key < $1.key }) {
            let out = tmp.file("thin\(id)")
            let r = try CLI.run(["pool", "read", "--pool", "\(dir)/input", "--dev", "\(id)", "--to", out])
            #expect(r.ok, "\(dir): pool read --dev \(id): \(r.stderr)")
            guard r.ok else { continue }
            try padTo(out, size: size)
            let theirs = kernel[String(id)] as? String
            #expect(try SHA256Pipe.file(out) == theirs, "\(dir): pool read thin\(id) differs from the kernel's read")
        }
    }

    @Test("ThinBackup reads the kernel's writes and snapshot back exactly",
          .enabled(if: takeoverSet, Comment(rawValue: KernelEnv.skipTakeover)),
          arguments: KernelEnv.takeovers)
    func readBack(dir: String) throws {
        let m = try Manifest(path: "\(dir)/out/manifest.json")
        guard m.bool("result.ok") == true else {
            Issue.record("\(dir): take-over failed, nothing to read back: \(m.string("result.reason") ?? "?")")
            return
        }
        let after = m.dict("sha256_after")
        var sizes = try inputDevices(dir)
        let snapID = UInt64(m.int("snapshot.new_id") ?? -1)
        let origin = UInt64(m.int("snapshot.origin") ?? -1)
        sizes[snapID] = sizes[origin]
        let reader = try MetadataReader(path: "\(dir)/out/metadata.img")
        let data = try RandomAccessFile(path: "\(dir)/out/data.img", writable: false)
        #expect(Set(try reader.live.devices().map(\.id)).isSuperset(of: sizes.keys))
        for (id, size) in sizes.sorted(by: { $0.key < $1.key }) {
            let ours = try SHA256Pipe.device(ThinDeviceReader(view: reader.live, data: data, device: id), size: size)
            let theirs = after[String(id)] as? String
            #expect(theirs == ours, "\(dir): thin\(id) after the kernel's writes: kernel \(theirs ?? "nothing"), ThinBackup \(ours)")
        }
        do {
            let r = try CLI.run(["dump", "--metadata", "\(dir)/out/metadata.img"])
            let want = try String(contentsOfFile: "\(dir)/out/ref/thin_dump.xml", encoding: .utf8)
            #expect(r.stdout == want, "\(dir): dump of the kernel-written metadata: \(firstDifference(r.stdout, want))")
        }
        do {
            let pool = try PoolDir.of("\(dir)/out", sizes: sizes)
            let r = try CLI.run(["pool", "check"] + pool.args(for: ["pool", "check"]))
            #expect(r.ok, "\(dir): pool check after the kernel's writes: \(r.stderr)\(r.stdout)")
        }
        do {
            let pool = try PoolDir.of("\(dir)/out", sizes: sizes)
            let tmp = TempDir("ktoback")
            for (id, size) in sizes.sorted(by: { $0.key < $1.key }) {
                let out = tmp.file("thin\(id)")
                let r = try CLI.run(["pool", "read"] + pool.args(for: ["pool", "read"]) + ["--dev", "\(id)", "--to", out])
                #expect(r.ok, "\(dir): pool read --dev \(id) of the kernel's pool: \(r.stderr)")
                guard r.ok else { continue }
                try padTo(out, size: size)
                #expect(try SHA256Pipe.file(out) == after[String(id)] as? String,
                        "\(dir): pool read thin\(id) after the kernel's writes differs from the kernel's read")
            }
        }
    }

    @Test("a metadata snapshot held in the input is the one the kernel's status shows, and stays held",
          .enabled(if: takeoverSet, Comment(rawValue: KernelEnv.skipTakeover)),
          arguments: KernelEnv.takeovers)
    func heldRoot(dir: String) throws {
        let input = try MetadataReader(path: "\(dir)/input/metadata")
        let m = try Manifest(path: "\(dir)/out/manifest.json")
        let status = m.value("kernel.status.held_root")
        let kernelHeld: UInt64? = (status as? NSNumber)?.uint64Value ?? (status as? String).flatMap { UInt64($0) }
        if input.superblock.heldRoot == 0 {
            #expect(kernelHeld == nil || kernelHeld == 0, "\(dir): kernel shows a held root \(kernelHeld ?? 0) none was held")
            return
        }
        #expect(kernelHeld == input.superblock.heldRoot,
                "\(dir): held root: ThinBackup \(input.superblock.heldRoot), kernel status \(String(describing: status))")
        let out = try MetadataReader(path: "\(dir)/out/metadata.img")
        #expect(out.superblock.heldRoot == input.superblock.heldRoot, "\(dir): the kernel dropped or moved the held root")
        do {
            let a = try CLI.run(["dump", "--metadata", "\(dir)/input/metadata", "-m"])
            let b = try CLI.run(["dump", "--metadata", "\(dir)/out/metadata.img", "-m"])
            #expect(a.ok && a.stdout == b.stdout, "\(dir): the held snapshot changed: \(firstDifference(b.stdout, a.stdout))")
        }
    }

    // MARK: helpers

    /// `ID:BYTES,...` of input/devices.txt.
    func inputDevices(_ dir: String) throws -> [UInt64: UInt64] {
        let text = try String(contentsOfFile: "\(dir)/input/devices.txt", encoding: .utf8)
        var out: [UInt64: UInt64] = [:]
        for item in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let f = item.split(separator: ":")
            guard f.count == 2, let id = UInt64(f[0]), let n = UInt64(f[1]) else {
                throw KernelTestError("\(dir)/input/devices.txt: bad entry \(item)")
            }
            out[id] = n
        }
        return out
    }
}
