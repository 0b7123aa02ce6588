import Foundation
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Who reserved a pool's metadata snapshot, kept in the pool's sidecar (annotation
/// `metadata-snap.owner`) from just before the reservation until the release.
///
/// A snapshot whose owner is a process of this host that no longer runs (same boot, and no
/// process with that pid and start time; or a boot since) was left by a killed run of ours and
/// is reclaimed by the next one. A snapshot with no owner, or an owner still running or on
/// another host, is someone else's and is never released here.
public struct SnapshotOwner: Codable, Equatable, Sendable {
    public var command: String
    public var host: String
    public var pid: Int32
    /// The process's start time in clock ticks since boot (/proc/PID/stat field 22): tells a reused pid apart.
    public var processStart: UInt64?
    /// /proc/sys/kernel/random/boot_id of the boot the owner ran in.
    public var boot: String?
    public var since: String
    /// The held snapshot's block once reserved (nil: recorded just before reserving).
    public var block: UInt64?

    static let annotation = "metadata-snap.owner"

    public static func current(_ command: String) -> SnapshotOwner {
        let pid = getpid()
        return SnapshotOwner(command: command, host: ProcessInfo.processInfo.hostName, pid: pid,
                             processStart: processStartTicks(pid), boot: bootID(), since: WorkflowClock.format(Date()))
    }

    public var description: String { "`\(command)` (pid \(pid) on \(host), since \(since))" }

    /// The owner process no longer runs (this host only; another host's owner is never judged gone).
    public var isGone: Bool {
        guard host == ProcessInfo.processInfo.hostName else { return false }
        if let boot, let now = bootID(), boot != now { return true }
        if kill(pid, 0) != 0 && errno == ESRCH { return true }
        if let start = processStart, let now = processStartTicks(pid), now != start { return true }
        return false
    }

    /// The owner recorded in `pool`, if any.
    public static func recorded(in pool: ThinPool) -> SnapshotOwner? {
        pool.annotation(annotation).flatMap { try? JSONDecoder().decode(SnapshotOwner.self, from: Data($0.utf8)) }
    }

    func record(in pool: ThinPool) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try pool.setAnnotation(Self.annotation, String(decoding: try enc.encode(self), as: UTF8.self))
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks since boot), nil when unreadable.
func processStartTicks(_ pid: Int32) -> UInt64? {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = s.lastIndex(of: ")") else { return nil }
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = s[s.index(after: close)...].split(separator: " ")
    return rest.count > 19 ? UInt64(rest[19]) : nil
}

func bootID() -> String? {
    (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
        .trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A metadata snapshot this process reserved, released by `release()` or on SIGINT/SIGTERM.
public final class SnapshotReservation: @unchecked Sendable {
    let pool: ThinPool
    private var cleanup: Interrupts.Cleanup?
    private let lock = NSLock()

    /// Reserves the metadata snapshot of the open `pool` for `command`. A snapshot left by a killed
    /// run of ours is released first (`note` gets a line saying so); any other held snapshot is refused.
    public init(pool: ThinPool, metadataPath: String, command: String, note: (String) -> Void) throws {
        self.pool = pool
        // Registered first, so a signal at any point below releases what is held by then; the
        // lock keeps the cleanup (on the signal watcher's thread) from running mid-step.
        let lock = self.lock
        lock.lock()
        defer { lock.unlock() }
        cleanup = Interrupts.shared.register("release the metadata snapshot of \(metadataPath)") { [pool] in
            lock.lock()
            defer { lock.unlock() }
            Self.releaseOwned(pool)
        }
        do {
            try reserve(metadataPath: metadataPath, command: command, note: note)
        } catch {
            cleanup?.dismiss()
            throw error
        }
    }

    private func reserve(metadataPath: String, command: String, note: (String) -> Void) throws {
        if let held = pool.heldMetadataSnapshot {
            guard let owner = SnapshotOwner.recorded(in: pool), owner.block == nil || owner.block == held else {
                throw JobError("a metadata snapshot is already held in \(metadataPath) (not reserved by thin-backup): "
                                     + "pass -m to read through it, or release it with `pool release-metadata-snap`")
            }
            guard owner.isGone else {
                throw JobError(.busy, "a metadata snapshot is already held in \(metadataPath) by \(owner.description), which is still running")
            }
            try pool.releaseMetadataSnapshot()
            try pool.setAnnotation(SnapshotOwner.annotation, nil)
            try pool.commit()
            note("reclaimed the metadata snapshot at block \(held) left by \(owner.description), which is no longer running")
        }
        var owner = SnapshotOwner.current(command)
        // Recorded before the reservation, so no held snapshot of ours is ever without an owner.
        try owner.record(in: pool)
        try pool.commit()
        try pool.reserveMetadataSnapshot()
        owner.block = pool.heldMetadataSnapshot
        try owner.record(in: pool)
        try pool.commit()
    }

    /// Releases the snapshot (once; later calls and a signal afterwards do nothing).
    public func release() { cleanup?.run() }

    private static func releaseOwned(_ pool: ThinPool) {
        let mine = SnapshotOwner.recorded(in: pool).map { $0.pid == getpid() } ?? false
        if mine, pool.heldMetadataSnapshot != nil { try? pool.releaseMetadataSnapshot() }
        if mine { try? pool.setAnnotation(SnapshotOwner.annotation, nil) }
        try? pool.commit()
        pool.close()
    }
}
