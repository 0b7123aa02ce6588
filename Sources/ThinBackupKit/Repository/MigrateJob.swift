import Delta
import Foundation
import PoolCore

/// What `migrate` is asked to do.
public struct MigrateRequest {
    public var pool: any PoolAccess
    public var dev: UInt64
    /// tb://HOST:PORT (a `serve --pool` receiver) or a local pool folder.
    public var to: String
    /// Freeze once a round moved less than this many bytes of changed data.
    public var untilDelta: UInt64 = 64 << 20
    /// Freeze after this many live rounds even if the delta stays larger.
    public var maxRounds = 10
    /// Run (sh -c) before the final round: stop the service, suspend the device.
    public var freezeCommand: String?
    /// Run after the final round.
    public var thawCommand: String?
    /// A kernel source is frozen for the final round, after the freeze command (raw dm: its
    /// active devices suspended, I/O flushed; LVM: the volume made read-only): writes that still
    /// come wait (or fail) instead of being lost to the migration.
    public var suspendSource = true
    /// Thaw it after the final round (else it stays frozen: the source is retired).
    public var resumeSource = false
    public var level: Int32 = 3
    public var quiet = true
    public var options = TransportOptions()
    /// Encrypt the streams (a tb:// receiver then needs the key: serve --pool --encrypt-key).
    public var keyring: StreamKeyring?
    /// Called after each round (tests, progress).
    public var onRound: ((MigrateRound) -> Void)?
}

/// One round of a migration.
public struct MigrateRound: Codable, Sendable {
    public var round: Int
    public var snapshot: UInt64
    public var base: UInt64?
    public var frozen: Bool
    /// Changed data sent (before compression) and stream bytes.
    public var rawBytes: UInt64
    public var streamBytes: UInt64
    public var seconds: Double
}

/// What `migrate` did (`--json`).
public struct MigrateReport: Codable {
    public var rounds: [MigrateRound]
    /// The device holding the frozen state, on the source (kept) and on the destination.
    public var finalSnapshot: UInt64
    public var digest: String
    /// From the start of the freeze command to the end of the thaw command (or the final round).
    public var downtimeSeconds: Double
    public var totalStreamBytes: UInt64
    public var seconds: Double
    /// What was frozen for the final round (raw dm: its dm devices; LVM: the volume), how
    /// ("suspended", "read-only"), and whether it was thawed after (`--resume-source`).
    public var frozenSource: [String] = []
    public var frozenAs: String?
    public var sourceThawed = false
}

