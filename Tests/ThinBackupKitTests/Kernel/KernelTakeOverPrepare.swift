import Foundation
@testable import PoolCore
import TestSupport
import Testing

/// Builds, with the `thin-backup pool ...` commands, the pools that
/// scripts/kernel-tests.sh hands to the kernel (make-fixture.sh take-over):
/// $TB_KERNEL_PREPARE/<case>/input is a `--pool` folder (`metadata`, `data`)
/// plus `devices.txt` (`ID:BYTES,...`, the first one is the one the kernel writes).
///
/// Every device is checked against an independent byte model (`pool read` ==
/// model) before it goes to the kernel. Each case is enabled as soon as the
/// commands it needs exist. The seed is $TB_KERNEL_SEED (default 0x7b) and is
/// printed on failure.
@Suite("Kernel take-over: prepare pools written by ThinBackup", .serialized)
struct KernelTakeOverPrepare {
    static var prepareSet: Bool { KernelEnv.prepareRoot != nil }
    static var seed: UInt64 {
        KernelEnv.env["TB_KERNEL_SEED"].flatMap { UInt64($0) } ?? 0x7B
    }

    static let block = 65536            // 64 KiB data blocks (128 sectors)
    static let devBytes = 32 * block    // 2 MiB thin devices

    @Test("model-based random pool: snapshots of snapshots, rewrites, discards, a deleted snapshot, grown metadata",
          .enabled(if: prepareSet, Comment(rawValue: KernelEnv.skipPrepare)))
    func randomModel() throws {
        var rng = SeededRNG(seed: Self.seed)
        let p = try ModelPool(name: "tb-model", dataBlocks: 512, seed: Self.seed)
        try p.createThin(1, bytes: Self.devBytes)
        for _ in 0 ..< 20 { try p.randomWrite(1, &rng) }
        try p.snapshot(origin: 1, dev: 2)
        for _ in 0 ..< 8 { try p.randomWrite(1, &rng) }       // copy-on-write of shared blocks
        for _ in 0 ..< 8 { try p.randomWrite(2, &rng) }
        try p.snapshot(origin: 2, dev: 3)                       // snapshot of a snapshot
        for _ in 0 ..< 6 { try p.randomWrite(3, &rng) }
        for _ in 0 ..< 6 { try p.randomWrite(2, &rng) }         // rewrites: blocks written before
        for _ in 0 ..< 6 { try p.randomWrite(2, &rng) }
        try p.discard(1, firstBlock: 4, blocks: 3)
        try p.discard(3, firstBlock: UInt64.random(in: 8 ..< 24, using: &rng), blocks: 2)
        try p.snapshot(origin: 3, dev: 4)
        for _ in 0 ..< 4 { try p.randomWrite(4, &rng) }
        try p.delete(4)                                         // a deleted snapshot
        try p.snapshot(origin: 1, dev: 5)
        for _ in 0 ..< 4 { try p.randomWrite(1, &rng) }
        try p.cli(["pool", "resize", "--pool", p.dir, "--metadata-size", "\(8 << 20)"])  // grown metadata file
        try p.finish(order: [1, 2, 3, 5])
    }

    @Test("a pool that filled its data device, went read-only and came back after resize",
          .enabled(if: prepareSet, Comment(rawValue: KernelEnv.skipPrepare)))
    func fullThenResized() throws {
        // In one process, through PoolCore's ThinPool: its mode lives in memory, as the kernel's does.
        var rng = SeededRNG(seed: Self.seed &+ 1)
        let seed = Self.seed &+ 1
        let dir = "\(KernelEnv.prepareRoot!)/tb-full-resize/input"
        try? FileManager.default.removeItem(atPath: dir)
        let b = Self.block
        let pool = try ThinPool.create(folder: dir, dataSize: UInt64(16 * b), blockSize: UInt64(b),
                                       metadataSize: 4 << 20)
        var model: [UInt64: [UInt8]] = [1: [UInt8](repeating: 0, count: Self.devBytes)]
        func randomBlock() -> [UInt8] { (0 ..< b).map { _ in UInt8.random(in: 0 ... 255, using: &rng) } }
        func write(_ dev: UInt64, _ v: Int) throws {
            let bytes = randomBlock()
            try pool.write(dev, offset: UInt64(v * b), bytes)
            model[dev]!.replaceSubrange(v * b ..< (v + 1) * b, with: bytes)
        }
        try pool.createThin(1, virtualSize: UInt64(Self.devBytes))
        for v in 0 ..< 16 { try write(1, v) }
        try pool.commit()
        #expect(pool.freeDataBlocks == 0, "seed \(seed)")
        // The 17th block has nowhere to go: refused, pool read-only, nothing changed.
        #expect(throws: (any Error).self, "seed \(seed): a write to a full pool succeeded") {
            try pool.write(1, offset: UInt64(16 * b), randomBlock())
        }
        #expect(pool.mode == .readOnly(.outOfDataSpace), "seed \(seed): mode \(pool.mode) after running out of data space")
        try pool.resize(dataSize: UInt64(64 * b))
        #expect(pool.mode == .write, "seed \(seed): mode \(pool.mode) after resize")
        for v in 16 ..< 24 { try write(1, v) }
        try pool.snapshot(origin: 1, as: 2)
        model[2] = model[1]
        try write(1, 3)
        try pool.commit()
        pool.close()

