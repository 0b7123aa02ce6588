import PoolCore

/// `thin-backup pool ls`: per device the numbers thin_ls 0.9.0 gives, in its layout
/// (FORMAT.md §7.3).
public enum PoolListing {
    public struct Row: Equatable, Sendable {
        public var id: UInt64
        /// Details `mapped_blocks` (thin_ls trusts it; not a recount).
        public var mappedBlocks: UInt64
        /// Mappings whose data block appears in exactly one mapping across all devices.
        public var exclusiveBlocks: UInt64
        public var transaction: UInt64
        public var creationTime: UInt32
        public var snapTime: UInt32
        public var sharedBlocks: UInt64 { mappedBlocks &- exclusiveBlocks }
    }

    /// thin_ls's fields, in its order.
    public enum Field: String, CaseIterable, Sendable {
        case dev = "DEV"
        case mappedBlocks = "MAPPED_BLOCKS", exclusiveBlocks = "EXCLUSIVE_BLOCKS", sharedBlocks = "SHARED_BLOCKS"
        case mappedSectors = "MAPPED_SECTORS", exclusiveSectors = "EXCLUSIVE_SECTORS", sharedSectors = "SHARED_SECTORS"
        case mappedBytes = "MAPPED_BYTES", exclusiveBytes = "EXCLUSIVE_BYTES", sharedBytes = "SHARED_BYTES"
        case mapped = "MAPPED", exclusive = "EXCLUSIVE", shared = "SHARED"
        case transaction = "TRANSACTION", createTime = "CREATE_TIME", snapTime = "SNAP_TIME"
    }

    /// Our default: the block counts and times (`thin_ls -o` with the same list prints the same bytes).
    public static let defaultFields: [Field] = [.dev, .mappedBlocks, .exclusiveBlocks, .sharedBlocks, .createTime, .snapTime]

    /// Parses a comma-separated field list as thin_ls's `-o` takes it.
    public static func fields(_ list: String) throws -> [Field] {
        try list.split(separator: ",", omittingEmptySubsequences: false).map { name in
            guard let f = Field(rawValue: String(name)) else {
                throw JobError("unknown field '\(name)' (fields: \(Field.allCases.map(\.rawValue).joined(separator: ",")))")
            }
            return f
        }
    }

    /// One row per device, ascending by id. Memory: two bits per data block in the pages of
    /// `UseCounts` that some mapping touches (at most 256 MiB for 2^30 blocks), not one entry per
    /// mapping: the trees are walked twice, once to count the uses and once to find each
    /// device's exclusive blocks.
    public static func rows(_ view: MetadataView) throws -> [Row] {
        let devices = try view.devices()
        // Sized by the data device (unknown through a metadata snapshot): a block beyond it is refused.
        let limit = view.dataBlockCount
        var uses = UseCounts()
        for (id, _) in devices {
            try view.mappingTree(of: id).forEachLeaf { leaf in
                try leaf.forEachEntry64 { _, v in
                    let d = v >> 24
                    if limit > 0, d >= limit {
                        throw JobError("thin device \(id) maps data block \(d), beyond the data device (\(limit) blocks)")
                    }
                    uses.add(d)
                }
            }
        }
        var exclusive: [UInt64] = []
        for (id, _) in devices {
            var n: UInt64 = 0
            try view.mappingTree(of: id).forEachLeaf { leaf in
                leaf.forEachEntry64 { _, v in
                    if uses.isOnce(v >> 24) { n += 1 }
                }
            }
            exclusive.append(n)
        }
        return devices.enumerated().map { i, dev in
            Row(id: dev.id, mappedBlocks: dev.details.mappedBlocks, exclusiveBlocks: exclusive[i],
                transaction: dev.details.transactionID, creationTime: dev.details.creationTime,
                snapTime: dev.details.snapshottedTime)
        }
    }

    /// How many mappings use each data block (0, 1, or 2 for two or more): two bits per block, in
    /// pages of 2^21 blocks (512 KiB) allocated when a mapping first falls in them. Nothing is ever
    /// copied to grow (a single growing array held the old and new copies at once: 591 MiB peak
    /// for 2^30 blocks, docs/BENCHMARKS.md), and a page is allocated only for a block a mapping
    /// really names, so a damaged huge block number costs one page, not an array up to it.
    struct UseCounts {
        static let pageShift = 21
        private static let wordsPerPage = 1 << (pageShift - 5)
        /// Indexed by block >> pageShift; an empty array is a page no mapping touched.
        private var pages: [[UInt64]] = []

