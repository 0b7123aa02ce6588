import Delta
import Foundation
import PoolCore

/// One userspace pool shared by the receives `serve` runs at once (one per device).
///
/// The pool is open while any receive runs (and closed between, so other commands can use it).
/// `lock` guards the pool object and `setAside`: a receive takes it only for metadata work —
/// setting data blocks aside, looking mappings up, and its own transaction (apply what it staged,
/// record its receipt, commit) — never while it waits for its sender or writes data. Outside the
/// lock the pool's transaction holds no change, so each commit carries one receive's changes only.
final class SharedReceivingPool: @unchecked Sendable {
    let access: any PoolAccess
    private let lock = NSLock()
    private var pool: ThinPool?
    private var users = 0
    /// Data blocks set aside by running receives (free in the space maps; see ThinPool+Staging).
    private var setAside = Set<UInt64>()
    /// Data block size, and the data file (thread-safe positioned I/O), while open.
    private(set) var blockSize = 0
    private(set) var dataFile: RandomAccessFile?

    init(access: any PoolAccess) { self.access = access }

    /// A receive starts: opens the pool if no other receive has it open.
    func begin() throws {
        lock.lock()
        defer { lock.unlock() }
        if pool == nil {
            let t = try openReceiving(access)
            guard let p = t as? ThinPool else {
                t.close()
                throw JobError(.usage, "\(access.name): receives run at once only into a userspace pool")
            }
            pool = p
            blockSize = Int(p.dataBlockSize)
            dataFile = p.dataFile
        }
        users += 1
    }

    /// Runs `body` holding the lock for all of it (receives into pools of other kinds, one at a time).
    func exclusively<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// A receive ended: the last one closes the pool.
    func end() {
        lock.lock()
        defer { lock.unlock() }
        users -= 1
        if users == 0, let p = pool {
            p.close()
            pool = nil
            dataFile = nil
        }
    }

    // The lock, held across calls by a receive in its transaction (`PoolReceiveSession`).
    func acquire() -> ThinPool {
        lock.lock()
        return pool!
    }

    func relinquish() { lock.unlock() }

    /// Runs `body` with the open pool, or a target opened read-only when none is open — without
    /// waiting: nil when a receive holds the lock (the caller answers from what it knew before).
    func tryLocked<T>(_ body: (any ReceivingPool) throws -> T) throws -> T? {
        guard lock.try() else { return nil }
        defer { lock.unlock() }
        return try withOpen(body)
    }

    /// Runs `body` with the open pool, or a target opened read-only when none is open, waiting for the lock.
    func withTarget<T>(_ body: (any ReceivingPool) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        return try withOpen(body)
    }

    private func withOpen<T>(_ body: (any ReceivingPool) throws -> T) throws -> T {
        if let pool { return try body(pool) }
        let t = try openReceiving(access, readOnly: true)
        defer { t.close() }
        return try body(t)
    }

    /// Sets aside up to `count` free data blocks (the caller holds the lock: `pool` from `acquire`).
    func setAsideBlocks(_ pool: ThinPool, upTo count: Int) throws -> [UInt64] {
        let blocks = try pool.freeDataBlocks(upTo: count, excluding: setAside)
        setAside.formUnion(blocks)
        return blocks
    }

    /// Blocks no longer set aside: mapped into the pool's transaction, or given up (punched first,
    /// while still set aside, so no other receive has them yet). The caller holds the lock.
    func release(_ pool: ThinPool, _ blocks: [UInt64], punch: Bool) {
        if punch { pool.punchUnreferenced(blocks) }
        setAside.subtract(blocks)
    }
}
