import Delta
import Foundation
import PoolCore

/// What a pool keeps about its backups into one repository (by the repository's identity):
/// for each backed-up device, the newest backup and the snapshot on the pool it was made from
/// — the next incremental's base. One file per repository, so a pool backed up into several
/// repositories keeps one chain per repository and the chains never cross.
///
/// Stored as `<pool>/thin-backup-state/<repository id>.json`.
struct LocalBackupState: Codable, Equatable {
    struct Base: Codable, Equatable {
        /// The backup's id in the repository's catalog.
        var backup: Int64
        /// The snapshot on the pool, with its creation identity (a reused device id is another device).
        var snapshot: SnapshotIdentity
        /// Its content digest (the catalog's).
        var digest: String
    }
    /// How the user named the repository when this file was last written (for people reading it).
    var repository: String
    var devices: [String: Base] = [:]

    static func folder(pool: String) -> String { "\(pool)/thin-backup-state" }
    static func path(pool: String, repository id: String) -> String { "\(folder(pool: pool))/\(id).json" }

    /// The state for repository `id`, or an empty one.
    static func load(pool: String, repository id: String, name: String) throws -> LocalBackupState {
        let p = path(pool: pool, repository: id)
        guard let data = FileManager.default.contents(atPath: p) else { return LocalBackupState(repository: name) }
        do {
            return try JSONDecoder().decode(LocalBackupState.self, from: data)
        } catch {
            throw JobError("\(p): not a backup state file (\(error))")
        }
    }

    /// Every snapshot any repository's state names (so a fresh snapshot id never reuses one).
    static func allSnapshots(pool: String) -> [SnapshotIdentity] {
        let dir = folder(pool: pool)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".json") }.flatMap { n -> [SnapshotIdentity] in
            guard let d = FileManager.default.contents(atPath: "\(dir)/\(n)"),
                  let s = try? JSONDecoder().decode(LocalBackupState.self, from: d) else { return [] }
            return s.devices.values.map(\.snapshot)
        }
    }

    /// Writes the file atomically (`replaceFile`; the file's sync is a fault step).
    func save(pool: String, repository id: String) throws {
        try FileManager.default.createDirectory(atPath: Self.folder(pool: pool), withIntermediateDirectories: true)
        let p = Self.path(pool: pool, repository: id)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try enc.encode(self)
        do { try replaceFile(p, with: data, syncStep: true) } catch { throw JobError("cannot write \(p): \(error)") }
    }
}

extension PoolAccess {
    /// The identity of `dev` as a stream names it, or nil when the pool has no such device.
    func snapshotIdentity(_ dev: UInt64) throws -> SnapshotIdentity? {
        let live = try readMetadata().live
        guard try live.devices().contains(where: { $0.id == dev }) else { return nil }
        return SnapshotIdentity(dev, try live.details(of: dev))
    }
}