        mutating func add(_ block: UInt64) {
            let p = Int(block >> UInt64(Self.pageShift))
            if p >= pages.count { pages += [[UInt64]](repeating: [], count: p + 1 - pages.count) }
            if pages[p].isEmpty { pages[p] = [UInt64](repeating: 0, count: Self.wordsPerPage) }
            let w = Int(block >> 5) & (Self.wordsPerPage - 1), shift = UInt64(2 * (block & 31))
            if (pages[p][w] >> shift) & 3 < 2 { pages[p][w] += 1 << shift }
        }

        /// Whether exactly one mapping uses `block`.
        func isOnce(_ block: UInt64) -> Bool {
            let p = Int(block >> UInt64(Self.pageShift))
            guard p < pages.count, !pages[p].isEmpty else { return false }
            let w = Int(block >> 5) & (Self.wordsPerPage - 1)
            return (pages[p][w] >> UInt64(2 * (block & 31))) & 3 == 1
        }
    }

    /// The value thin_ls prints for `field` of `row`.
    public static func cell(_ field: Field, _ row: Row, dataBlockSize: UInt32) -> String {
        let sectors = UInt64(dataBlockSize)
        switch field {
        case .dev: return String(row.id)
        case .mappedBlocks: return String(row.mappedBlocks)
        case .exclusiveBlocks: return String(row.exclusiveBlocks)
        case .sharedBlocks: return String(row.sharedBlocks)
        case .mappedSectors: return String(row.mappedBlocks &* sectors)
        case .exclusiveSectors: return String(row.exclusiveBlocks &* sectors)
        case .sharedSectors: return String(row.sharedBlocks &* sectors)
        case .mappedBytes: return String(row.mappedBlocks &* sectors &* 512)
        case .exclusiveBytes: return String(row.exclusiveBlocks &* sectors &* 512)
        case .sharedBytes: return String(row.sharedBlocks &* sectors &* 512)
        case .mapped: return humanise(row.mappedBlocks &* sectors &* 512)
        case .exclusive: return humanise(row.exclusiveBlocks &* sectors &* 512)
        case .shared: return humanise(row.sharedBlocks &* sectors &* 512)
        case .transaction: return String(row.transaction)
        case .createTime: return String(row.creationTime)
        case .snapTime: return String(row.snapTime)
        }
    }

    /// thin_ls 0.9.0's size formatting: divide by 1024 while above 1 MiB, then once
    /// more with rounding if above 8192.
    public static func humanise(_ bytes: UInt64) -> String {
        let units = ["", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var v = bytes, u = 0
        while v > 1_048_576 { v /= 1024; u += 1 }
        if v > 8192 { v = (v + 512) / 1024; u += 1 }
        return "\(v)\(units[u])"
    }

    /// The table thin_ls prints: right-justified cells, each followed by one space.
    public static func writeText(_ rows: [Row], fields: [Field], headers: Bool, dataBlockSize: UInt32, to out: TextOutput) {
        var table: [[String]] = []
        if headers { table.append(fields.map(\.rawValue)) }
        for r in rows { table.append(fields.map { cell($0, r, dataBlockSize: dataBlockSize) }) }
        var widths = [Int](repeating: 0, count: fields.count)
        for line in table { for (i, c) in line.enumerated() { widths[i] = max(widths[i], c.utf8.count) } }
        for line in table {
            for (i, c) in line.enumerated() {
                for _ in 0..<(widths[i] - c.utf8.count) { out.append(byte: 32) }
                out.append(c)
                out.append(byte: 32)
            }
            out.append(byte: 10)
        }
    }

    /// The same numbers as JSON: an array of objects, one per device.
    public static func writeJSON(_ rows: [Row], dataBlockSize: UInt32, to out: TextOutput) {
        let s = UInt64(dataBlockSize)
        out.append("[")
        for (i, r) in rows.enumerated() {
            out.append(i == 0 ? "\n" : ",\n")
            let pairs: [(String, UInt64)] = [
                ("dev", r.id), ("mapped_blocks", r.mappedBlocks), ("exclusive_blocks", r.exclusiveBlocks),
                ("shared_blocks", r.sharedBlocks), ("mapped_sectors", r.mappedBlocks &* s),
                ("exclusive_sectors", r.exclusiveBlocks &* s), ("shared_sectors", r.sharedBlocks &* s),
                ("mapped_bytes", r.mappedBlocks &* s &* 512), ("exclusive_bytes", r.exclusiveBlocks &* s &* 512),
                ("shared_bytes", r.sharedBlocks &* s &* 512), ("transaction", r.transaction),
                ("creation_time", UInt64(r.creationTime)), ("snap_time", UInt64(r.snapTime)),
            ]
            out.append("  {")
            for (j, (k, v)) in pairs.enumerated() {
                if j > 0 { out.append(", ") }
                out.append("\"\(k)\": ")
                out.append(decimal: v)
            }
            out.append("}")
        }
        out.append(rows.isEmpty ? "]\n" : "\n]\n")
    }
}
