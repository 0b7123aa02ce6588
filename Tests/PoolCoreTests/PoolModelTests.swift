import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// An in-memory model of every thin device's bytes and of which blocks are one physical
/// block (identity), following the pool's documented rules: provisioning and copy-on-write
/// give a block a new identity; a write goes in place only to a block provisioned in this
/// transaction and not older than the device's last snapshot.
struct PoolModel {
    struct Dev { var size: UInt64; var blocks: [UInt64: Int] = [:]; var snapTime: UInt32 }
    var devs: [UInt64: Dev] = [:]
    var content: [Int: [UInt8]] = [:]
    var born: [Int: (txn: Int, time: UInt32)] = [:]
    var time: UInt32 = 0
    var txn = 0
    var nextID = 0
    let bs: Int

    init(blockSize: Int) { bs = blockSize }

    func read(_ dev: UInt64, _ v: UInt64) -> [UInt8] {
        guard let id = devs[dev]!.blocks[v] else { return [UInt8](repeating: 0, count: bs) }
        return content[id]!
    }

    /// Blocks of a write that need a new data block.
    func blocksNeeded(_ dev: UInt64, offset: UInt64, count: Int) -> Int {
        let d = devs[dev]!
        let first = offset / UInt64(bs), last = (offset + UInt64(count) - 1) / UInt64(bs)
        return (first...last).filter { v in
            guard let id = d.blocks[v], let b = born[id] else { return true }
            return !(b.txn == txn && b.time >= d.snapTime)
        }.count
    }

    mutating func write(_ dev: UInt64, offset: UInt64, _ bytes: [UInt8]) {
        var pos = offset
        var i = 0
        while i < bytes.count {
            let v = pos / UInt64(bs), inb = Int(pos % UInt64(bs))
            let n = min(bs - inb, bytes.count - i)
            let d = devs[dev]!
            if let id = d.blocks[v], let b = born[id], b.txn == txn, b.time >= d.snapTime {
                content[id]!.replaceSubrange(inb..<(inb + n), with: bytes[i..<(i + n)])
            } else {
                var blk = read(dev, v)
                blk.replaceSubrange(inb..<(inb + n), with: bytes[i..<(i + n)])
                let id = nextID; nextID += 1
                content[id] = blk
                born[id] = (txn, time)
                devs[dev]!.blocks[v] = id
            }
            pos += UInt64(n); i += n
        }
    }

    mutating func snapshot(_ origin: UInt64, _ dev: UInt64) {
        time += 1
        devs[origin]!.snapTime = time
        devs[dev] = Dev(size: devs[origin]!.size, blocks: devs[origin]!.blocks, snapTime: time)
    }

    mutating func committedNow() { txn += 1; gc() }

    /// Forgets identities nobody references (keeps memory small).
    mutating func gc(keeping extra: [PoolModel] = []) {
        var live = Set<Int>()
        for m in [self] + extra { for d in m.devs.values { live.formUnion(d.blocks.values) } }
        for k in content.keys where !live.contains(k) { content[k] = nil; born[k] = nil }
    }
}

@Suite struct PoolModelTests {
    static let bs = 65536

