import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool reserve-metadata-snap`: pins the current metadata (one at a time).
    struct ReserveMetadataSnap: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "reserve-metadata-snap",
            abstract: "Take the pool's metadata snapshot (thin_dump -m reads it); only one may be held.")

        @OptionGroup public var pool: PoolOptions

        public func run() throws {
            let p = try pool.openForChange()
            try p.reserveMetadataSnapshot()
            print("metadata snapshot held at block \(p.heldMetadataSnapshot ?? 0)")
        }
    }

    /// `thin-backup pool release-metadata-snap`: drops the held metadata snapshot.
    struct ReleaseMetadataSnap: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "release-metadata-snap",
            abstract: "Release the pool's metadata snapshot.")

        @OptionGroup public var pool: PoolOptions

        public func run() throws {
            let p = try pool.openForChange()
            try p.releaseMetadataSnapshot()
            // A release by hand also forgets who reserved it (a send or backup that was killed).
            if SnapshotOwner.recorded(in: p) != nil {
                try p.setAnnotation(SnapshotOwner.annotation, nil)
                try p.commit()
            }
        }
    }
}
