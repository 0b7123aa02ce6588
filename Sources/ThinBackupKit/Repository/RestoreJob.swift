import Delta
import Foundation
import PoolCore

/// What `restore` is asked to do.
public struct RestoreRequest {
    public var repo: String
    public var dev: UInt64
    /// The newest backup taken at or before this time (nil: the newest).
    public var at: Date?
    /// Exactly this backup.
    public var id: Int64?
    /// A pool folder (receive the chain), a file (merge the chain onto a new sparse file) or a block
    /// device (discarded, then the chain merged onto it).
    public var to: String
    /// Instead of `to`: a live kernel pool (`--to-dm-pool NAME`) the chain is received into.
    public var toDMPool: String?
    /// Instead of `to`: a new LVM thin volume `VG/LV` (`--to-lv`) made in the pool `thinPool`.
    public var toLV: String?
    public var thinPool: String?
    /// Device id in the target pool (default: `dev`).
    public var asDevice: UInt64?
    public var poolID: String?
    /// The external origin of a device over one (its streams have `readsOrigin`).
    public var origin: String?
    public var quiet = true
    public var options = TransportOptions()
    /// The key of an encrypted repository.
    public var keyring: StreamKeyring?
}

/// What `restore` did (`--json`).
public struct RestoreReport: Codable {
    public var backup: Int64
    public var createdAt: String
    public var chain: [Int64]
    public var target: String
    public var device: UInt64?
    public var digest: String
    public var streamBytes: UInt64
    public var seconds: Double
}

/// Picks the backup of `dev` a restore or a check names.
func selectBackup(_ all: [BackupRecord], dev: UInt64, at: Date?, id: Int64?, poolID: String?, repo: String) throws -> BackupRecord {
    if let id {
        guard let r = all.first(where: { $0.id == id }) else { throw JobError("\(repo): no backup \(id)") }
        guard r.dev == dev else { throw JobError("\(repo): backup \(id) is of device \(r.dev), not \(dev)") }
        return r
    }
    var mine = all.filter { $0.dev == dev }
    if let poolID { mine = mine.filter { $0.poolID == poolID } }
    guard !mine.isEmpty else { throw JobError("\(repo): no backup of device \(dev)") }
    let pools = Set(mine.map(\.poolID))
    guard pools.count == 1 else {
        throw JobError("\(repo): device \(dev) was backed up from \(pools.count) pools; name one with --pool-id (\(pools.sorted().joined(separator: ", ")))")
    }
    if let at {
        guard let r = mine.last(where: { $0.createdAt <= at.timeIntervalSince1970 }) else {
            throw JobError("\(repo): no backup of device \(dev) at or before \(WorkflowClock.format(at)) (the first is from \(WorkflowClock.format(mine[0].date)))")
        }
        return r
    }
    return mine.last!
}

private func originNeeded(_ target: BackupRecord) -> JobError {
    JobError("backup \(target.id!) is of a device over an external origin: name that origin with --origin FILE")
}

/// The error for a stream of `target`'s chain that cannot be read or is not what the catalog says.
private func damaged(_ b: BackupRecord, target: BackupRecord, _ error: any Error) -> JobError {
    let why = b.id == target.id ? "" : ", which backup \(target.id!) needs"
    return JobError("backup \(b.id!) (\(b.object)) is damaged\(why): \(error)")
}

/// What the catalog says stream `b` holds, checked while a file restore merges it: the snapshot
/// (and no external origin: this merge has none) before the first write, the digest at its end.
private func expectation(_ b: BackupRecord, target: BackupRecord) -> MergeExpectation {
    MergeExpectation(header: { h in
        if h.readsOrigin { throw originNeeded(target) }
        guard h.target.device == b.snapDev else {
            throw damaged(b, target: target, JobError("its stream holds snapshot \(h.target.device), the catalog says \(b.snapDev)"))
        }
    }, trailer: { t in
        guard let t, t.targetDigest?.description == b.digest else {
            throw damaged(b, target: target, JobError("its stream ends with digest \(t?.targetDigest?.description ?? "-"), the catalog says \(b.digest)"))
        }
    })
}

