import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// A small pool with one thin device, changed by seeded writes and discards, and an independent
/// model of what the device must read (a byte array updated by the same operations).
final class WorkflowPool: @unchecked Sendable {
    let dir: TempDir
    let pool: String
    let dev: UInt64 = 1
    let blockSize = 65536
    let blocks: Int
    var size: Int { blocks * blockSize }
    private(set) var model: [UInt8]
    var rng: SeededRNG

    init(seed: UInt64, blocks: Int = 32, dir: TempDir = TempDir("tb-wf")) throws {
        self.dir = dir
        self.blocks = blocks
        pool = dir.file("pool")
        rng = SeededRNG(seed: seed)
        let p = try ThinPool.create(folder: pool, dataSize: UInt64(blocks * blockSize * 8), blockSize: UInt64(blockSize))
        try p.createThin(dev, virtualSize: UInt64(blocks * blockSize))
        try p.commit()
        p.close()
        model = [UInt8](repeating: 0, count: blocks * blockSize)
    }

    func below(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }

    /// One day of use: a few writes (random data, zeros, a partial block) and now and then a discard.
    func day(writes: Int = 4) throws {
        let p = try ThinPool(folder: pool)
        defer { p.close() }
        for _ in 0..<writes {
            let first = below(blocks)
            let count = min(1 + below(3), blocks - first)
            let offset = first * blockSize + (below(4) == 0 ? below(blockSize / 2) : 0)
            let length = min(count * blockSize - (offset - first * blockSize), size - offset)
            var bytes = [UInt8](repeating: 0, count: length)
            if below(5) != 0 {
                for i in stride(from: 0, to: length, by: 8) {
                    let v = rng.next()
                    for j in 0..<min(8, length - i) { bytes[i + j] = UInt8(truncatingIfNeeded: v >> (j * 8)) }
                }
            }
            try p.write(dev, offset: UInt64(offset), bytes)
            model.replaceSubrange(offset..<offset + length, with: bytes)
        }
        if below(3) == 0 {
            let first = below(blocks)
            let count = min(1 + below(4), blocks - first)
            try p.discard(dev, blocks: UInt64(first)..<UInt64(first + count))
            model.replaceSubrange(first * blockSize..<(first + count) * blockSize, with: [UInt8](repeating: 0, count: count * blockSize))
        }
        try p.commit()
    }

    /// What the pool's device reads now.
    func deviceBytes(_ d: UInt64? = nil, pool path: String? = nil) throws -> [UInt8] {
        let p = try ThinPool(folder: path ?? pool, readOnly: true)
        defer { p.close() }
        return try p.read(d ?? dev, offset: 0, count: size)
    }

    func devices() throws -> [UInt64] {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        return try p.devices().sorted()
    }
}

func wfFileBytes(_ path: String) -> [UInt8]? { FileManager.default.contents(atPath: path).map { [UInt8]($0) } }

/// thin_check on a pool folder's metadata (the independent oracle).
func thinCheckClean(_ pool: String) throws -> Bool {
    try Tool.run("thin_check", ["\(pool)/metadata"]).ok
}

/// 2026-03-01T02:00:00Z plus `day` days (2026-03-01 is a Sunday).
func nightly(_ day: Int) -> Date { Date(timeIntervalSince1970: 1_772_330_400 + Double(day) * 86400) }

func backup(_ w: WorkflowPool, repo: String, at date: Date, options: TransportOptions = TransportOptions()) throws -> BackupReport {
    var r = BackupRequest(pool: UserspacePool(folder: w.pool), dev: w.dev, repo: repo)
    r.now = date
    r.options = options
    return try runBackup(r)
}

func restoreToFile(_ repo: String, id: Int64? = nil, at: Date? = nil, to path: String, options: TransportOptions = TransportOptions()) throws -> RestoreReport {
    var r = RestoreRequest(repo: repo, dev: 1, to: path)
    r.id = id
    r.at = at
    r.options = options
    return try runRestore(r)
}
