import Delta
import Foundation

/// A backup repository opened for one run: its object store, a working copy of its catalog,
/// and (for runs that change it) its lock.
public final class BackupRepository {
    public let store: any ObjectStore
    public let catalog: Catalog
    let workDir: String
    private var lock: RepositoryLock?
    /// The host's own copy of the catalog (backup keeps one beside the pool), if any.
    let localCopy: String?

    /// Opens `repo`. `lockFor`: take the repository lock for that command first.
    /// `localCopy`: a catalog file kept on this host, used when it is newer than the repository's.
    public init(_ repo: String, options: TransportOptions = TransportOptions(), lockFor command: String? = nil,
                localCopy: String? = nil, mustExist: Bool = true) throws {
        store = try openObjectStore(repo, options: options, create: !mustExist)
        if let command { lock = try RepositoryLock(store: store, command: command) }
        self.localCopy = localCopy
        workDir = NSTemporaryDirectory() + "/thin-backup-repo-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let path = workDir + "/" + Catalog.objectName
        let remote = try store.get(Catalog.objectName)
        if let remote {
            guard FileManager.default.createFile(atPath: path, contents: Data(remote)) else {
                throw JobError("cannot write the catalog copy \(path)")
            }
        } else if mustExist && (localCopy.map { !FileManager.default.fileExists(atPath: $0) } ?? true) {
            lock?.release()
            throw JobError("\(store.displayName) is not a backup repository (no \(Catalog.objectName))")
        }
        var cat = try Catalog(path: path)
        if let localCopy, FileManager.default.fileExists(atPath: localCopy) {
            let local = try Catalog(path: localCopy)
            let newer = try local.generation > cat.generation
            local.close()
            if newer {
                cat.close()
                try? FileManager.default.removeItem(atPath: path)
                try FileManager.default.copyItem(atPath: localCopy, toPath: path)
                cat = try Catalog(path: path)
            }
        }
        catalog = cat
    }

    deinit { close() }

    /// Bumps the generation and stores the catalog in the repository (and the local copy).
    public func saveCatalog() throws {
        try catalog.setGeneration(try catalog.generation + 1)
        let bytes = try catalog.bytes()
        try store.put(Catalog.objectName, bytes)
        if let localCopy {
            let tmp = localCopy + ".tmp"
            guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes)), rename(tmp, localCopy) == 0 else {
                throw JobError("cannot write the local catalog copy \(localCopy)")
            }
        }
    }

    /// Releases the lock and removes the work folder (the open catalog stays readable until released).
    public func close() {
        lock?.release()
        lock = nil
        try? FileManager.default.removeItem(atPath: workDir)
    }

    /// A new scratch folder under the run's work directory.
    func scratch(_ name: String) throws -> String {
        let p = "\(workDir)/\(name)-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }
}
