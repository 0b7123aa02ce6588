import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who holds a lock: written into the lock so the refusal can name the holder.
public struct LockHolder: Codable, Sendable, Equatable {
    public var command: String
    public var host: String
    public var pid: Int32
    public var since: String

    public static func current(_ command: String) -> LockHolder {
        LockHolder(command: command, host: ProcessInfo.processInfo.hostName,
                   pid: getpid(), since: WorkflowClock.format(Date()))
    }

    public var description: String { "`\(command)` (pid \(pid) on \(host), since \(since))" }

    /// On this host and the process is gone: a lock left by a crash.
    var isStale: Bool { host == ProcessInfo.processInfo.hostName && kill(pid, 0) != 0 && errno == ESRCH }
}

/// The repository lock: an object "lock" naming its holder. In a folder it is created with
/// O_EXCL (atomic); over HTTP/S3 it is checked then written (two hosts starting within the same
/// second could both pass — run one host's jobs per repository). A lock whose holder process is
/// gone (same host) is taken over. SIGINT/SIGTERM/SIGHUP release it (`Interrupts`), so a
/// stopped run leaves no lock behind, in a folder or over HTTP/S3.
public final class RepositoryLock {
    static let name = "lock"
    let store: any ObjectStore
    let holder: LockHolder
    private var held = false
    private var cleanup: Interrupts.Cleanup?

    public init(store: any ObjectStore, command: String) throws {
        self.store = store
        holder = .current(command)
        let bytes = try JSONEncoder().encode(holder)
        // Taking it and registering its release are one step a signal does not cut.
        try Interrupts.shared.uninterruptible("taking the repository lock of \(store.displayName)") { try take(bytes) }
    }

    private func take(_ bytes: Data) throws {
        for _ in 0..<2 {
            if let folder = store as? FolderStore {
                let p = folder.path(Self.name)
                let fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
                if fd >= 0 {
                    _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                    fsync(fd)
                    close(fd)
                    took()
                    return
                }
                guard errno == EEXIST else {
                    throw JobError("cannot create the lock \(p): \(String(cString: strerror(errno)))")
                }
            } else if try store.get(Self.name) == nil {
                try store.put(Self.name, [UInt8](bytes))
                took()
                return
            }
            let other = (try? store.get(Self.name)).flatMap { $0 }.flatMap { try? JSONDecoder().decode(LockHolder.self, from: Data($0)) }
            if let other, other.isStale {
                try store.delete(Self.name)
                continue
            }
            let who = other?.description ?? "an unknown run"
            throw JobError(.busy, "repository \(store.displayName) is locked by \(who); "
                                 + "if no such run is active, delete \(store.displayName)/\(Self.name)")
        }
        throw JobError(.busy, "repository \(store.displayName): could not take the lock")
    }

    private func took() {
        held = true
        cleanup = Interrupts.shared.register("release the repository lock of \(store.displayName)") { [store] in
            try? store.delete(Self.name)
        }
    }

    /// Deletes the lock (once; a signal may have released it already).
    public func release() {
        guard held else { return }
        held = false
        cleanup?.run()
        cleanup = nil
    }

    deinit { release() }
}

/// The pool lock: flock(2) on "<pool>/thin-backup.lock", released by the kernel when the
/// process dies. Held by backup and migrate while they change the pool (snapshots, deletions).
public final class PoolLock {
    let fd: Int32
    public let path: String

    /// Takes the lock; `wait`: block until free, else refuse naming the holder.
    public convenience init(pool: String, command: String, wait: Bool = false) throws {
        try self.init(path: "\(pool)/thin-backup.lock", what: "pool \(pool)", command: command, wait: wait)
    }

    /// The same lock on any file (`run` locks STATE-DIR/JOB.lock); `what` names it in the refusal.
    public init(path: String, what: String, command: String, wait: Bool = false) throws {
        self.path = path
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw JobError("cannot open \(path): \(String(cString: strerror(errno)))") }
        // An empty lock file with the lock taken is a holder that has just released it (it
        // empties the file first) while a child it forked still shares the open file until its
        // exec, or one that has not written itself yet: either is gone within moments, so a
        // refusal naming no holder is made only after a short retry.
        var attempts = 0
        while flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) != 0 {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = pread(fd, &buf, buf.count, 0)
            let other = n > 0 ? try? JSONDecoder().decode(LockHolder.self, from: Data(buf[0..<n])) : nil
            attempts += 1
            if other == nil && attempts < 30 {
                usleep(100_000)
                continue
            }
            close(fd)
            throw JobError(.busy, "\(what) is in use by \(other?.description ?? "another run")")
        }
        let bytes = (try? JSONEncoder().encode(LockHolder.current(command))) ?? Data()
        ftruncate(fd, 0)
        _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }

    public func release() {
        ftruncate(fd, 0)
        close(fd)
    }
}
