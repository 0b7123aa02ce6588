import Delta
import Foundation
import PoolCore
@testable import ThinBackupKit
import TestSupport

/// A source pool on disk with an origin (device 1) and a chain of snapshots of it taken
/// between rounds of random writes (random, text, all-zero blocks) and discards.
struct SourceChain {
    let dir: TempDir
    let path: String
    /// Snapshot ids in the order they were taken.
    var snapshots: [UInt64] = []
    static let blockSize: UInt64 = 64 * 1024
    static let blocks: UInt64 = 160

    init(seed: UInt64, rounds: Int = 6, label: String = "src") throws {
        dir = TempDir(label)
        path = dir.file("pool")
        let pool = try ThinPool.create(folder: path, dataSize: 64 << 20, blockSize: Self.blockSize, metadataSize: 4 << 20)
        var rng = SeededRNG(seed: seed)
        try pool.createThin(1, virtualSize: Self.blocks * Self.blockSize)
        try Self.mutate(pool, &rng, changes: 120)
        for i in 0..<rounds {
            let snap = UInt64(10 + i)
            try pool.snapshot(origin: 1, as: snap)
            snapshots.append(snap)
            try Self.mutate(pool, &rng, changes: 25)
            try pool.commit()
        }
        try pool.commit()
        pool.close()
    }

    static func mutate(_ pool: ThinPool, _ rng: inout SeededRNG, changes: Int) throws {
        let bs = Int(blockSize)
        var left = changes
        while left > 0 {
            let start = UInt64.random(in: 0..<blocks, using: &rng)
            let len = min(UInt64.random(in: 1...8, using: &rng), blocks - start)
            let op = Int.random(in: 0..<10, using: &rng)
            if op < 2 {
                try pool.discard(1, blocks: start..<start + len)
            } else {
                var buf = [UInt8](repeating: 0, count: Int(len) * bs)
                if op >= 4 {
                    let text = op >= 7
                    buf.withUnsafeMutableBytes { b in
                        for i in stride(from: 0, to: b.count, by: 8) {
                            let v: UInt64 = text ? 0x2065_6E69_6C20_6120 &+ UInt64(i / 4096) : rng.next()
                            b.storeBytes(of: v, toByteOffset: i, as: UInt64.self)
                        }
                    }
                }
                try pool.write(1, offset: start * blockSize, buf)
            }
            left -= Int(len)
        }
    }

    func image(_ dev: UInt64) throws -> [UInt8] { try Self.image(path, dev) }

    static func image(_ pool: String, _ dev: UInt64) throws -> [UInt8] {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        return try p.read(dev, offset: 0, count: Int(try p.virtualSize(of: dev)))
    }
}

func emptyPool(_ dir: TempDir, _ name: String = "dst", blockSize: UInt64 = SourceChain.blockSize) throws -> String {
    let p = dir.file(name)
    try ThinPool.create(folder: p, dataSize: 64 << 20, blockSize: blockSize, metadataSize: 4 << 20).close()
    return p
}

func thinCheck(_ pool: String) throws -> Tool.Result {
    try Tool.run("thin_check", ["--quiet", "\(pool)/metadata"])
}

func send(_ src: String, _ snap: UInt64, from base: UInt64? = nil, to dest: String, baseDigest: String? = nil) throws -> SendReport {
    var r = SendRequest(pool: UserspacePool(folder: src), target: snap, destination: dest)
    r.base = base
    r.baseDigest = baseDigest.flatMap { Digest128(hex: $0) }
    r.workers = 2
    return try runSend(r)
}

func receive(_ pool: String, _ file: String, resume: Bool = false, checkpoint: UInt64? = nil) throws -> ReceiveReport {
    var r = ReceiveRequest(pool: UserspacePool(folder: pool))
    r.source = file
    r.resume = resume
    r.checkpointBytes = checkpoint
    return try runReceive(r)
}

func fileBytes(_ p: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: p))) }
