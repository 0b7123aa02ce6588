import Delta
import PoolCore

/// A pool as the commands use it: whatever its kind, they read its metadata and data blocks,
/// take metadata snapshots, and snapshot and delete devices through this protocol only.
///
/// Kinds today: `UserspacePool` (a pool folder, `--pool DIR`, or metadata and data paths,
/// `--metadata F --data F`). To add a kind (e.g. a live dm-thin pool, `--dm-pool NAME`, or an
/// LVM thin pool, `--lv VG/LV --thin-pool VG/POOL`):
/// 1. write a conformer in this folder: `readMetadata()` re-reads the superblock from one
///    handle opened once (a live pool: its metadata device), `reserveMetadataSnapshot()` is the
///    kind's own way (dm: the `reserve_metadata_snap` message), `virtualSize(of:)` the size the
///    pool records (dm: the thin device's table length), `dataReader` its data device;
/// 2. add its options to `PoolOptions`, a case to `PoolSelection` and one line to its `open()`
///    (job files name pools through `PoolSelection` too).
/// No command changes: `-m`, `--live-metadata`, send, verify, dump, delta, backup and migrate
/// are written against this protocol (`openMetadata(_:)` in MetadataSession.swift).
/// Operations a kind cannot do (a userspace pool as a `receive` target, a state folder) keep
/// the throwing defaults below, which name the pool and what is missing.
public protocol PoolAccess: AnyObject {
    /// How messages name the pool ("pool /srv/p", "metadata m.img").
    var name: String { get }

    /// The pool's metadata as it is now on disk: every call re-reads the superblock (through a
    /// device opened once, so a send opens the metadata once).
    func readMetadata() throws -> MetadataReader

    /// Takes the pool's metadata snapshot for `command` (its owner while held); the returned hold
    /// releases it, as does a signal. A snapshot someone else holds is refused (one a killed run
    /// of ours left may be reclaimed).
    func reserveMetadataSnapshot(command: String) throws -> MetadataSnapshotHold

    /// Reads data blocks by their data-block address.
    func dataReader(blockSize: Int) throws -> any DataBlockReader

    /// Virtual size of `dev` in bytes, as the pool records it.
    func virtualSize(of dev: UInt64) throws -> UInt64

    /// The external origin `dev` reads its unmapped blocks from, if it has one (a path or a name).
    func externalOrigin(of dev: UInt64) throws -> String?

    /// The id streams record for this pool: the superblock's UUID when it has one, else an id
    /// kept beside the pool (made and stored when `create` and there is none yet).
    func identity(create: Bool) throws -> Digest128

    /// A snapshot of `origin` as `dev`, committed.
    func createSnapshot(of origin: UInt64, as dev: UInt64) throws

    /// A snapshot of `origin`, as `dev` where the pool lets its user choose (LVM picks its own
    /// thin id); returns the snapshot's id.
    func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64

    /// Deletes `dev`, committed.
    func deleteDevice(_ dev: UInt64) throws

    /// The folder where backup and migrate keep their lock and catalog copy for this pool.
    func stateDirectory() throws -> String

    /// The pool as PoolCore's userspace pool (`pool …` changes).
    func userspacePool(readOnly: Bool) throws -> ThinPool

    /// The pool opened as a receive target (receive, restore, serve); `readOnly`: only its
    /// receipts are read.
    func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget

    /// Checks the metadata and, when clean, clears NEEDS_CHECK (nobody may have the pool open).
    func clearNeedsCheck() throws -> MetadataChecker.Report

    /// Whether the kernel changes the pool while it is read (a live dm or LVM pool): a whole-pool
    /// check then reads through a metadata snapshot.
    var isLive: Bool { get }

    /// Closes what the access opened.
    func close()
}

extension PoolAccess {
    public var isLive: Bool { false }

    public func createSnapshot(of origin: UInt64, preferring dev: UInt64) throws -> UInt64 {
        try createSnapshot(of: origin, as: dev)
        return dev
    }

    public func stateDirectory() throws -> String {
        throw JobError(.usage, "\(name): backup and migrate need a pool folder (--pool DIR) to keep their lock and catalog")
    }

    public func userspacePool(readOnly: Bool) throws -> ThinPool {
        throw JobError(.usage, "\(name): this command works on a userspace pool (--pool DIR)")
    }

    public func receiveTarget(readOnly: Bool) throws -> any ReceiveTarget {
        throw JobError(.usage, "\(name): this kind of pool cannot receive streams")
    }

    public func clearNeedsCheck() throws -> MetadataChecker.Report {
        throw JobError(.usage, "\(name): --clear-needs-check works on a userspace pool's metadata")
    }

    /// The device ids of the pool, ascending (live metadata).
    public func devices() throws -> [UInt64] { try readMetadata().live.devices().map(\.id) }

    public func deviceExists(_ dev: UInt64) throws -> Bool { try devices().contains(dev) }

    /// The superblock's UUID as an identity, when it has one.
    static func uuidIdentity(_ sb: Superblock) -> Digest128? {
        let u = sb.uuid
        guard u.contains(where: { $0 != 0 }) else { return nil }
        let hi = u[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let lo = u[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Digest128(high: hi, low: lo)
    }
}

/// A metadata snapshot this run took; `release()` drops it (once).
public final class MetadataSnapshotHold {
    private var releaser: (() throws -> Void)?
    public init(release: @escaping () throws -> Void) { releaser = release }
    public func release() throws {
        guard let r = releaser else { return }
        releaser = nil
        try r()
    }
}
