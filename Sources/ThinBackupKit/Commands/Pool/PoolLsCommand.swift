import ArgumentParser
import PoolCore

extension PoolCommand {
    /// `thin-backup pool ls`: per device its mapped, exclusive and shared blocks and times, as thin_ls.
    struct Ls: ParsableCommand {
        public static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List a pool's thin devices with thin_ls's numbers and layout.",
            discussion: """
                The default columns are DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,CREATE_TIME,SNAP_TIME; \
                the text is byte-identical to `thin_ls -o <same fields>` (0.9.0). --fields takes any thin_ls field list.
                """
        )

        public enum Format: String, ExpressibleByArgument, Sendable { case text, json }

        @OptionGroup public var pool: PoolOptions

        @OptionGroup public var snap: MetadataSnapOptions

        @Option(name: [.customShort("o"), .long], help: "Comma-separated thin_ls fields for the text table.")
        public var fields: String?

        @Flag(name: .customLong("no-headers"), help: "Leave out the header row.")
        public var noHeaders = false

        @Option(name: .long, help: "text (thin_ls's table) or json.")
        public var format: Format = .text

        public func run(to out: TextOutput) throws {
            let chosen = try fields.map(PoolListing.fields) ?? PoolListing.defaultFields
            let access = try pool.open()
            defer { access.close() }
            let view = try snap.mode().view(try access.readMetadata())
            let rows = try PoolListing.rows(view)
            let dbs = view.superblock.dataBlockSize
            switch format {
            case .text: PoolListing.writeText(rows, fields: chosen, headers: !noHeaders, dataBlockSize: dbs, to: out)
            case .json: PoolListing.writeJSON(rows, dataBlockSize: dbs, to: out)
            }
            try out.flush()
        }

        public func run() throws { try run(to: .standardOutput()) }
    }
}
