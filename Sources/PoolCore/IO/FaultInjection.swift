import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash points as a test dimension: every durability step (a sync, a rename, each side of a
/// metadata commit, a repository catalog transaction, an object deleted from a repository) is numbered, and the environment variable `THIN_BACKUP_FAULT` — set only
/// by tests — stops the process at the Nth one:
///
/// - `count:FILE` appends one line per step ("sync", "rename", "commit") to FILE, so a test learns
///   how many steps a command takes;
/// - `kill:N` sends SIGKILL to the process at step N (a crash: nothing after it runs);
/// - `fail:N` makes step N fail with EIO (an error path: the caller must roll back).
///
/// Unset (always, outside tests), `step` costs one load of a constant.
public enum FaultInjection {
    public enum Step: String, Sendable { case sync, rename, commit, catalog, delete }

    enum Plan: Sendable {
        case count(path: String)
        case kill(at: UInt64)
        case fail(at: UInt64)
        case hang(at: UInt64)
    }

    static let plan: Plan? = {
        guard let v = ProcessInfo.processInfo.environment["THIN_BACKUP_FAULT"] else { return nil }
        let parts = v.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        switch parts[0] {
        case "count": return .count(path: parts[1])
        case "kill": return UInt64(parts[1]).map { .kill(at: $0) }
        case "fail": return UInt64(parts[1]).map { .fail(at: $0) }
        case "hang": return UInt64(parts[1]).map { .hang(at: $0) }
        default: return nil
        }
    }()

    nonisolated(unsafe) private static var counter: UInt64 = 0
    private static let lock = NSLock()

    /// Marks one durability step (called just before it is taken).
    @inline(__always)
    public static func step(_ kind: Step) throws(MetadataError) {
        guard let plan else { return }
        try take(kind, plan)
    }

    private static func take(_ kind: Step, _ plan: Plan) throws(MetadataError) {
        lock.lock()
        counter += 1
        let n = counter
        lock.unlock()
        switch plan {
        case let .count(path):
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            if fd >= 0 {
                var line = "\(kind.rawValue)\n"
                line.withUTF8 { _ = write(fd, $0.baseAddress, $0.count) }
                close(fd)
            }
        case let .kill(at):
            if n == at { kill(getpid(), SIGKILL) }
        case let .fail(at):
            if n == at { throw MetadataError.io(call: "injected \(kind.rawValue) fault", errno: EIO, detail: "step \(n)") }
        case let .hang(at):
            guard n == at else { return }
            // The line tells the test the process is there now.
            var line = "thin-backup: fault injection: stopped at step \(n) (\(kind.rawValue)) until a signal\n"
            line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            while true { pause() }
        }
    }
}
