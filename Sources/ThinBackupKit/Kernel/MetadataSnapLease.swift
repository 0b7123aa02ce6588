import Foundation
import PoolCore

/// The kernel's metadata snapshot of a live pool, as ThinBackup takes it: reserved with the
/// `reserve_metadata_snap` message, recorded on disk first (so a run killed before it could
/// release is recognised by the next one), released with `release_metadata_snap` on every
/// way out. A snapshot held by someone else is used only when asked (`-m`) and never released.
public enum MetadataSnapLease {
    /// What a reservation record says (`STATE/metadata-snaps/POOL.json`).
    struct Record: Codable {
        var pool: String
        var pid: Int32
        var started: String
        var heldRoot: UInt64?
    }

    /// Where records live: STATE/metadata-snaps (see `KernelPoolState.base`).
    static var directory: String { "\(KernelPoolState.base)/metadata-snaps" }

    static func recordPath(_ pool: KernelThinPool) -> String {
        "\(directory)/\(pool.dmName.replacingOccurrences(of: "/", with: "_")).json"
    }

    static func load(_ pool: KernelThinPool) -> Record? {
        guard let d = FileManager.default.contents(atPath: recordPath(pool)) else { return nil }
        return try? JSONDecoder().decode(Record.self, from: d)
    }

    static func store(_ r: Record, _ pool: KernelThinPool) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let data = try JSONEncoder().encode(r)
        // No fault step: the lease's syncs were never numbered ones.
        do { try replaceFile(recordPath(pool), with: data, syncStep: false) } catch {
            throw JobError("cannot write \(recordPath(pool)): \(error)")
        }
    }

    static func forget(_ pool: KernelThinPool) { unlink(recordPath(pool)) }

    /// True while process `pid` runs thin-backup.
    static func running(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        let comm = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        return comm.hasPrefix("thin-backup")
    }

    /// Before a reservation: a metadata snapshot held now is released when a killed
    /// thin-backup run left it (its record names a process that is gone), with a warning;
    /// refused (exit 75) while that run still works; refused when another tool holds it.
    public static func reclaim(_ pool: KernelThinPool, warn: (String) -> Void) throws {
        guard let held = try pool.status().heldRoot else {
            forget(pool)    // a record without a held snapshot: the release happened, the unlink did not
            return
        }
        guard let rec = load(pool) else {
            throw JobError("\(pool.dmName): a metadata snapshot (root \(held)) is held by another tool; "
                + "pass -m to read through it (thin-backup never releases a snapshot it did not take)")
        }
        if running(rec.pid) && rec.pid != getpid() {
            throw JobError(.busy, "\(pool.dmName): thin-backup (pid \(rec.pid)) holds the metadata snapshot; wait for it to finish")
        }
        try DeviceMapper.message(pool.dmName, "release_metadata_snap")
        forget(pool)
        warn("\(pool.dmName): released the metadata snapshot (root \(held)) left by an interrupted thin-backup run "
            + "(pid \(rec.pid), started \(rec.started))")
    }

    /// Reserves the pool's metadata snapshot; the returned closure releases it (once).
    public static func reserve(_ pool: KernelThinPool) throws -> () throws -> Void {
        let st = try pool.status()
        if let held = st.heldRoot {
            throw JobError("\(pool.dmName): a metadata snapshot (root \(held)) is already held; pass -m to read through it")
        }
        if let why = st.refusal { throw JobError("\(pool.dmName): \(why)") }
        // The record first: a run killed right after the message still leaves it.
        var rec = Record(pool: pool.dmName, pid: getpid(), started: ISO8601DateFormatter().string(from: Date()), heldRoot: nil)
        try store(rec, pool)
        do {
            try DeviceMapper.message(pool.dmName, "reserve_metadata_snap")
        } catch {
            forget(pool)
            throw JobError("\(pool.dmName): reserve_metadata_snap refused: \(error)")
        }
        rec.heldRoot = try? pool.status().heldRoot
        try? store(rec, pool)
        var released = false
        return {
            guard !released else { return }
            released = true
            try DeviceMapper.message(pool.dmName, "release_metadata_snap")
            forget(pool)
        }
    }
}
