import Delta
import Foundation

/// A backup repository opened for one run: its object store, a working copy of its catalog,
/// and (for runs that change it) its lock.
public final class BackupRepository {
    public let store: any ObjectStore
    public let catalog: Catalog
    let workDir: String
    private var lock: RepositoryLock?
    /// Name of the object holding the repository's identity (a random id written by its first backup).
    public static let identityObject = "repository-id"

    /// Opens `repo`. `lockFor`: take the repository lock for that command first.
    public init(_ repo: String, options: TransportOptions = TransportOptions(), lockFor command: String? = nil,
                mustExist: Bool = true) throws {
        store = try openObjectStore(repo, options: options, create: !mustExist)
        if let command { lock = try RepositoryLock(store: store, command: command) }
        workDir = NSTemporaryDirectory() + "/thin-backup-repo-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let path = workDir + "/" + Catalog.objectName
        let remote = try store.get(Catalog.objectName)
        if let remote {
            guard FileManager.default.createFile(atPath: path, contents: Data(remote)) else {
                throw JobError("cannot write the catalog copy \(path)")
            }
        } else if mustExist {
            lock?.release()
            throw JobError("\(store.displayName) is not a backup repository (no \(Catalog.objectName))")
        }
        catalog = try Catalog(path: path)
    }

    /// The repository's identity: the random id in its `repository-id` object. With `create`, a
    /// repository without one (new, wiped, or made before identities existed) gets a fresh one.
    public func identity(create: Bool) throws -> String? {
        if let b = try store.get(Self.identityObject) {
            let id = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard id.count == 32, id.allSatisfy(\.isHexDigit) else {
                throw JobError("\(store.displayName): \(Self.identityObject) does not hold a repository id")
            }
            return id
        }
        guard create else { return nil }
        let id = randomDigest().description
        try store.put(Self.identityObject, Array((id + "\n").utf8))
        return id
    }

    deinit { close() }

    /// Bumps the generation and stores the catalog in the repository.
    public func saveCatalog() throws {
        try catalog.setGeneration(try catalog.generation + 1)
        try store.put(Catalog.objectName, try catalog.bytes())
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
