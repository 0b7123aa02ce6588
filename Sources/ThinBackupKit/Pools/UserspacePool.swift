import Delta
import Foundation
import PoolCore

/// A pool in files: a pool folder (`metadata`, `data`, `pool.json`) or metadata and data paths
/// (a copy of a kernel pool's devices, `thin_restore` output). PoolCore's `ThinPool` makes its
/// changes; reads go through one metadata handle opened at the first read.
public final class UserspacePool: PoolAccess {
    public let metadataPath: String
    public let dataPath: String?
    /// The pool folder (nil for bare paths: then there is no pool.json and no state folder).
    public let folder: String?
    public let name: String
    private var device: FileMetadataDevice?
    private var data: RandomAccessFile?

    public init(folder: String) {
        self.folder = folder
        metadataPath = "\(folder)/metadata"
        dataPath = "\(folder)/data"
        name = metadataPath
    }

    public init(metadata: String, data: String?) {
        folder = nil
        metadataPath = metadata
        dataPath = data
        name = metadata
    }

    var sidecarPath: String? { folder.map { "\($0)/pool.json" } }

    public func readMetadata() throws -> MetadataReader {
        if device == nil { device = try FileMetadataDevice(path: metadataPath) }
        return try MetadataReader(source: device!)
    }

    /// Opens the pool for a change; `body` runs with it open and the result is committed.
    private func change<T>(_ body: (ThinPool) throws -> T) throws -> T {
        let p = try userspacePool(readOnly: false)
        defer { p.close() }
        let r = try body(p)
        try p.commit()
        return r
    }

    /// The pool stays open (other writers wait) until the hold is released; the owner is recorded
    /// in pool.json and a signal releases it (`SnapshotReservation`).
    public func reserveMetadataSnapshot(command: String) throws -> MetadataSnapshotHold {
        let p = try userspacePool(readOnly: false)
        let reservation: SnapshotReservation
        do {
            reservation = try SnapshotReservation(pool: p, metadataPath: metadataPath, command: command) {
                ThinBackupMain.writeStderr("thin-backup: \($0)\n")
            }
        } catch {
            p.close()
            throw error
        }
        return MetadataSnapshotHold { reservation.release() }
    }

    public func dataReader(blockSize: Int) throws -> any DataBlockReader {
        FileDataBlockReader(file: try dataFile(), blockSize: blockSize)
    }

    private func dataFile() throws -> RandomAccessFile {
        if let data { return data }
        guard let dataPath else { throw JobError(.usage, "\(name): give the data device too (--data FILE)") }
        data = try RandomAccessFile(path: dataPath, writable: false)
        return data!
    }

    /// A pool folder: pool.json's size, else the data device's size (a folder without pool.json,
    /// as the README says). Bare paths record no sizes: the metadata device of a live kernel pool
    /// gives the size of `dev`'s active thin table (or the one ThinBackup recorded); anything
    /// else is refused, asking for `--size` — the data device's size is the pool's, not the
    /// device's (issue #12: a 128 MiB volume restored as 512 MiB).
    public func virtualSize(of dev: UInt64) throws -> UInt64 {
        if let sidecarPath {
            if let s = try PoolSidecar.load(sidecarPath).devices[String(dev)]?.size { return s }
            return try dataFile().size()
        }
        if let live = try KernelThinPool.using(metadata: metadataPath) {
            return try KernelPoolAccess(dmName: live.dmName).virtualSize(of: dev)
        }
        throw JobError(.usage, "\(name): --metadata/--data record no device sizes: give thin device \(dev)'s size with "
            + "--size (e.g. --size 10G), or name the pool with --pool DIR (pool.json), --dm-pool NAME or --lv VG/LV")
    }

    /// pool.json's origin file of `dev` (a pool without pool.json has none).
    public func externalOrigin(of dev: UInt64) throws -> String? {
        try sidecarPath.map(PoolSidecar.load)?.devices[String(dev)]?.originFile
    }

    public func identity(create: Bool) throws -> Digest128 {
        if let u = Self.uuidIdentity(try readMetadata().superblock) { return u }
        guard let sidecarPath else { return .zero }
        if let s = try PoolSidecar.load(sidecarPath).annotations?["pool.id"], let d = Digest128(hex: s) { return d }
        guard create else { return .zero }
        let id = randomDigest()
        try change { try $0.setAnnotation("pool.id", id.description) }
        return id
    }

    public func createSnapshot(of origin: UInt64, as dev: UInt64) throws {
        try change { try $0.snapshot(origin: origin, as: dev) }
    }

    public func deleteDevice(_ dev: UInt64) throws {
        try change { try $0.delete(dev) }
        if let folder { BlockDigestMap.remove(BlockDigestMap.path(inPoolFolder: folder, dev)) }
    }

    public func stateDirectory() throws -> String {
        guard let folder else {
            throw JobError(.usage, "\(name): backup and migrate need a pool folder (--pool DIR) to keep their lock and catalog")
        }
        return folder
    }

    public func userspacePool(readOnly: Bool) throws -> ThinPool {
        if let folder { return try ThinPool(folder: folder, readOnly: readOnly) }
        guard let dataPath else { throw JobError(.usage, "\(name): give the data device too (--data FILE)") }
        return try ThinPool(metadataPath: metadataPath, dataPath: dataPath, sidecarPath: nil, readOnly: readOnly)
    }

    /// Receipts are kept in the folder's pool.json, so a receive needs the folder.
    public func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget {
        guard folder != nil else {
            throw JobError(.usage, "\(name): a receive keeps its receipts in the pool folder's pool.json: give --pool DIR")
        }
        return try userspacePool(readOnly: readOnly)
    }

    public func clearNeedsCheck() throws -> MetadataChecker.Report {
        try ThinPool.clearNeedsCheck(metadataPath: metadataPath)
    }

    public func close() {
        device?.file.close()
        device = nil
        data?.close()
        data = nil
    }
}

func randomDigest() -> Digest128 { Digest128(high: UInt64.random(in: 1 ... .max), low: UInt64.random(in: 0 ... .max)) }