        let p = try ModelPool(existing: dir, model: model, seed: seed)
        try p.finish(order: [1, 2])
    }

    @Test("a large pool: multi-level mapping trees, 300 devices in the details and top-level trees",
          .enabled(if: prepareSet, Comment(rawValue: KernelEnv.skipPrepare)))
    func largePool() throws {
        // In one process through ThinPool (thousands of writes); the model keeps, per device,
        // which self-describing pattern each virtual block holds.
        let seed = Self.seed &+ 4
        var rng = SeededRNG(seed: seed)
        let dir = "\(KernelEnv.prepareRoot!)/tb-large/input"
        try? FileManager.default.removeItem(atPath: dir)
        let b = Self.block
        let blocks: UInt64 = 1024  // 64 MiB devices; 700+ mappings: bottom trees of several leaves
        let pool = try ThinPool.create(folder: dir, dataSize: UInt64(4096 * b), blockSize: UInt64(b),
                                       metadataSize: 16 << 20)
        var model: [UInt64: [UInt64: UInt64]] = [:]  // dev -> vblock -> pattern tag
        var tag: UInt64 = 0
        func write(_ dev: UInt64, _ v: UInt64) throws {
            tag += 1
            try pool.write(dev, offset: v * UInt64(b), Self.pattern(tag, b))
            model[dev, default: [:]][v] = tag
        }
        try pool.createThin(1, virtualSize: blocks * UInt64(b))
        model[1] = [:]
        for v in (0 ..< blocks).shuffled(using: &rng).prefix(700) { try write(1, v) }
        try pool.commit()
        try pool.snapshot(origin: 1, as: 2)
        model[2] = model[1]
        for _ in 0 ..< 300 { try write(1, UInt64.random(in: 0 ..< blocks, using: &rng)) }
        for _ in 0 ..< 200 { try write(2, UInt64.random(in: 0 ..< blocks, using: &rng)) }
        try pool.commit()
        try pool.snapshot(origin: 2, as: 3)
        model[3] = model[2]
        for _ in 0 ..< 10 {
            let first = UInt64.random(in: 0 ..< blocks - 16, using: &rng), n = UInt64.random(in: 1 ... 16, using: &rng)
            try pool.discard(1, blocks: first ..< first + n)
            for v in first ..< first + n { model[1]![v] = nil }
        }
        for _ in 0 ..< 100 { try write(3, UInt64.random(in: 0 ..< blocks, using: &rng)) }
        // Many small devices: the details and top-level trees get more than one level.
        for dev in UInt64(100) ..< 400 {
            try pool.createThin(dev, virtualSize: UInt64(4 * b))
            model[dev] = [:]
            try write(dev, dev % 4)
        }
        for dev in stride(from: UInt64(101), to: 400, by: 7) {
            try pool.delete(dev)
            model[dev] = nil
        }
        try pool.commit()
        pool.close()

        let order: [UInt64] = [1, 2, 3, 100, 399]
        let reader = try MetadataReader(path: "\(dir)/metadata")
        let data = try RandomAccessFile(path: "\(dir)/data", writable: false)
        #expect(Set(try reader.live.devices().map(\.id)) == Set(model.keys), "seed \(seed): device set")
        for dev in order {
            let size = dev < 100 ? blocks * UInt64(b) : UInt64(4 * b)
            let want = try SHA256Pipe()
            for v in 0 ..< size / UInt64(b) {
                let bytes = model[dev]![v].map { Self.pattern($0, b) } ?? [UInt8](repeating: 0, count: b)
                try bytes.withUnsafeBytes { try want.write($0) }
            }
            let got = try SHA256Pipe()
            try ThinDeviceReader(view: reader.live, data: data, device: dev).read(size: size) { try got.write($0) }
            #expect(try got.finish() == want.finish(), "seed \(seed): thin\(dev) differs from the model")
        }
        let check = try Tool.run("thin_check", ["\(dir)/metadata"])
        #expect(check.ok, "seed \(seed): thin_check: \(check.stderr)")
        let list = order.map { "\($0):\($0 < 100 ? blocks * UInt64(b) : UInt64(4 * b))" }.joined(separator: ",")
        try (list + "\n").write(toFile: "\(dir)/devices.txt", atomically: true, encoding: .utf8)
        try "thin-backup (seed \(seed))\n".write(toFile: "\(dir)/thin-backup-pool", atomically: true, encoding: .utf8)
    }

    /// A data block that names its write: `tag` mixed with the word index, little-endian.
    static func pattern(_ tag: UInt64, _ bytes: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: bytes)
        out.withUnsafeMutableBytes { p in
            for i in 0 ..< bytes / 8 {
                p.storeBytes(of: (tag &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(i)).littleEndian, toByteOffset: i * 8, as: UInt64.self)
            }
        }
        return out
    }

    @Test("a pool with a metadata snapshot held by ThinBackup",
          .enabled(if: prepareSet, Comment(rawValue: KernelEnv.skipPrepare)))
    func heldMetadataSnapshot() throws {
        var rng = SeededRNG(seed: Self.seed &+ 2)
        let p = try ModelPool(name: "tb-held-msnap", dataBlocks: 256, seed: Self.seed &+ 2)
        try p.createThin(1, bytes: Self.devBytes)
        for _ in 0 ..< 12 { try p.randomWrite(1, &rng) }
        try p.snapshot(origin: 1, dev: 2)
        try p.cli(["pool", "reserve-metadata-snap", "--pool", p.dir])
        for _ in 0 ..< 6 { try p.randomWrite(1, &rng) }
        let held = try MetadataReader(path: "\(p.dir)/metadata").superblock.heldRoot
        #expect(held != 0, "seed \(p.seed): reserve-metadata-snap left no held root")
        try p.finish(order: [1, 2])
    }

    @Test("a pool assembled by `receive` from a full stream and a chain of incrementals",
          .enabled(if: prepareSet, Comment(rawValue: KernelEnv.skipPrepare)))
    func received() throws {
        var rng = SeededRNG(seed: Self.seed &+ 3)
        let src = try ModelPool(name: "tb-receive-source", dataBlocks: 512, seed: Self.seed &+ 3, prepared: false)
        let dst = try ModelPool(name: "tb-received", dataBlocks: 512, seed: Self.seed &+ 3)
        try src.createThin(1, bytes: Self.devBytes)
        let streams = TempDir("kstream")
        var snaps: [UInt64] = []
        for (i, snap) in [UInt64(10), 11, 12].enumerated() {
            for _ in 0 ..< 10 { try src.randomWrite(1, &rng) }
            try src.discard(1, firstBlock: UInt64.random(in: 0 ..< 30, using: &rng), blocks: 1)
            try src.snapshot(origin: 1, dev: snap)
            let file = streams.file("s\(i)")
            // Nobody else uses the source pool: read its live metadata.
            let live = ["--live-metadata"]
            try src.cli(["send", "--pool", src.dir] + (snaps.last.map { ["--from", "\($0)"] } ?? [])
                        + ["--snap", "\(snap)", "--to", file, "--quiet"] + live)
            try dst.cli(["receive", "--pool", dst.dir, "--from", file, "--quiet"])
            dst.model[snap] = src.model[snap]
            snaps.append(snap)
        }
        try dst.finish(order: snaps.reversed())
    }
}