    /// Checks the committed pool on disk against `model` (and `held`, the held metadata snapshot's model).
    static func verify(_ pool: ThinPool, _ dir: String, _ model: PoolModel, held: PoolModel?, seed: UInt64, step: Int, readAll: Bool) throws {
        let ctx = "seed \(seed) step \(step)"
        let meta = "\(dir)/metadata"
        let c = try Oracle.check(meta)
        #expect(c.ok, "\(ctx): thin_check: \(c.stdout) \(c.stderr)")
        let dump = try Oracle.dump(meta)
        var idToBlock: [Int: UInt64] = [:], blockToID: [UInt64: Int] = [:]
        func match(_ m: PoolModel, _ devs: [UInt64: [UInt64: UInt64]], _ what: String) {
            #expect(Set(devs.keys) == Set(m.devs.keys), "\(ctx): \(what) device set")
            for (dev, d) in m.devs {
                let got = devs[dev] ?? [:]
                #expect(Set(got.keys) == Set(d.blocks.keys), "\(ctx): \(what) mapped blocks of device \(dev)")
                for (v, id) in d.blocks {
                    guard let b = got[v] else { continue }
                    if let known = idToBlock[id] { #expect(known == b, "\(ctx): \(what) dev \(dev) block \(v) should share data block \(known), maps \(b)") }
                    else { idToBlock[id] = b }
                    if let known = blockToID[b] { #expect(known == id, "\(ctx): \(what) dev \(dev) block \(v) shares data block \(b) with an unrelated block") }
                    else { blockToID[b] = id }
                }
            }
        }
        match(model, dump.devices, "live")
        for (dev, d) in model.devs { #expect(dump.details[dev]?["mapped_blocks"] == UInt64(d.blocks.count), "\(ctx): mapped_blocks of \(dev)") }
        if let held { match(held, try Oracle.dump(meta, metadataSnap: true).devices, "held") }
        let r = try MetadataReader(path: meta)
        let rc = try Recount.count(r)
        let onDisk = try Recount.onDisk(r.live.dataSpaceMap)
        #expect(onDisk == rc.data, "\(ctx): data counts differ from a recount of the trees")
        #expect(Set(onDisk.keys) == Set(idToBlock.values), "\(ctx): referenced data blocks differ from the model's")
        #expect(try Recount.onDisk(r.live.metadataSpaceMap) == rc.metadata, "\(ctx): metadata counts differ from a recount")
        // Exact sharing: a block is shared iff another device (or the held snapshot) maps the same identity.
        var owners: [Int: Int] = [:]
        for m in [model] + (held.map { [$0] } ?? []) {
            for d in m.devs.values { for id in d.blocks.values { owners[id, default: 0] += 1 } }
        }
        if let dev = model.devs.keys.sorted().first {
            for (v, id) in model.devs[dev]!.blocks {
                #expect(try pool.isShared(dev, v) == (owners[id]! > 1), "\(ctx): isShared(\(dev), \(v))")
            }
        }
        let devs = readAll ? Array(model.devs.keys) : Array(model.devs.keys.prefix(1))
        for dev in devs {
            for v in 0..<(model.devs[dev]!.size / UInt64(bs)) {
                let got = try pool.readBlock(dev, v)
                if got != model.read(dev, v) { Issue.record("\(ctx): device \(dev) block \(v) reads back different bytes"); return }
            }
        }
    }

    @Test(arguments: [UInt64(11), 12])
    func randomPoolOperations(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let tmp = TempDir("pmodel")
        let dir = tmp.file("pool")
        let pool = try ThinPool.create(folder: dir, dataSize: 120 * UInt64(Self.bs), blockSize: UInt64(Self.bs))
        var model = PoolModel(blockSize: Self.bs), committed = model
        var held: PoolModel? = nil
        var commits = 0
        let vblocks: UInt64 = 40
        for step in 0..<1200 {
            let ids = model.devs.keys.sorted()
            let r = rng.next() % 100
            do {
                if ids.isEmpty || (r < 4 && ids.count < 6) {
                    let id = rng.next() % 10
                    if model.devs[id] == nil {
                        try pool.createThin(id, virtualSize: vblocks * UInt64(Self.bs))
                        model.devs[id] = .init(size: vblocks * UInt64(Self.bs), snapTime: model.time)
                    } else {
                        #expect(throws: PoolError.deviceExists(id)) { try pool.createThin(id, virtualSize: 1 << 20) }
                    }
                } else if r < 9 {
                    let o = ids.randomElement(using: &rng)!, id = rng.next() % 10
                    if model.devs[id] == nil {
                        try pool.snapshot(origin: o, as: id); model.snapshot(o, id)
                    } else if model.devs[o] != nil, !ids.contains(99) {
                        #expect(throws: PoolError.unknownDevice(99)) { try pool.snapshot(origin: 99, as: 98) }
                    }
                } else if r < 11 && ids.count > 1 {
                    let id = ids.randomElement(using: &rng)!
                    try pool.delete(id); model.devs[id] = nil
                } else if r < 55 {
                    let id = ids.randomElement(using: &rng)!
                    let whole = rng.next() % 3 != 0
                    let offset = whole ? (rng.next() % vblocks) * UInt64(Self.bs) : rng.next() % (vblocks * UInt64(Self.bs) - 1)
                    let maxLen = Int(vblocks * UInt64(Self.bs) - offset)
                    let len = whole ? min(maxLen, Self.bs * Int(1 + rng.next() % 6)) : min(maxLen, Int(1 + rng.next() % UInt64(2 * Self.bs)))
                    var bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: len)
                    for _ in 0..<8 { bytes[Int(rng.next() % UInt64(len))] = UInt8(truncatingIfNeeded: rng.next()) }
                    do {
                        try pool.write(id, offset: offset, bytes)
                        model.write(id, offset: offset, bytes)
                    } catch PoolError.outOfDataSpace {
                        #expect(model.blocksNeeded(id, offset: offset, count: len) > 0)
                        #expect(pool.mode == .readOnly(.outOfDataSpace))
                        // OUT_OF_DATA_SPACE refuses only writes that need a new data block.
                        do {
                            try pool.write(id, offset: 0, [1])
                            model.write(id, offset: 0, [1])
                        } catch PoolError.outOfDataSpace {
                            #expect(model.blocksNeeded(id, offset: 0, count: 1) > 0)
                        }
                        try pool.resize(dataSize: (pool.dataBlockCount + 40) * UInt64(Self.bs))
                        #expect(pool.mode == .write)
                        committed = model; model.committedNow(); commits += 1
                    }
                } else if r < 60 {
                    let id = ids.randomElement(using: &rng)!
                    #expect(throws: PoolError.self) { try pool.write(id, offset: vblocks * UInt64(Self.bs) - 10, [UInt8](repeating: 1, count: 11)) }
                } else if r < 72 {
                    let id = ids.randomElement(using: &rng)!
                    let a = rng.next() % vblocks, b = a + 1 + rng.next() % 8
                    try pool.discard(id, blocks: a..<min(b, vblocks))
                    for v in a..<min(b, vblocks) { model.devs[id]!.blocks[v] = nil }
                } else if r < 90 {
                    try pool.commit()
                    committed = model; model.committedNow(); commits += 1
                    if commits % 4 == 0 {
                        try Self.verify(pool, dir, model, held: held, seed: seed, step: step, readAll: commits % 12 == 0)
                    }
                } else if r < 95 {
                    try pool.abort()
                    model = committed; model.txn += 1
                } else {
                    if held == nil {
                        try pool.reserveMetadataSnapshot()
                        committed = model; model.committedNow(); held = committed
                        #expect(throws: PoolError.metadataSnapshotHeld(pool.heldMetadataSnapshot!)) { try pool.reserveMetadataSnapshot() }
                    } else {
                        try pool.releaseMetadataSnapshot()
                        committed = model; model.committedNow(); held = nil
                    }
                }
            } catch {
                Issue.record("seed \(seed) step \(step): unexpected \(error)")
                return
            }
            model.gc(keeping: [committed] + (held.map { [$0] } ?? []))
        }
        try pool.commit()
        model.committedNow()
        try Self.verify(pool, dir, model, held: held, seed: seed, step: -1, readAll: true)
        // Reopen from disk: the same committed state.
        pool.close()
        let again = try ThinPool(folder: dir)
        try Self.verify(again, dir, model, held: held, seed: seed, step: -2, readAll: true)
    }
}
