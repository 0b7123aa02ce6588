import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small file replaced durably: written to PATH.tmp, fsynced, renamed over PATH, and the
/// folder fsynced (so the rename is on disk before the caller's next step). Readers see the old
/// file or the new one, never a part; on failure (e.g. ENOSPC) the temporary file is removed.
public enum DurableFile {
    /// `beforeRename` runs between the fsync and the rename (a crash-walk step, for one).
    public static func replace(_ path: String, with data: Data, beforeRename: () throws -> Void = {}) throws {
        let tmp = path + ".tmp"
        do {
            let f = try RandomAccessFile(path: tmp, writable: true, create: true)
            defer { f.close() }
            try f.truncate(to: 0)
            try data.withUnsafeBytes { try f.write($0, at: 0) }
            try f.sync()
            try beforeRename()
        } catch {
            unlink(tmp)
            throw error
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw PoolError.invalid("cannot rename \(tmp) to \(path): \(String(cString: strerror(e)))")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}
