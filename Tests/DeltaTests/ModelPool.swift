import Delta
@testable import PoolCore
import TestSupport

/// A pool built with PoolCore's own metadata write path (snapshots share trees
/// by copy-on-write, as the kernel's do), beside a plain model of every
/// device's mappings that the tests compare the diff against.
final class ModelPool {
    let device: MemoryMetadataDevice
    let md: PoolMetadata
    /// dev → (virtual block → data block), kept by the test alone.
    private(set) var model: [UInt64: [UInt64: UInt64]] = [:]

    init(metadataBlocks: UInt64 = 1 << 16, dataBlocks: UInt64 = 1 << 24) throws {
        device = MemoryMetadataDevice(blockCount: metadataBlocks)
        md = try PoolMetadata(formatting: device, dataBlockSectors: 128, dataBlocks: dataBlocks)
    }

    var devices: [UInt64] { model.keys.sorted() }

    func createThin(_ dev: UInt64) throws {
        try md.createThin(dev)
        model[dev] = [:]
    }

    func snapshot(_ dev: UInt64, of origin: UInt64) throws {
        try md.createSnapshot(dev, of: origin)
        model[dev] = model[origin]
    }

    func delete(_ dev: UInt64) throws {
        try md.delete(dev)
        model[dev] = nil
    }

    /// Writes `count` blocks from `v`: each gets a newly allocated data block (what a
    /// write to a shared or unprovisioned block does).
    func write(_ dev: UInt64, at v: UInt64, count: UInt64) throws {
        for i in 0..<count {
            guard let d = try md.allocateDataBlock() else { throw ModelError("out of data blocks") }
            try md.insertMapping(dev, v + i, BlockTime(dataBlock: d, time: md.time))
            model[dev]![v + i] = d
        }
    }

    /// Discards `count` blocks from `v` (unmaps them).
    func discard(_ dev: UInt64, at v: UInt64, count: UInt64) throws {
        for i in 0..<count {
            try md.removeMapping(dev, v + i)
            model[dev]![v + i] = nil
        }
    }

    func commit() throws { try md.commit() }

    /// The committed metadata, read through a fresh counting reader.
    func committedView() throws -> (MetadataView, CountingReader) {
        let counter = CountingReader(device)
        return (try MetadataReader(source: counter).live, counter)
    }

    /// The committed metadata, read directly (for walks that must not be counted).
    func plainView() throws -> MetadataView { try MetadataReader(source: device).live }

    /// Every metadata block of `dev`'s bottom tree (through `view`), found by a plain walk.
    static func nodes(of dev: UInt64, in view: MetadataView) throws -> Set<UInt64> {
        var out = Set<UInt64>()
        try view.mappingTree(of: dev).walkNodes { n, _ in
            out.insert(n.location)
            return .children
        }
        return out
    }
}

struct ModelError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

extension MappingDiff {
    func allRuns() throws -> [DeltaRun] {
        var out: [DeltaRun] = []
        try all { out.append($0) }
        return out
    }

    func changeRuns() throws -> [DeltaRun] {
        var out: [DeltaRun] = []
        try changes { out.append($0) }
        return out
    }
}
