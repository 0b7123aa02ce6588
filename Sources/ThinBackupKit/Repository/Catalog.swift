import Foundation
import GRDB
import PoolCore

/// One backup in the catalog: a stream object holding a snapshot of device `dev` of pool
/// `poolID`, full (`baseID` nil) or incremental from backup `baseID`.
public struct BackupRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "backups"

    public var id: Int64?
    /// Identity of the source pool (its superblock UUID or sidecar pool.id).
    public var poolID: String
    /// The thin device backed up.
    public var dev: UInt64
    /// The snapshot device taken for this backup on the source pool.
    public var snapDev: UInt64
    /// The backup this one is an increment of (nil: a full stream).
    public var baseID: Int64?
    /// When the backup was taken (seconds since 1970, UTC).
    public var createdAt: Double
    /// The stream's object name in the repository.
    public var object: String
    public var streamBytes: UInt64
    public var rawBytes: UInt64
    public var dataBlocks: UInt64
    public var blockSize: UInt32
    public var virtualSize: UInt64
    /// Content digest of the snapshot (send's target digest).
    public var digest: String
    /// Set by prune when the stream was rewritten against another base (or as a full stream).
    public var rebased: Bool

    public var isFull: Bool { baseID == nil }
    public var date: Date { Date(timeIntervalSince1970: createdAt) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The catalog of a repository: an SQLite database (through GRDB) holding every backup and a
/// generation counter. The repository keeps a copy (`catalog.sqlite`) updated by every run that
/// changes it, so a new host restores from the repository alone.
public final class Catalog {
    public static let objectName = "catalog.sqlite"
    let db: DatabaseQueue
    public let path: String

    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.journalMode = .default
        do {
            db = try DatabaseQueue(path: path, configuration: config)
            var m = DatabaseMigrator()
            m.registerMigration("v1") { db in
                try db.create(table: "backups") { t in
                    t.autoIncrementedPrimaryKey("id")
                    t.column("poolID", .text).notNull()
                    t.column("dev", .integer).notNull()
                    t.column("snapDev", .integer).notNull()
                    t.column("baseID", .integer).references("backups")
                    t.column("createdAt", .double).notNull()
                    t.column("object", .text).notNull().unique()
                    t.column("streamBytes", .integer).notNull()
                    t.column("rawBytes", .integer).notNull()
                    t.column("dataBlocks", .integer).notNull()
                    t.column("blockSize", .integer).notNull()
                    t.column("virtualSize", .integer).notNull()
                    t.column("digest", .text).notNull()
                    t.column("rebased", .boolean).notNull().defaults(to: false)
                }
                try db.create(table: "meta") { t in
                    t.primaryKey("key", .text)
                    t.column("value", .text).notNull()
                }
            }
            try m.migrate(db)
        } catch let e as DatabaseError {
            throw JobError("catalog \(path): \(e.message ?? "\(e)")")
        }
    }

    func wrap<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as DatabaseError {
            throw JobError("catalog \(path): \(e.message ?? "\(e)")")
        }
    }

    /// Every backup, oldest first.
    public func all() throws -> [BackupRecord] {
        try wrap { try db.read { try BackupRecord.order(Column("createdAt"), Column("id")).fetchAll($0) } }
    }

    public func backup(_ id: Int64) throws -> BackupRecord? {
        try wrap { try db.read { try BackupRecord.fetchOne($0, key: id) } }
    }

    public func insert(_ record: inout BackupRecord) throws {
        try FaultInjection.step(.catalog)
        var r = record
        try wrap { r = try db.write { db in var x = r; try x.insert(db); return x } }
        record = r
    }

    /// Applies updates and deletions in one transaction (updates first, so no base reference dangles).
    public func apply(updates: [BackupRecord], deletions: [Int64]) throws {
        try FaultInjection.step(.catalog)
        try wrap {
            try db.write { db in
                for u in updates { try u.update(db) }
                for id in deletions { _ = try BackupRecord.deleteOne(db, key: id) }
            }
        }
    }

    public var generation: Int {
        get throws {
            try wrap { try db.read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'generation'") } }
                .flatMap(Int.init) ?? 0
        }
    }

    public func setGeneration(_ g: Int) throws {
        try FaultInjection.step(.catalog)
        try wrap {
            try db.write {
                try $0.execute(sql: "INSERT OR REPLACE INTO meta(key, value) VALUES('generation', ?)", arguments: [String(g)])
            }
        }
    }

    /// The chain that restores `record`: a full backup first, then each increment, ending with `record`.
    public func chain(of record: BackupRecord) throws -> [BackupRecord] {
        var out = [record]
        var seen: Set<Int64> = [record.id!]
        var cur = record
        while let b = cur.baseID {
            guard let base = try backup(b) else {
                throw JobError("backup \(cur.id!) needs backup \(b), which is not in the catalog")
            }
            guard seen.insert(b).inserted else { throw JobError("backup \(b): its chain loops") }
            out.append(base)
            cur = base
        }
        return out.reversed()
    }

    /// The database file's bytes (the catalog is in rollback-journal mode: consistent between transactions).
    func bytes() throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw JobError("cannot read the catalog \(path)")
        }
        return [UInt8](d)
    }

    private var closed = false
    public func close() {
        guard !closed else { return }
        closed = true
        try? db.close()
    }

    deinit { close() }
}
