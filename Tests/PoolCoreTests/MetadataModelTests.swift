import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// Random mapping operations on PoolMetadata against a dictionary model; the B-tree
/// splits, merges and shares nodes. After sampled commits: thin_check, thin_dump == model,
/// independent recount of data and metadata counts == the space maps on disk.
@Suite struct MetadataModelTests {
    typealias Model = [UInt64: [UInt64: UInt64]]

    /// Returns the largest data and metadata counts on disk (to see the overflow trees used).
    @discardableResult
    static func verify(_ path: String, _ model: Model, held: Model?, seed: UInt64, step: Int) throws -> (UInt32, UInt32) {
        let c = try Oracle.check(path)
        #expect(c.ok, "seed \(seed) step \(step): thin_check: \(c.stdout) \(c.stderr)")
        let d = try Oracle.dump(path)
        #expect(d.devices == model, "seed \(seed) step \(step): thin_dump mappings differ from the model")
        for (dev, m) in model { #expect(d.details[dev]?["mapped_blocks"] == UInt64(m.count), "seed \(seed) step \(step): mapped_blocks of \(dev)") }
        if let held {
            let h = try Oracle.dump(path, metadataSnap: true)
            #expect(h.devices == held, "seed \(seed) step \(step): thin_dump -m differs from the held model")
        }
        let r = try MetadataReader(path: path)
        let rc = try Recount.count(r)
        let dataCounts = try Recount.onDisk(r.live.dataSpaceMap), metaCounts = try Recount.onDisk(r.live.metadataSpaceMap)
        #expect(dataCounts == rc.data, "seed \(seed) step \(step): data counts differ from a recount")
        #expect(metaCounts == rc.metadata, "seed \(seed) step \(step): metadata counts differ from a recount")
        return (dataCounts.values.max() ?? 0, metaCounts.values.max() ?? 0)
    }

    @Test(arguments: [UInt64(1), 2])
    func randomMappingOperations(seed: UInt64) throws {
        var rng = SeededRNG(seed: seed)
        let dir = TempDir("mm")
        let path = dir.sparseFile("meta", size: 16 << 20)
        let dev = try FileMetadataDevice(path: path, writable: true)
        let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: 100_000)
        var model: Model = [:], committed: Model = [:]
        var held: Model? = nil
        var maxData: UInt32 = 0, maxMeta: UInt32 = 0
        let vspace: UInt64 = 30_000
        for step in 0..<2000 {
            let ids = model.keys.sorted()
            let r = rng.next() % 100
            if ids.isEmpty || (r < 3 && ids.count < 12) {
                let id = rng.next() % 40
                if model[id] == nil { try md.createThin(id); model[id] = [:] }
                else { #expect(throws: PoolError.deviceExists(id)) { try md.createThin(id) } }
            } else if r < 6 && ids.count < 12 {
                let o = ids.randomElement(using: &rng)!
                let id = rng.next() % 40
                if model[id] == nil { try md.createSnapshot(id, of: o); model[id] = model[o] }
            } else if r < 8 && ids.count > 2 {
                let id = ids.randomElement(using: &rng)!
                try md.delete(id); model[id] = nil
            } else if r < 40 {
                // a run of inserts
                let id = ids.randomElement(using: &rng)!
                let start = rng.next() % vspace, n = 1 + rng.next() % 250
                for v in start..<min(vspace, start + n) {
                    let b = try md.allocateDataBlock()!
                    try md.insertMapping(id, v, BlockTime(dataBlock: b, time: md.time))
                    model[id]![v] = b
                }
            } else if r < 70 {
                let id = ids.randomElement(using: &rng)!
                for _ in 0..<20 {
                    let v = rng.next() % vspace
                    let b = try md.allocateDataBlock()!
                    try md.insertMapping(id, v, BlockTime(dataBlock: b, time: md.time))
                    model[id]![v] = b
                }
            } else if r < 90 {
                // a run of removals (merges / rebalancing)
                let id = ids.randomElement(using: &rng)!
                let start = rng.next() % vspace, n = 1 + rng.next() % 600
                for v in start..<min(vspace, start + n) where model[id]![v] != nil {
                    let old = try md.removeMapping(id, v)
                    #expect(old?.dataBlock == model[id]![v])
                    model[id]![v] = nil
                }
            } else if r < 96 {
                try md.commit()
                committed = model
                if step % 5 == 0 {
                    let (d, m) = try Self.verify(path, model, held: held, seed: seed, step: step)
                    maxData = max(maxData, d); maxMeta = max(maxMeta, m)
                }
            } else if r < 98 {
                try md.abort()
                model = committed
            } else {
                if held == nil { try md.reserveMetadataSnapshot(); held = model; committed = model }
                else {
                    #expect(throws: PoolError.metadataSnapshotHeld(md.heldRoot)) { try md.reserveMetadataSnapshot() }
                    try md.releaseMetadataSnapshot(); held = nil; committed = model
                }
            }
        }
        try md.commit()
        try Self.verify(path, model, held: held, seed: seed, step: -1)
        #expect(maxData >= 3 && maxMeta >= 3, "seed \(seed): counts ≥ 3 (overflow trees) were never exercised: \(maxData), \(maxMeta)")
        if held != nil { try md.releaseMetadataSnapshot() }
        for id in model.keys { try md.delete(id) }
        try md.commit()
        try Self.verify(path, [:], held: nil, seed: seed, step: -2)
        // Everything released: only the bootstrap structures remain, no data block is used.
        let r = try MetadataReader(path: path)
        #expect(r.live.superblock.dataSpaceMapRoot.allocatedCount == 0, "seed \(seed): data blocks leaked")
    }
}
