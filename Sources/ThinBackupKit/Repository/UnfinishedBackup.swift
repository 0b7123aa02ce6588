import Delta
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A backup's snapshot until the backup is recorded, kept beside the pool's backup state
/// (`<pool state>/thin-backup-unfinished/devN.json`): written before the snapshot is made,
/// completed with the snapshot's identity once it is made, removed when the backup is recorded
/// (or its undo deleted the snapshot). One left behind names a run that was killed outright
/// (SIGKILL, power loss) — SIGINT/SIGTERM run the undo. The next `backup` of the pool (under the
/// same pool lock) deletes that snapshot when it is still the very device made then and no
/// repository's state names it, and says so; one whose snapshot was not recorded yet is
/// reported, never guessed at.
struct UnfinishedBackup: Codable {
    var origin: UInt64
    var pid: Int32
    var started: String
    /// The snapshot, once made.
    var snapshot: SnapshotIdentity?

    static func folder(pool: String) -> String { "\(pool)/thin-backup-unfinished" }
    static func path(pool: String, origin: UInt64) -> String { "\(folder(pool: pool))/dev\(origin).json" }

    init(origin: UInt64) {
        self.origin = origin
        pid = getpid()
        started = WorkflowClock.format(Date())
    }

    /// Written durably (temporary file, fsync, rename, folder fsync; no fault step).
    func save(pool: String) throws {
        let dir = Self.folder(pool: pool)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = Self.path(pool: pool, origin: origin)
        let tmp = p + ".tmp"
        let data = try JSONEncoder().encode(self)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JobError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let ok = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, p) == 0 else {
            unlink(tmp)
            throw JobError("cannot write \(p): \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    static func clear(pool: String, origin: UInt64) {
        unlink(path(pool: pool, origin: origin))
    }

    /// Deletes the snapshots runs killed outright left on `access` (see the type), one line each
    /// through `warn`. A snapshot that cannot be deleted now stays recorded for the next run.
    static func recover(_ access: any PoolAccess, pool: String, warn: (String) -> Void) {
        let dir = folder(pool: pool)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for n in names {
            let p = "\(dir)/\(n)"
            guard let d = FileManager.default.contents(atPath: p), let u = try? JSONDecoder().decode(Self.self, from: d) else {
                warn("\(p): not a record of an unfinished backup; ignored")
                continue
            }
            let who = "an interrupted backup of thin device \(u.origin) (pid \(u.pid), started \(u.started))"
            guard let snap = u.snapshot else {
                warn("\(who) was stopped while it made its snapshot: if \(access.name) holds a snapshot of device \(u.origin) "
                    + "that no backup keeps, delete it")
                unlink(p)
                continue
            }
            do {
                if try access.snapshotIdentity(snap.device) == snap && !LocalBackupState.allSnapshots(pool: pool).contains(snap) {
                    try access.deleteDevice(snap.device)
                    warn("deleted snapshot \(snap.device), left on \(access.name) by \(who)")
                }
                unlink(p)
            } catch {
                warn("cannot delete snapshot \(snap.device), left on \(access.name) by \(who): \(error); the next backup tries again")
            }
        }
    }
}
