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
    /// Encrypt: the repository's first backup adopts this key; later ones must use the same.
    public var keyring: StreamKeyring?
    /// Runs after the snapshot, with the pool and repository locks held (tests: a concurrent run).
    public var whileLocked: (() -> Void)?
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

/// The next free device id: above every device in the pool and every snapshot the catalog names.
func freshDeviceID(_ devices: [UInt64], used: [UInt64]) -> UInt64 {
    ((devices + used).max() ?? 0) + 1
}

/// One backup: snapshot, send (full the first time into this repository, else incremental from
/// the snapshot this pool keeps for this repository), record in the catalog, store the catalog,
/// record the new base in the pool's state for this repository, then delete the previous one.
/// An incremental is written only when the repository holds its base: the base backup is the
/// newest in the repository's catalog, its chain's streams are all in the repository, and the
/// snapshot on the pool is the one that backup was made from. Otherwise the backup is a full one
/// and `note` says why.
public func runBackup(_ req: BackupRequest) throws -> BackupReport {
    let started = ProgressMeter.now()
    let pool = req.pool
    let dir = try pool.stateDirectory()
    let poolLock = try PoolLock(pool: dir, command: "backup --dev \(req.dev)")
    defer { poolLock.release() }
    let repo = try BackupRepository(req.repo, options: req.options, lockFor: "backup --pool \(dir) --dev \(req.dev)",
                                    mustExist: false,
                                    keyring: req.keyring, adoptKey: true)
    defer { repo.close() }
    let repoID = try repo.identity(create: true)!
    var state = try LocalBackupState.load(pool: dir, repository: repoID, name: repo.store.displayName)
    let previous = state.devices[String(req.dev)]

    // 1. Snapshot the device (after deleting what a run killed outright left: see UnfinishedBackup).
    UnfinishedBackup.recover(pool, pool: dir) { ThinBackupMain.writeStderr("thin-backup: warning: \($0)\n") }
    let devices = try pool.devices()
    guard devices.contains(req.dev) else { throw JobError("pool \(dir) has no thin device \(req.dev)") }
    let poolID = try pool.identity(create: true).description
    let records = try repo.catalog.all().filter { $0.poolID == poolID }
    let (base, note) = try chooseBase(previous, last: records.last { $0.dev == req.dev }, pool: pool, repo: repo)
    let ts = WorkflowClock.format(req.now).replacingOccurrences(of: ":", with: "")
    (pool as? LVMPoolAccess)?.snapshotTime = req.now  // the LVM snapshot's name says the time the catalog records
    let fresh = freshDeviceID(devices, used: records.map(\.snapDev) + LocalBackupState.allSnapshots(pool: dir).map(\.device))
    // The snapshot and its undo go together: on a live pool, a signal waits for both (an lvcreate
    // left running, or an origin left suspended, would outlive this process); the undo runs on an
    // error and on SIGINT/SIGTERM (after the send released its metadata snapshot and the pool).
    let makeSnapshot = { () throws -> (UInt64, String, Interrupts.Cleanup) in
        var unfinished = UnfinishedBackup(origin: req.dev)
        try unfinished.save(pool: dir)
        let snap: UInt64
        do {
            snap = try pool.createSnapshot(of: req.dev, preferring: fresh)
        } catch {
            UnfinishedBackup.clear(pool: dir, origin: req.dev)
            throw error
        }
        unfinished.snapshot = try? pool.snapshotIdentity(snap)
        try? unfinished.save(pool: dir)
        // Encrypted: object names carry only the time (pool, device and kind are in the sealed catalog).
        let object = repo.key != nil ? "streams/\(ts)-\(randomDigest()).tbs"
            : "streams/\(poolID.prefix(12))/dev\(req.dev)/\(ts)-snap\(snap)-\(base == nil ? "full" : "incr").tbs"
        let undo = Interrupts.shared.register("delete backup snapshot \(snap) and its partial stream") { [repo] in
            if (try? pool.deleteDevice(snap)) != nil { UnfinishedBackup.clear(pool: dir, origin: req.dev) }
            try? repo.store.delete(object)
            (repo.store as? FolderStore)?.discardPartial(object)
        }
        return (snap, object, undo)
    }
    let (snap, object, undo) = pool.isLive ? try Interrupts.shared.uninterruptible("taking the backup snapshot", makeSnapshot)
        : try makeSnapshot()

    req.whileLocked?()

    // 2. Send it into the repository.
    var send = SendRequest(pool: pool, target: snap, destination: object)
    send.base = base?.snapDev
    send.baseDigest = base.flatMap { Digest128(hex: $0.digest) }
    send.level = req.level
    send.workers = req.workers
    send.quiet = req.quiet
    send.command = "backup"
    send.key = repo.key
    let sent: SendReport, digest: String, vsize: UInt64, bs: UInt64, snapIdentity: SnapshotIdentity
    do {
        sent = try runSend(send, sink: try repo.store.sink(object))
        guard let d = sent.targetDigest else { throw JobError("send of snapshot \(snap) reported no content digest") }
        digest = d
        vsize = try pool.virtualSize(of: snap)
        bs = UInt64(try pool.readMetadata().superblock.dataBlockSize) * 512
        guard let identity = try pool.snapshotIdentity(snap) else { throw JobError("snapshot \(snap) is gone from \(pool.name)") }
        snapIdentity = identity
    } catch {
        undo.run()
        throw error
    }

    // 3. Record it (the catalog travels with the backup), make the new snapshot this repository's
    // base and drop the previous one (no other repository's state names it): one step a signal
    // does not cut, so a stopped run leaves either no record or a recorded backup with its
    // snapshot kept, never a record whose stream or snapshot its undo deleted.
    return try Interrupts.shared.uninterruptible("recording the backup") { () throws -> BackupReport in
        var record = BackupRecord(id: nil, poolID: poolID, dev: req.dev, snapDev: snap, baseID: base?.id, createdAt: req.now.timeIntervalSince1970,
                                  object: object, streamBytes: sent.streamBytes, rawBytes: sent.rawBytes, dataBlocks: sent.dataBlocks,
                                  blockSize: UInt32(bs), virtualSize: vsize, digest: digest, rebased: false)
        do {
            try repo.catalog.insert(&record)
            try repo.saveCatalog()
        } catch {
            undo.run()
            throw error
        }
        undo.dismiss()

        state.repository = repo.store.displayName
        state.devices[String(req.dev)] = .init(backup: record.id!, snapshot: snapIdentity, digest: record.digest)
        try state.save(pool: dir, repository: repoID)
        UnfinishedBackup.clear(pool: dir, origin: req.dev)
        var deleted: UInt64?
        if let old = previous?.snapshot, !LocalBackupState.allSnapshots(pool: dir).contains(old),
           try pool.snapshotIdentity(old.device) == old {
            try pool.deleteDevice(old.device)
            deleted = old.device
        }
        return BackupReport(id: record.id!, dev: req.dev, snapshot: snap, kind: base == nil ? "full" : "incremental", base: base?.id,
                            createdAt: WorkflowClock.format(req.now), object: object, rawBytes: sent.rawBytes,
                            streamBytes: sent.streamBytes, dataBlocks: sent.dataBlocks, digest: record.digest,
                            deletedSnapshot: deleted, note: note, seconds: ProgressMeter.now() - started)
    }
}

/// The base for the next incremental into `repo`, or nil (a full backup) with the reason.
func chooseBase(_ kept: LocalBackupState.Base?, last: BackupRecord?, pool: any PoolAccess,
                repo: BackupRepository) throws -> (BackupRecord?, String?) {
    let name = repo.store.displayName
    guard let kept else {
        return (nil, last.map { "this pool keeps no base for \(name) (its newest backup \($0.id!) was made from another state): full backup" })
    }
    guard let last else {
        return (nil, "\(name) holds no backup of this device (new, wiped or another repository): full backup")
    }
    guard last.id == kept.backup, last.snapDev == kept.snapshot.device, last.digest == kept.digest else {
        return (nil, "the newest backup in \(name) is \(last.id!), not backup \(kept.backup) that this pool's base was sent as: full backup")
    }
    guard try pool.snapshotIdentity(kept.snapshot.device) == kept.snapshot else {
        return (nil, "the last backed-up snapshot (device \(kept.snapshot.device)) is gone from the pool: full backup")
    }
    for b in try repo.catalog.chain(of: last) where try !repo.store.exists(b.object) {
        return (nil, "\(name) lacks \(b.object) (backup \(b.id!), which backup \(last.id!) needs): full backup")
    }
    return (last, nil)
}
