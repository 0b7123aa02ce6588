import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool check`: full verification of the metadata, data reference counts included.
    struct Check: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Verify a pool's metadata: checksums, B-tree invariants, and every metadata and data reference count.",
            discussion: """
                Exit 0 when clean; otherwise exit 1 with one line naming the first problem (block, what, where). \
                A live kernel pool (--dm-pool, --thin-pool, --lv) is checked through a metadata snapshot it reserves \
                and releases (or, with -m, the one held): the snapshot's trees, not the space maps the kernel is \
                changing; deactivate the pool and run thin_check for those.
                """
        )

        @OptionGroup public var pool: PoolOptions
        @OptionGroup public var snap: MetadataSnapOptions
        @Flag(name: .customLong("clear-needs-check"),
              help: "When the check is clean, clear the NEEDS_CHECK flag a failed metadata operation set (like thin_check --clear-needs-check-flag).")
        public var clearNeedsCheck = false

        public func run(to out: TextOutput) throws {
            let access = try pool.open()
            defer { access.close() }
            if clearNeedsCheck {
                let report = try access.clearNeedsCheck()
                var line = Self.summary(report)
                if report.needsCheck { line += "NEEDS_CHECK flag cleared\n" }
                out.append(line)
                try out.flush()
                return
            }
            let mode = snap.mode(otherwise: access.isLive ? .reserve : .live)
            guard mode != .live else {
                out.append(Self.summary(try MetadataChecker(source: access.readMetadata().source).check()))
                try out.flush()
                return
            }
            let session = try access.openMetadata(mode, command: "pool check")
            defer { session.close() }
            var block: UInt64?
            if case let .held(b) = mode { block = b }
            let report = try MetadataChecker(source: access.readMetadata().source).checkHeldSnapshot(block: block)
            out.append(Self.snapshotSummary(report, reserved: mode == .reserve))
            try out.flush()
        }

        static func snapshotSummary(_ r: MetadataChecker.Report, reserved: Bool) -> String {
            "clean: metadata snapshot at block \(r.heldRoot) (\(reserved ? "reserved for this check, released" : "held")): "
                + "transaction \(r.transactionID), \(r.devices) devices, \(r.leafMappings) mappings in distinct leaves, "
                + "\(r.metadataBlocksInUse) metadata blocks reached, \(r.dataBlocksInUse)/\(r.dataBlockCount) data blocks mapped; "
                + "reference counts not compared (the kernel changes a live pool's space maps)"
                + (r.needsCheck ? ", NEEDS_CHECK flag set" : "") + "\n"
        }

        public func run() throws { try run(to: .standardOutput()) }

        static func summary(_ r: MetadataChecker.Report) -> String {
            var s = "clean: transaction \(r.transactionID), \(r.devices) devices, \(r.leafMappings) mappings in distinct leaves, "
            s += "metadata \(r.metadataBlocksInUse)/\(r.metadataBlockCount) blocks in use, data \(r.dataBlocksInUse)/\(r.dataBlockCount) blocks in use"
            if r.heldRoot != 0 { s += ", metadata snapshot held at block \(r.heldRoot)" }
            if r.needsCheck { s += ", NEEDS_CHECK flag set" }
            return s + "\n"
        }
    }
}
