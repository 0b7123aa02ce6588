import Delta
import Foundation
import PoolCore

/// What `backup` is asked to do.
public struct BackupRequest {
    public var pool: any PoolAccess
    public var dev: UInt64
    public var repo: String
    /// The time recorded for this backup (injected by tests and --now).
    public var now = Date()
    public var level: Int32 = 3
    public var workers: Int32 = 1
    public var quiet = true
    public var options = TransportOptions()
    /// Runs after the snapshot, with the pool and repository locks held (tests: a concurrent run).
    public var whileLocked: (() -> Void)?

    public init(pool: any PoolAccess, dev: UInt64, repo: String) {
        self.pool = pool
        self.dev = dev
        self.repo = repo
    }
}

/// What `backup` did (`--json`).
public struct BackupReport: Codable {
    public var id: Int64
    public var dev: UInt64
    public var snapshot: UInt64
    public var kind: String
    public var base: Int64?
    public var createdAt: String
    public var object: String
    public var rawBytes: UInt64
    public var streamBytes: UInt64
    public var dataBlocks: UInt64
    public var digest: String
    /// The older snapshot deleted from the pool (the new one is the next incremental's base).
    public var deletedSnapshot: UInt64?
    public var note: String?
    public var seconds: Double
}

/// The catalog copy kept beside the pool.
func localCatalogPath(pool: String) -> String { "\(pool)/thin-backup-catalog.sqlite" }

/// The next free device id: above every device in the pool and every snapshot the catalog names.
func freshDeviceID(_ devices: [UInt64], used: [UInt64]) -> UInt64 {
    ((devices + used).max() ?? 0) + 1
}

/// One backup: snapshot, send (full the first time, else incremental from the last backed-up
/// snapshot still on the pool), record in the catalog, store the catalog in the repository,
/// then delete the previous snapshot (only the newest stays: the next incremental's base).
public func runBackup(_ req: BackupRequest) throws -> BackupReport {
    let started = ProgressMeter.now()
    let pool = req.pool
    let dir = try pool.stateDirectory()
    let poolLock = try PoolLock(pool: dir, command: "backup --dev \(req.dev)")
    defer { poolLock.release() }
    let repo = try BackupRepository(req.repo, options: req.options, lockFor: "backup --pool \(dir) --dev \(req.dev)",
                                    localCopy: localCatalogPath(pool: dir), mustExist: false)
    defer { repo.close() }

    // 1. Snapshot the device.
    var base: BackupRecord?
    var note: String?
    let devices = try pool.devices()
    guard devices.contains(req.dev) else { throw JobError("pool \(dir) has no thin device \(req.dev)") }
    let poolID = try pool.identity(create: true).description
    let records = try repo.catalog.all().filter { $0.poolID == poolID }
    if let last = records.filter({ $0.dev == req.dev }).last {
        if devices.contains(last.snapDev) {
            base = last
        } else {
            note = "the last backed-up snapshot (device \(last.snapDev)) is gone from the pool: full backup"
        }
    }
    let snap = freshDeviceID(devices, used: records.map(\.snapDev))
    try pool.createSnapshot(of: req.dev, as: snap)
    func dropSnapshot() { try? pool.deleteDevice(snap) }

    req.whileLocked?()

    // 2. Send it into the repository.
    let ts = WorkflowClock.format(req.now).replacingOccurrences(of: ":", with: "")
    let object = "streams/\(poolID.prefix(12))/dev\(req.dev)/\(ts)-snap\(snap)-\(base == nil ? "full" : "incr").tbs"
    var send = SendRequest(pool: pool, target: snap, destination: object)
    send.base = base?.snapDev
    send.baseDigest = base.flatMap { Digest128(hex: $0.digest) }
    send.level = req.level
    send.workers = req.workers
    send.quiet = req.quiet
    let sent: SendReport
    var record: BackupRecord
    do {
        sent = try runSend(send, sink: try repo.store.sink(object))
        guard let digest = sent.targetDigest else { throw JobError("send of snapshot \(snap) reported no content digest") }
        let vsize = try pool.virtualSize(of: snap)
        let bs = UInt64(try pool.readMetadata().superblock.dataBlockSize) * 512
        // 3. Record it; the catalog travels with the backup.
        record = BackupRecord(id: nil, poolID: poolID, dev: req.dev, snapDev: snap, baseID: base?.id, createdAt: req.now.timeIntervalSince1970,
                              object: object, streamBytes: sent.streamBytes, rawBytes: sent.rawBytes, dataBlocks: sent.dataBlocks,
                              blockSize: UInt32(bs), virtualSize: vsize, digest: digest, rebased: false)
        try repo.catalog.insert(&record)
        try repo.saveCatalog()
    } catch {
        dropSnapshot()
        try? repo.store.delete(object)
        throw error
    }

    // 4. Keep only the newest snapshot on the pool.
    var deleted: UInt64?
    if let b = base {
        try pool.deleteDevice(b.snapDev)
        deleted = b.snapDev
    }
    return BackupReport(id: record.id!, dev: req.dev, snapshot: snap, kind: base == nil ? "full" : "incremental", base: base?.id,
                        createdAt: WorkflowClock.format(req.now), object: object, rawBytes: sent.rawBytes,
                        streamBytes: sent.streamBytes, dataBlocks: sent.dataBlocks, digest: record.digest,
                        deletedSnapshot: deleted, note: note, seconds: ProgressMeter.now() - started)
}