/// A pool built through the CLI beside a byte model of every device.
final class ModelPool {
    let dir: String
    let seed: UInt64
    let prepared: Bool
    var model: [UInt64: [UInt8]] = [:]
    private let scratch: TempDir
    private var nextFile = 0

    init(name: String, dataBlocks: Int, seed: UInt64, prepared: Bool = true) throws {
        self.seed = seed
        self.prepared = prepared
        let s = TempDir("kmodel")
        scratch = s
        dir = prepared ? "\(KernelEnv.prepareRoot!)/\(name)/input" : "\(s.path)/\(name)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try cli(["pool", "create", "--pool", dir, "--data-size", "\(dataBlocks * KernelTakeOverPrepare.block)",
                 "--block-size", "64k", "--metadata-size", "\(4 << 20)"])
    }

    /// A pool already built (`model`: its devices' bytes), to verify and hand over.
    init(existing dir: String, model: [UInt64: [UInt8]], seed: UInt64) throws {
        self.dir = dir
        self.seed = seed
        self.model = model
        prepared = true
        scratch = TempDir("kmodel")
    }

    @discardableResult
    func cli(_ args: [String]) throws -> Tool.Result {
        let r = try CLI.run(args)
        guard r.ok else {
            throw KernelTestError("seed \(seed): thin-backup \(args.joined(separator: " ")) failed (\(r.status)): \(r.stderr)")
        }
        return r
    }

    func createThin(_ dev: UInt64, bytes: Int) throws {
        try cli(["pool", "create-thin", "--pool", dir, "--dev", "\(dev)", "--size", "\(bytes)"])
        model[dev] = [UInt8](repeating: 0, count: bytes)
    }

    func snapshot(origin: UInt64, dev: UInt64) throws {
        try cli(["pool", "snapshot", "--pool", dir, "--origin", "\(origin)", "--dev", "\(dev)"])
        model[dev] = model[origin]
    }

    func delete(_ dev: UInt64) throws {
        try cli(["pool", "delete", "--pool", dir, "--dev", "\(dev)"])
        model[dev] = nil
    }

    func tryWrite(_ dev: UInt64, offset: UInt64, _ bytes: [UInt8]) throws -> Tool.Result {
        nextFile += 1
        let f = scratch.file("w\(nextFile)")
        try Data(bytes).write(to: URL(fileURLWithPath: f))
        defer { try? FileManager.default.removeItem(atPath: f) }
        return try CLI.run(["pool", "write", "--pool", dir, "--dev", "\(dev)", "--from", f, "--offset", "\(offset)"])
    }

    func write(_ dev: UInt64, offset: UInt64, _ bytes: [UInt8]) throws {
        let r = try tryWrite(dev, offset: offset, bytes)
        guard r.ok else { throw KernelTestError("seed \(seed): pool write dev \(dev) at \(offset): \(r.stderr)") }
        model[dev]!.replaceSubrange(Int(offset) ..< Int(offset) + bytes.count, with: bytes)
    }

    func writeBlock(_ dev: UInt64, _ vblock: UInt64, _ rng: inout SeededRNG) throws {
        let b = KernelTakeOverPrepare.block
        try write(dev, offset: vblock * UInt64(b), (0 ..< b).map { _ in UInt8.random(in: 0 ... 255, using: &rng) })
    }

    /// A whole-block run (1-3 blocks) or a 4 KiB-aligned partial write inside a block.
    func randomWrite(_ dev: UInt64, _ rng: inout SeededRNG) throws {
        let b = KernelTakeOverPrepare.block
        let size = model[dev]!.count
        let offset: Int, length: Int
        if Bool.random(using: &rng) {
            let n = Int.random(in: 1 ... 3, using: &rng)
            offset = Int.random(in: 0 ... size / b - n, using: &rng) * b
            length = n * b
        } else {
            offset = Int.random(in: 0 ..< size / b, using: &rng) * b + Int.random(in: 0 ..< 15, using: &rng) * 4096
            length = Int.random(in: 1 ... 2, using: &rng) * 4096
        }
        // Runs of a repeated byte with a little noise: compressible and still distinct per write.
        let fill = UInt8.random(in: 1 ... 255, using: &rng)
        var bytes = [UInt8](repeating: fill, count: length)
        for i in stride(from: 0, to: length, by: 512) { bytes[i] = UInt8.random(in: 0 ... 255, using: &rng) }
        try write(dev, offset: UInt64(offset), bytes)
    }

    func discard(_ dev: UInt64, firstBlock: UInt64, blocks: UInt64) throws {
        let b = UInt64(KernelTakeOverPrepare.block)
        try cli(["pool", "discard", "--pool", dir, "--dev", "\(dev)", "--offset", "\(firstBlock * b)",
                 "--length", "\(blocks * b)"])
        let lo = Int(firstBlock * b), hi = Int((firstBlock + blocks) * b)
        model[dev]!.replaceSubrange(lo ..< hi, with: [UInt8](repeating: 0, count: hi - lo))
    }

    /// `pool read` of every device == the model.
    func verify() throws {
        for (dev, bytes) in model.sorted(by: { $0.key < $1.key }) {
            let f = scratch.file("r\(dev)")
            try cli(["pool", "read", "--pool", dir, "--dev", "\(dev)", "--to", f])
            try padTo(f, size: UInt64(bytes.count))
            let got = try Data(contentsOf: URL(fileURLWithPath: f))
            if got != Data(bytes) {
                let at = zip(got, bytes).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(got.count, bytes.count)
                Issue.record("seed \(seed): \(dir) dev \(dev): pool read differs from the model at byte \(at) (got \(got.count) bytes)")
            }
            try? FileManager.default.removeItem(atPath: f)
        }
    }

    /// Checks against the model and thin_check, then writes devices.txt (`order`: the kernel writes the first).
    func finish(order: [UInt64]) throws {
        try verify()
        let check = try Tool.run("thin_check", ["\(dir)/metadata"])
        #expect(check.ok, "seed \(seed): thin_check of \(dir): \(check.stderr)")
        let list = order.map { "\($0):\(model[$0]!.count)" }.joined(separator: ",")
        try (list + "\n").write(toFile: "\(dir)/devices.txt", atomically: true, encoding: .utf8)
        try "thin-backup (seed \(seed))\n".write(toFile: "\(dir)/thin-backup-pool", atomically: true, encoding: .utf8)
    }
}
