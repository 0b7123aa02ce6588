import Delta
import PoolCore

/// Which metadata a reading command sees. One definition for every command: `-m [BLOCK]` is
/// `.held`, `--live-metadata` is `.live`, and without either `send` reserves (`.reserve`)
/// while dump, delta and `pool ls` read `.live` (as thin_dump and thin_delta do).
public enum MetadataSnapMode: Sendable, Equatable {
    /// Reserve a metadata snapshot, read through it, release it at the end.
    case reserve
    /// The metadata snapshot already held (`-m`); with a block, it must be at that block.
    case held(block: UInt64?)
    /// The live superblock, no metadata snapshot (a pool nobody changes).
    case live
}

/// A metadata view opened for one run, and the snapshot it reserved (released by `close()`).
public final class MetadataSession {
    public let pool: any PoolAccess
    public let view: MetadataView
    public let mode: MetadataSnapMode
    private let hold: MetadataSnapshotHold?

    init(pool: any PoolAccess, view: MetadataView, mode: MetadataSnapMode, hold: MetadataSnapshotHold?) {
        self.pool = pool
        self.view = view
        self.mode = mode
        self.hold = hold
    }

    /// Releases a snapshot this session reserved (a held one stays held).
    public func close() { try? hold?.release() }

    /// Fails when any of `devs` has a mapping tree other than the view's in the live metadata
    /// (a metadata snapshot freezes mappings, not data: a written device may change in place).
    public func checkUnchanged(_ devs: [UInt64], _ when: String) throws {
        let live = try pool.readMetadata().live
        for dev in devs where try live.mappingRoot(of: dev) != view.mappingRoot(of: dev) {
            throw JobError("thin device \(dev) \(when): it is in use; send snapshots that nobody writes")
        }
    }
}

extension MetadataSnapMode {
    /// The view `reader` gives in this mode (`.reserve` is `openMetadata`'s, not a reader's).
    public func view(_ reader: MetadataReader) throws -> MetadataView {
        if case let .held(block) = self { return try reader.metadataSnapshot(block: block) }
        return reader.live
    }
}

extension PoolAccess {
    /// Opens the metadata for reading in `mode`. `.reserve` records the pool's identity first (so
    /// the stream can name it); the conformer refuses a snapshot someone else holds.
    public func openMetadata(_ mode: MetadataSnapMode, command: String = "send") throws -> MetadataSession {
        let reader = try readMetadata()
        guard mode == .reserve else { return MetadataSession(pool: self, view: try mode.view(reader), mode: mode, hold: nil) }
        _ = try identity(create: true)
        let hold = try reserveMetadataSnapshot(command: command)
        do {
            return MetadataSession(pool: self, view: try readMetadata().metadataSnapshot(), mode: mode, hold: hold)
        } catch {
            try? hold.release()
            throw error
        }
    }
}