/// Checks every stream of a chain before anything is written, so a damaged one stops the restore cleanly.
/// `decompress: false` checks every byte but not the frames' content: for a restore that checks
/// the content it writes against the catalog's digests itself (see `verifyStream`).
@discardableResult
func checkChain(_ chain: [BackupRecord], _ store: any ObjectStore, target: BackupRecord, quiet: Bool,
                keyring: StreamKeyring? = nil, decompress: Bool = true) throws -> [StreamVerifyReport] {
    var reports: [StreamVerifyReport] = []
    for b in chain {
        do {
            let r = try verifyStream(source: try store.source(b.object), quiet: quiet, keyring: keyring, decompress: decompress)
            reports.append(r)
            guard r.device == b.snapDev, r.targetDigest == b.digest else {
                throw JobError("its stream holds snapshot \(r.device) digest \(r.targetDigest ?? "-"), the catalog says \(b.snapDev) digest \(b.digest)")
            }
        } catch {
            throw damaged(b, target: target, error)
        }
    }
    return reports
}

/// Restores a backup: replays its chain into a pool folder, or merges it onto a new file.
public func runRestore(_ req: RestoreRequest) throws -> RestoreReport {
    let started = ProgressMeter.now()
    // The lock keeps a prune from deleting a stream of the chain while it is read.
    let repo = try BackupRepository(req.repo, options: req.options, lockFor: "restore --dev \(req.dev) --to \(req.to)",
                                    keyring: req.keyring)
    defer { repo.close() }
    let all = try repo.catalog.all()
    let target = try selectBackup(all, dev: req.dev, at: req.at, id: req.id, poolID: req.poolID, repo: req.repo)
    let chain = try repo.catalog.chain(of: target)
    // Every target checks the content it gets against the catalog's digest: a pool's receive checks
    // each member's, a file or block device is read back once at the end (`checkRestoredDigest`). So
    // the check before the first write reads every byte but decompresses nothing: the frames are
    // decompressed once, by the restore itself. A device over an origin, or whose size is not whole
    // blocks (its last block's digest covers bytes a file does not hold), is checked whole up front.
    //
    // A file is the exception: it is written as FILE.partial, removed if anything fails, so a damaged
    // stream found while merging loses nothing and its streams are checked as they are merged
    // (`expectation`: the catalog's snapshot before the first write, its digest at each stream's
    // end), read once instead of twice. Its chain is merged newest first (`mergeNewestFirst`): an
    // older backup's blocks that a newer one names are neither decompressed nor written.
    let toPool = req.toDMPool != nil || req.toLV != nil || isPoolFolder(req.to)
    let readBack = !toPool && req.origin == nil && target.blockSize > 0 && target.virtualSize % UInt64(target.blockSize) == 0
    let checkWhileMerging = readBack && !isBlockDevice(req.to)
    if !checkWhileMerging {
        let reports = try checkChain(chain, repo.store, target: target, quiet: req.quiet, keyring: repo.keyring,
                                     decompress: !toPool && !readBack)
        if reports.contains(where: \.readsOrigin), req.origin == nil { throw originNeeded(target) }
    }
    var bytes: UInt64 = 0
    var device: UInt64?
    if let name = req.toDMPool {
        guard req.origin == nil else {
            throw JobError(.usage, "--to-dm-pool: a device over an external origin is restored to a file or a pool folder")
        }
        let access = try KernelPoolAccess(dmName: name)
        defer { access.close() }
        let dev = req.asDevice ?? req.dev
        try replayChain(chain, from: repo.store, into: access, finalDevice: dev, quiet: req.quiet, keyring: repo.keyring, onBytes: { bytes += $0 })
        device = dev
    } else if let lv = req.toLV {
        guard req.origin == nil else {
            throw JobError(.usage, "--to-lv: a device over an external origin is restored to a file or a pool folder")
        }
        guard let pool = req.thinPool else { throw JobError(.usage, "--to-lv VG/LV needs --thin-pool VG/POOL (the pool to make it in)") }
        let access = try LVMPoolAccess(lv: lv, inPool: pool)
        defer { access.close() }
        if access.volume != nil { throw JobError("\(lv) exists: restore --to-lv makes a new volume; name another or remove it") }
        access.keepVersions = 1  // each member of the chain replaces the one before
        try replayChain(chain, from: repo.store, into: access, finalDevice: nil, quiet: req.quiet, keyring: repo.keyring, onBytes: { bytes += $0 })
    } else if isPoolFolder(req.to) {
        let dev = req.asDevice ?? req.dev
        var overOrigin: ((ThinPool, UInt64, UInt64) throws -> Void)?
        if let o = req.origin { overOrigin = { try $0.createThin($1, virtualSize: $2, originFile: o) } }
        let access = UserspacePool(folder: req.to)
        defer { access.close() }
        try replayChain(chain, from: repo.store, into: access, finalDevice: dev, quiet: req.quiet, keyring: repo.keyring,
                        overOrigin: overOrigin) { bytes += $0 }
        device = dev
    } else if isBlockDevice(req.to) {
        try restoreOntoDevice(chain, repo: repo, req: req, virtualSize: target.virtualSize) { bytes += $0 }
        if readBack { try checkRestoredDigest(req.to, target, quiet: req.quiet) }
    } else {
        let tmp = req.to + ".partial"
        unlink(tmp)
        guard FileManager.default.createFile(atPath: tmp, contents: nil) else {
            throw JobError("cannot create \(tmp)")
        }
        do {
            if checkWhileMerging {
                bytes = try mergeNewestFirst(chain, into: tmp, repo: repo, target: target, quiet: req.quiet)
            } else {
                if let origin = req.origin { try copyPrefix(of: origin, to: tmp, length: target.virtualSize) }
                for b in chain {
                    // One fsync for the whole chain (below, before the rename), not one per stream.
                    let r = try runMerge(stream: b.object, into: tmp, quiet: req.quiet, source: try repo.store.source(b.object),
                                         origin: req.origin, keyring: repo.keyring, sync: false)
                    bytes += r.streamBytes
                }
            }
            let f = try RandomAccessFile(path: tmp, writable: true)
            if try f.size() < target.virtualSize { try f.truncate(to: target.virtualSize) }
            try f.sync()
            f.close()
            if readBack { try checkRestoredDigest(tmp, target, quiet: req.quiet) }
            guard rename(tmp, req.to) == 0 else { throw JobError("cannot rename \(tmp) to \(req.to): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(tmp)
            throw error
        }
    }
    return RestoreReport(backup: target.id!, createdAt: WorkflowClock.format(target.date), chain: chain.map { $0.id! },
                         target: req.to, device: device, digest: target.digest, streamBytes: bytes,
                         seconds: ProgressMeter.now() - started)
}

/// Merges `chain` into the new empty file `path`, newest backup first (`NewestFirstMerge`: the
/// blocks a newer backup names are not decompressed from older ones), each stream checked against
/// the catalog as it is read (`expectation`). Returns the stream bytes read (every byte of every stream).
private func mergeNewestFirst(_ chain: [BackupRecord], into path: String, repo: BackupRepository, target: BackupRecord,
                              quiet: Bool) throws -> UInt64 {
    let f = try RandomAccessFile(path: path, writable: true)
    defer { f.close() }
    let merge = try NewestFirstMerge(file: f, blockSize: target.blockSize, virtualSize: target.virtualSize)
    var bytes: UInt64 = 0
    for (i, b) in chain.enumerated().reversed() {
        do {
            // One fsync for the whole chain (by the caller, before the rename), not one per stream.
            let r = try merge.merge(try repo.store.source(b.object), keyring: repo.keyring, label: "restore \(i + 1)/\(chain.count)",
                                    quiet: quiet, expect: expectation(b, target: target))
            bytes += r.streamBytes
        } catch let e as StreamError {
            throw damaged(b, target: target, e)
        }
    }
    return bytes
}

/// Receives `chain` into the pool `access` names (a pool folder, a kernel pool): intermediate
/// backups under fresh device ids, the last one as `finalDevice` (nil: a fresh id too). An
/// intermediate device is deleted once its successor is in, unless `keep` says otherwise. Checks
/// each received digest against the catalog. On failure every device it received is deleted.
/// Returns every member with its local device id and receive summary.
@discardableResult
func replayChain(_ chain: [BackupRecord], from store: any ObjectStore, into access: any PoolAccess, finalDevice: UInt64?,
                 keep: (BackupRecord) -> Bool = { _ in false }, quiet: Bool, keyring: StreamKeyring? = nil,
                 overOrigin: ((ThinPool, UInt64, UInt64) throws -> Void)? = nil,
                 onBytes: (UInt64) -> Void = { _ in }) throws -> [(record: BackupRecord, device: UInt64, summary: Delta.ReceiveSummary)] {
    var received: [(record: BackupRecord, device: UInt64, summary: Delta.ReceiveSummary)] = []
    var live: [UInt64] = []
    do {
        for (i, b) in chain.enumerated() {
            let pool = try access.receiveTarget(readOnly: false)
            defer { pool.close() }
            let last = i == chain.count - 1
            // A target naming one volume (LVM) takes every member as its next version.
            let dev = try pool.defaultTarget ?? (last ? finalDevice : nil)
                ?? freshDeviceID(pool.devices(), used: received.map(\.device) + (finalDevice.map { [$0] } ?? []))
            var o = ReceiveOptions(targetID: dev)
            o.keyring = keyring
            if let overOrigin {
                guard let tp = pool as? ThinPool else { throw JobError(.usage, "\(access.name): a device over an external origin restores into a pool folder") }
                o.createOverOrigin = { try overOrigin(tp, $0, $1) }
            }
            o.progressLabel = "restore \(i + 1)/\(chain.count)"
            o.quiet = quiet
            let s = try receiveStream(into: pool, from: try store.source(b.object), o).summary
            live.append(dev)
            guard s.contentDigest.description == b.digest else {
                throw JobError("backup \(b.id!): restored content digest \(s.contentDigest), the catalog says \(b.digest)")
            }
            onBytes(s.streamBytes)
            if let prev = received.last, prev.device != dev, !keep(prev.record) {
                try pool.deleteReceived(prev.device)
                live.removeAll { $0 == prev.device }
            }
            received.append((b, dev, s))
        }
    } catch {
        if !live.isEmpty, let pool = try? access.receiveTarget(readOnly: false) {
            for d in live { try? pool.deleteReceived(d) }
            pool.close()
        }
        throw error
    }
    return received
}

func isBlockDevice(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFBLK
}

/// Restores onto an existing block device: the device's first `virtualSize` bytes are made to read
/// zeros without allocating (discards, `ZeroingTarget`), then the chain is merged onto it.
private func restoreOntoDevice(_ chain: [BackupRecord], repo: BackupRepository, req: RestoreRequest, virtualSize: UInt64,
                               onBytes: (UInt64) -> Void) throws {
    guard req.origin == nil else {
        throw JobError("\(req.to): restoring a device over an external origin onto a block device is not supported; restore to a file")
    }
    do {
        let dev = try RandomAccessFile(path: req.to, writable: true)
        defer { dev.close() }
        let size = try dev.size()
        guard size >= virtualSize else {
            throw JobError("\(req.to): the device holds \(size) bytes, the backup \(virtualSize): too small")
        }
        try ZeroingTarget(dev).zero(offset: 0, length: virtualSize)
        try dev.sync()
    }
    for b in chain {
        let r = try runMerge(stream: b.object, into: req.to, quiet: req.quiet, source: try repo.store.source(b.object),
                               keyring: repo.keyring)
        onBytes(r.streamBytes)
    }
}

/// Copies the first `length` bytes of `source` (zeros past its end) to the new file `path`.
func copyPrefix(of source: String, to path: String, length: UInt64) throws {
    let src = try RandomAccessFile(path: source, writable: false)
    defer { src.close() }
    let dst = try RandomAccessFile(path: path, writable: true, create: true)
    defer { dst.close() }
    let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buf.deallocate() }
    var off: UInt64 = 0
    while off < length {
        let k = Int(min(UInt64(buf.count), length - off))
        let chunk = UnsafeMutableRawBufferPointer(rebasing: buf[0..<k])
        let got = try src.read(into: chunk, at: off)
        if got == 0 { break }
        try dst.write(UnsafeRawBufferPointer(rebasing: chunk[0..<got]), at: off)
        off += UInt64(got)
    }
    try dst.truncate(to: length)
}