/// Migration with cutover: rounds of incremental sends while the device stays in use, until a
/// round's changed data is under `untilDelta` (or `maxRounds`); then the freeze command, a final
/// round, the thaw command. Each round snapshots the device under the pool lock (writers of a
/// userspace pool take the same lock), reads through a metadata snapshot without the lock, and
/// deletes the previous round's snapshot. On a destination pool folder, earlier rounds' devices
/// are deleted; a `serve` receiver keeps them (delete all but the final one there).
/// A kernel source (`--dm-pool`, `--lv`) is live: snapshots are `create_snap` (its active devices
/// suspended around the message, so each round is a consistent point), and for the final round
/// its active devices are suspended (`CutoverSource`) from after the freeze command to the end.
public func runMigrate(_ req: MigrateRequest) throws -> MigrateReport {
    let started = ProgressMeter.now()
    let endpoint = try Endpoint(parsing: req.to)
    var localPool: String?
    switch endpoint {
    case .receiver(_, _, _, let device):
        guard device == nil else {
            throw JobError(.usage, "\(req.to): give tb://HOST:PORT without a device; each round's device is its snapshot id")
        }
    case .file(let path) where FileManager.default.fileExists(atPath: "\(path)/metadata"):
        localPool = path
    default:
        throw JobError(.usage, "\(req.to): migrate sends to a `serve --pool` receiver (tb://HOST:PORT) or a local pool folder")
    }
    let pool = req.pool
    let dir = try pool.stateDirectory()
    let receiving = localPool.map { UserspacePool(folder: $0) }
    defer { receiving?.close() }
    var rounds: [MigrateRound] = []
    var prev: (snap: UInt64, digest: String)?
    var received: [UInt64] = []
    var staleSnapshot: UInt64?

    func round(frozen: Bool) throws {
        let t0 = ProgressMeter.now()
        // Snapshot and hold a metadata snapshot, under the pool lock.
        let snap: UInt64
        let hold: MetadataSnapshotHold
        do {
            let lock = try PoolLock(pool: dir, command: "migrate", wait: true)
            defer { lock.release() }
            let devices = try pool.devices()
            guard devices.contains(req.dev) else { throw JobError("\(pool.name) has no thin device \(req.dev)") }
            _ = try pool.identity(create: true)
            snap = try pool.createSnapshot(of: req.dev, preferring: freshDeviceID(devices, used: []))
            do {
                hold = try roundMetadataSnapshot(pool)
            } catch {
                try? pool.deleteDevice(snap)
                throw error
            }
        }
        func finishPool(delete devs: [UInt64]) throws {
            let lock = try PoolLock(pool: dir, command: "migrate", wait: true)
            defer { lock.release() }
            try hold.release()
            for d in devs { try pool.deleteDevice(d) }
        }
        var send = SendRequest(pool: pool, target: snap, destination: req.to)
        send.metadataMode = .held(block: nil)
        send.base = prev?.snap
        send.baseDigest = prev.flatMap { Digest128(hex: $0.digest) }
        send.level = req.level
        send.workers = 1
        send.quiet = req.quiet
        send.keyring = req.keyring
        let sent: SendReport
        do {
            if let localPool {
                let tmp = "\(localPool)/.migrate-\(snap).tbs"
                defer { unlink(tmp) }
                sent = try runSend(send, sink: try FileSink(path: tmp))
                var rr = ReceiveRequest(pool: receiving!)
                rr.source = tmp
                rr.targetID = snap
                rr.keyring = req.keyring
                _ = try runReceive(rr)
                if let p = received.last {
                    let dst = try ThinPool(folder: localPool)
                    try dst.delete(p)
                    try dst.commit()
                    dst.close()
                }
                received.append(snap)
            } else {
                var o = req.options
                o.targetDevice = snap
                sent = try runSend(send, sink: try Transport.sink(for: req.to, options: o))
            }
        } catch {
            try? finishPool(delete: [snap])
            throw error
        }
        // The frozen round leaves the previous snapshot's delete until after the downtime.
        try finishPool(delete: frozen ? [] : prev.map { [$0.snap] } ?? [])
        if frozen { staleSnapshot = prev?.snap }
        guard let digest = sent.targetDigest else { throw JobError("send of snapshot \(snap) reported no content digest") }
        let r = MigrateRound(round: rounds.count + 1, snapshot: snap, base: prev?.snap, frozen: frozen,
                             rawBytes: sent.rawBytes, streamBytes: sent.streamBytes, seconds: ProgressMeter.now() - t0)
        rounds.append(r)
        prev = (snap, digest)
        req.onRound?(r)
        if !req.quiet {
            ThinBackupMain.writeStderr("migrate: round \(r.round)\(frozen ? " (frozen)" : ""): \(formatBytes(r.rawBytes)) changed, "
                                       + "\(formatBytes(r.streamBytes)) sent in \(String(format: "%.2f", r.seconds)) s\n")
        }
    }

    try round(frozen: false)
    while rounds.last!.rawBytes >= req.untilDelta && rounds.count < req.maxRounds {
        try round(frozen: false)
    }
    let freezeStart = ProgressMeter.now()
    if let cmd = req.freezeCommand { try runShell(cmd, what: "freeze command") }
    var freeze: SourceFreeze?
    do {
        if req.suspendSource, let source = pool as? any CutoverSource { freeze = try source.freezeForCutover(dev: req.dev) }
        try round(frozen: true)
    } catch {
        try? freeze?.thaw()
        if let cmd = req.thawCommand { try? runShell(cmd, what: "thaw command") }
        throw error
    }
    if let cmd = req.thawCommand { try runShell(cmd, what: "thaw command") }
    if req.resumeSource { try freeze?.thaw() } else { freeze?.keep() }
    let downtime = ProgressMeter.now() - freezeStart
    if let stale = staleSnapshot {
        let lock = try PoolLock(pool: dir, command: "migrate", wait: true)
        defer { lock.release() }
        try pool.deleteDevice(stale)
    }
    return MigrateReport(rounds: rounds, finalSnapshot: prev!.snap, digest: prev!.digest, downtimeSeconds: downtime,
                         totalStreamBytes: rounds.reduce(0) { $0 + $1.streamBytes }, seconds: ProgressMeter.now() - started,
                         frozenSource: freeze?.names ?? [], frozenAs: freeze?.kind, sourceThawed: req.resumeSource && freeze != nil)
}

/// A metadata snapshot for one round, not holding the pool: the device's writers keep writing
/// during the round's send. A userspace pool's is reserved and the pool closed again (its
/// reservation would otherwise keep the pool open, locking the writers out); a kernel pool's is
/// the kernel's (`reserve_metadata_snap`).
private func roundMetadataSnapshot(_ pool: any PoolAccess) throws -> MetadataSnapshotHold {
    guard pool is UserspacePool else { return try pool.reserveMetadataSnapshot(command: "migrate") }
    let p = try pool.userspacePool(readOnly: false)
    defer { p.close() }
    try p.reserveMetadataSnapshot()
    return MetadataSnapshotHold {
        let p = try pool.userspacePool(readOnly: false)
        defer { p.close() }
        if p.heldMetadataSnapshot != nil { try p.releaseMetadataSnapshot() }
    }
}

/// Runs `sh -c command` (its output goes to stderr once it ends, keeping stdout for the summary);
/// a non-zero exit is a failure naming the command, and so is one still running after 600 s
/// (stopped). Through `ChildProcess`, not Foundation's `Process` (which lost a child's exit in the VM).
func runShell(_ command: String, what: String) throws {
    let r: ChildProcess.Result
    do {
        r = try ChildProcess.run("/bin/sh", ["-c", command], environment: ProcessInfo.processInfo.environment, timeout: 600)
    } catch let s as ChildProcess.Stalled {
        throw JobError("\(what) `\(command)` did not finish within \(Int(s.seconds)) s and was stopped")
    }
    let said = r.stdout + r.stderr
    if !said.isEmpty { ThinBackupMain.writeStderr(String(decoding: said, as: UTF8.self)) }
    guard r.status == 0 else {
        throw JobError("\(what) `\(command)` exited with status \(r.status)")
    }
}
