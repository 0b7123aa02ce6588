import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replaces the small file at `path` atomically and durably: `data` is written to `temporary`
/// (PATH.tmp unless named), synced, renamed over PATH, and the folder synced, so readers see the
/// old file or the new one, never a part, and the rename is on disk before the caller's next step.
/// On failure the temporary file is removed; a failed folder sync is ignored (the file is in place).
///
/// Which of these are numbered `THIN_BACKUP_FAULT` steps is each writer's own behaviour (crash
/// walks and VM scenarios kill at step N), so each caller says: `syncStep` (the file's sync),
/// `renameStep` (just before the rename), `folderSyncStep` (the folder's sync).
public func replaceFile(_ path: String, with data: Data, temporary: String? = nil,
                        syncStep: Bool, renameStep: Bool = false, folderSyncStep: Bool = false) throws {
    let tmp = temporary ?? path + ".tmp"
    do {
        let f = try RandomAccessFile(path: tmp, writable: true, create: true)
        defer { f.close() }
        try f.truncate(to: 0)
        try data.withUnsafeBytes { try f.write($0, at: 0) }
        try f.sync(faultStep: syncStep)
        if renameStep { try FaultInjection.step(.rename) }
        _ = try sysCall("rename", "\(tmp) to \(path)") { rename(tmp, path) }
    } catch {
        unlink(tmp)
        throw error
    }
    let dir = (path as NSString).deletingLastPathComponent
    if let d = try? RandomAccessFile(path: dir.isEmpty ? "." : dir, writable: false) {
        try? d.sync(faultStep: folderSyncStep)
        d.close()
    }
}
