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
    /// An encrypted repository's key: its streams and its catalog are sealed with it.
    public let key: StreamKey?
    /// What the caller gave to decrypt with (streams name their key's derivation).
    public let keyring: StreamKeyring?
    /// The key was adopted by this run (the first backup): `key.json` is written with the catalog.
    private var keyIsNew = false

    /// Opens `repo`. `lockFor`: take the repository lock for that command first.
    /// `keyring`: the key of an encrypted repository (refused when it is not the repository's key);
    /// `adoptKey`: a repository without backups takes it (backup).
    public init(_ repo: String, options: TransportOptions = TransportOptions(), lockFor command: String? = nil,
                mustExist: Bool = true, keyring: StreamKeyring? = nil, adoptKey: Bool = false) throws {
        store = try openObjectStore(repo, options: options, create: !mustExist)
        if let command {
            lock = try RepositoryLock(store: store, command: command)
            // With the lock held, no other run writes here: a ".partial" object is a killed run's.
            if let folder = store as? FolderStore {
                for (name, bytes) in folder.removeStalePartials() {
                    ThinBackupMain.writeStderr("thin-backup: warning: removed \(folder.root)/\(name) (\(formatBytes(bytes))), "
                                               + "left by an interrupted run that no longer holds the repository lock\n")
                }
            }
        }
        workDir = NSTemporaryDirectory() + "/thin-backup-repo-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: workDir, withIntermediateDirectories: true)
        let path = workDir + "/" + Catalog.objectName
        var remote = try store.get(Catalog.objectName)
        self.keyring = keyring
        do {
            let found = try resolveRepositoryKey(store, keyring: keyring, hasBackups: remote != nil, adopt: adoptKey)
            key = found?.key
            keyIsNew = found?.isNew ?? false
        } catch {
            lock?.release()
            throw error
        }
        if let sealed = remote {
            switch (key, SealedBlob.isSealed(sealed)) {
            case (let k?, true):
                guard let plain = SealedBlob.open(sealed, key: k, label: "catalog") else {
                    lock?.release()
                    throw JobError("repository \(store.displayName): its catalog does not authenticate with its key (damaged or replaced)")
                }
                remote = plain
            case (nil, true):
                lock?.release()
                throw JobError("repository \(store.displayName): its catalog is encrypted but its \(RepositoryKeyRecord.objectName) is missing")
            case (.some, false):
                lock?.release()
                throw JobError("repository \(store.displayName) is encrypted but its catalog is not (replaced?)")
            case (nil, false):
                break
            }
        }
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
        let bytes = try catalog.bytes()
        if let key {
            if keyIsNew {
                let enc = JSONEncoder()
                enc.outputFormatting = [.sortedKeys]
                try store.put(RepositoryKeyRecord.objectName, [UInt8](try enc.encode(RepositoryKeyRecord(key))))
                keyIsNew = false
            }
            try store.put(Catalog.objectName, SealedBlob.seal(bytes, key: key, label: "catalog"))
        } else {
            try store.put(Catalog.objectName, bytes)
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
