import Foundation
@testable import PoolCore
import TestSupport
import Testing

/// ThinBackup's write path continuing on a pool the kernel left (kernel scenarios, and the
/// pools after the kernel's take-over writes): the kernel chose every metadata and data
/// block there, so PoolCore's copy-on-write, allocation and reference counting meet
/// layouts it did not make itself. The expected bytes are the kernel's (its sha256 of
/// every device) patched with what ThinBackup wrote.
@Suite("Kernel pools: ThinBackup keeps writing where the kernel stopped", .serialized)
struct KernelContinuationTests {
    static var any: Bool { KernelEnv.fixturesRoot != nil || KernelEnv.takeoverRoot != nil }

    /// (pool folder holding metadata.img/data.img, device sizes, kernel sha256 per device).
    static var cases: [String] { KernelEnv.scenarios + KernelEnv.takeovers.map { "\($0)/out" } }

    @Test("write, partial write, discard, snapshot, CoW, delete, commit on a kernel-written pool",
          .enabled(if: any, "TB_KERNEL_FIXTURES / TB_KERNEL_TAKEOVER not set: skipped (run scripts/kernel-tests.sh)"),
          arguments: cases)
    func continueOnKernelPool(dir: String) throws {
        let (sizes, kernelSha) = try Self.expectations(dir)
        guard !sizes.isEmpty else { return }  // a failed take-over: reported by KernelTakeOverTests
        let tmp = TempDir("kcont")
        for (from, to) in [("metadata.img", "metadata"), ("data.img", "data")] {
            let cp = try Tool.run("cp", ["--sparse=always", "\(dir)/\(from)", "\(tmp.path)/\(to)"])
            try #require(cp.ok, "cp \(from): \(cp.stderr)")
        }
        let devices = sizes.sorted { $0.key < $1.key }.map { "\"\($0.key)\": {\"size\": \($0.value)}" }
        try "{\"version\": 1, \"devices\": {\(devices.joined(separator: ", "))}}\n"
            .write(toFile: tmp.file("pool.json"), atomically: true, encoding: .utf8)

        let orig = try MetadataReader(path: "\(dir)/metadata.img")
        let origData = try RandomAccessFile(path: "\(dir)/data.img", writable: false)
        let ids = sizes.keys.sorted()
        let a = ids[0]
        let origA = ThinDeviceReader(view: orig.live, data: origData, device: a)
        let bs = origA.blockBytes
        let blocksA = sizes[a]! / UInt64(bs)
        let mapped = try origA.mappings().map(\.virtual).filter { $0 < blocksA }
        try #require(mapped.count >= 3, "\(dir): device \(a) has too few mapped blocks to exercise")
        let mappedSet = Set(mapped)
        var rng = SeededRNG(seed: 0x6B63_6F6E ^ UInt64(dir.utf8.count))
        func random(_ n: Int) -> [UInt8] { (0 ..< n).map { _ in UInt8.random(in: 0 ... 255, using: &rng) } }

        // The operations, and what each block of A (and of the snapshot N) must then hold.
        let full = mapped[0], partial = mapped[mapped.count / 2], discarded = mapped[mapped.count - 1]
        let unmapped = try #require((0 ..< blocksA).first { !mappedSet.contains($0) })
        var overA: [UInt64: [UInt8]] = [:]
        let pool = try ThinPool(folder: tmp.path)
        let fullBytes = random(bs)
        try pool.write(a, offset: full * UInt64(bs), fullBytes)
        overA[full] = fullBytes
        let patch = random(4096)
        try pool.write(a, offset: partial * UInt64(bs) + 8192, patch)
        var p = try origA.block(partial)
        p.replaceSubrange(8192 ..< 8192 + 4096, with: patch)
        overA[partial] = p
        let patch2 = random(4096)
        try pool.write(a, offset: unmapped * UInt64(bs), patch2)
        overA[unmapped] = patch2 + [UInt8](repeating: 0, count: bs - 4096)
        try pool.discard(a, blocks: discarded ..< discarded + 1)
        overA[discarded] = [UInt8](repeating: 0, count: bs)

        let n = (try pool.devices().max() ?? 0) + 1
        try pool.snapshot(origin: a, as: n)
        var overN = overA
        let snapBytes = random(bs)
        try pool.write(n, offset: full * UInt64(bs), snapBytes)  // shared with A now: copy-on-write
        overN[full] = snapBytes
        let deleted: UInt64? = ids.count >= 3 ? ids.last : nil
        if let deleted { try pool.delete(deleted) }
        try pool.commit()
        pool.close()

        let check = try Tool.run("thin_check", [tmp.file("metadata")])
        #expect(check.ok, "\(dir): thin_check after ThinBackup's writes: \(check.stderr)")
        let after = try MetadataReader(path: tmp.file("metadata"))
        let data = try RandomAccessFile(path: tmp.file("data"), writable: false)
        let liveIDs = Set(try after.live.devices().map(\.id))
        #expect(liveIDs.contains(n))
        if let deleted { #expect(!liveIDs.contains(deleted), "\(dir): device \(deleted) still there after delete") }
        for id in ids where id != a && id != deleted {
            let got = try SHA256Pipe.device(ThinDeviceReader(view: after.live, data: data, device: id), size: sizes[id]!)
            #expect(got == kernelSha[id], "\(dir): untouched thin\(id) changed after ThinBackup wrote to \(a)")
        }
        let wantA = try SHA256Pipe.device(origA, size: sizes[a]!, overrides: overA)
        let gotA = try SHA256Pipe.device(ThinDeviceReader(view: after.live, data: data, device: a), size: sizes[a]!)
        #expect(gotA == wantA, "\(dir): thin\(a) after ThinBackup's writes")
        let wantN = try SHA256Pipe.device(origA, size: sizes[a]!, overrides: overN)
        let gotN = try SHA256Pipe.device(ThinDeviceReader(view: after.live, data: data, device: n), size: sizes[a]!)
        #expect(gotN == wantN, "\(dir): snapshot thin\(n) of \(a) after its copy-on-write")

        // A metadata snapshot the kernel held is still held and unchanged.
        if orig.superblock.heldRoot != 0 {
            #expect(after.superblock.heldRoot == orig.superblock.heldRoot, "\(dir): held root moved")
            let x = try Tool.run("thin_dump", ["-m", "\(dir)/metadata.img"])
            let y = try Tool.run("thin_dump", ["-m", tmp.file("metadata")])
            #expect(x.ok && y.ok && x.stdout == y.stdout, "\(dir): the held metadata snapshot changed: \(firstDifference(y.stdout, x.stdout))")
        }
    }

    /// Device sizes and the kernel's final sha256 of each, for a scenario or a take-over output.
    static func expectations(_ dir: String) throws -> ([UInt64: UInt64], [UInt64: String]) {
        if FileManager.default.fileExists(atPath: "\(dir)/vm/sha256-final.txt") {
            let h = try readKernelHashes("\(dir)/vm/sha256-final.txt")
            return (h.mapValues(\.bytes), h.mapValues(\.sha))
        }
        let m = try Manifest(path: "\(dir)/manifest.json")
        guard m.bool("result.ok") == true else { return ([:], [:]) }
        let h = try readKernelHashes("\(dir)/vm/sha256-after.txt")
        return (h.mapValues(\.bytes), h.mapValues(\.sha))
    }
}
