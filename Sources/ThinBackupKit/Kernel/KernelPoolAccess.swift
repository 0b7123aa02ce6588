import Delta
import Foundation
import PoolCore

/// A live kernel dm-thin pool behind the pool protocol (`--dm-pool NAME`; LVM's pools through
/// `LVMPoolAccess`). Reads go to its metadata and data devices with O_DIRECT; metadata
/// snapshots, snapshots and deletes are messages to the kernel. Nothing here ever writes the
/// pool's devices.
public class KernelPoolAccess: PoolAccess {
    public let pool: KernelThinPool
    public var name: String { "dm pool \(pool.dmName)" }
    public var isLive: Bool { true }

    /// LVM picks thin ids itself (`LVMPoolAccess` overrides this); a raw pool takes `dev`.
    public func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64 {
        try createSnapshot(of: origin, as: dev)
        return dev
    }
    private var device: FileMetadataDevice?
    private var data: RandomAccessFile?

    public init(dmName: String) throws {
        pool = try KernelThinPool(dmName: dmName)
    }

    public func readMetadata() throws -> MetadataReader {
        if device == nil { device = try FileMetadataDevice(path: pool.metadataPath) }
        return try MetadataReader(source: device!)
    }

    /// Reserves by message. A snapshot a killed run of ours left is released first (with a
    /// warning); someone else's is refused. Released by the hold, or on SIGINT/SIGTERM/SIGHUP:
    /// the reservation and its cleanup's registration are one step a signal does not cut (and
    /// one that never starts once a signal's cleanups have begun: they would not release it).
    public func reserveMetadataSnapshot(command: String) throws -> MetadataSnapshotHold {
        try Interrupts.shared.uninterruptible("reserving the metadata snapshot of \(pool.dmName)") {
            try MetadataSnapLease.reclaim(pool) { ThinBackupMain.writeStderr("thin-backup: warning: \($0)\n") }
            let release = try MetadataSnapLease.reserve(pool)
            let cleanup = Interrupts.shared.register("release the metadata snapshot of \(pool.dmName)") { try? release() }
            return MetadataSnapshotHold {
                cleanup.dismiss()
                try release()
            }
        }
    }

    /// The kernel records a device's external origin only in its active table (`thin POOL ID
    /// ORIGIN`); for a snapshot ThinBackup made of an active device over an origin, the origin
    /// recorded then (`KernelPoolState`); else none. Streams of such a device say that its
    /// unmapped blocks read the origin.
    public func externalOrigin(of dev: UInt64) throws -> String? {
        if let t = try pool.activeThins()[dev]?.first?.table {
            return t.externalOrigin.map { BlockDevices.path(of: $0) ?? $0 }
        }
        return KernelPoolState.origin(pool: pool.dmName, dev: dev)
    }

    public func dataReader(blockSize: Int) throws -> any DataBlockReader {
        if data == nil { data = try RandomAccessFile(path: pool.dataPath, writable: false) }
        return FileDataBlockReader(file: data!, blockSize: blockSize)
    }

    public func virtualSize(of dev: UInt64) throws -> UInt64 {
        if let s = try pool.activeSize(of: dev) { return s }
        if let s = KernelPoolState.size(pool: pool.dmName, dev: dev) { return s }
        throw JobError("\(name): thin device \(dev) is not active, so its size is unknown: activate it "
            + "(dmsetup create NAME --table \"0 SECTORS thin /dev/mapper/\(pool.dmName) \(dev)\") or pass --size")
    }

    public func identity(create: Bool) throws -> Digest128 {
        Self.digest(of: "dm-pool:\(pool.dmName)")
    }

    /// A stable 128-bit id of a name (two seeded xxHash64s).
    static func digest(of text: String) -> Digest128 {
        let b = Array(text.utf8)
        return Digest128(high: XXHash64.hash(b, seed: 1), low: XXHash64.hash(b, seed: 2))
    }

    public func createSnapshot(of origin: UInt64, as dev: UInt64) throws {
        let size = try? virtualSize(of: origin)
        let external = try? externalOrigin(of: origin)
        try pool.createSnapshot(of: origin, as: dev)
        if let size { KernelPoolState.recordSize(pool: pool.dmName, dev: dev, size: size) }
        if let external { KernelPoolState.recordOrigin(pool: pool.dmName, dev: dev, origin: external) }
    }

    public func deleteDevice(_ dev: UInt64) throws {
        try pool.delete(dev)
        KernelPoolState.forgetSize(pool: pool.dmName, dev: dev)
        KernelPoolState.forgetOrigin(pool: pool.dmName, dev: dev)
    }

    /// Versions of a chain a receive keeps (`receive --keep N`; nil: all).
    public var keepVersions: Int?

    public func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget {
        let t = try KernelReceivingPool(pool, readOnly: readOnly)
        t.keep = keepVersions
        return t
    }

    public func stateDirectory() throws -> String {
        try KernelPoolState.directory(for: "dm-\(pool.dmName)")
    }

    public func close() {
        device?.file.close()
        device = nil
        data?.close()
        data = nil
    }
}
