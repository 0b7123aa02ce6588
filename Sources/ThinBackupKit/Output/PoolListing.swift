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

    /// One row per device, ascending by id. Memory: two bits per data block (how many mappings
    /// use it, saturating at 2; 256 MiB for 2^30 blocks), not one entry per mapping: the trees
    /// are walked twice, once to count the uses and once to find each device's exclusive blocks.
    public static func rows(_ view: MetadataView) throws -> [Row] {
        let devices = try view.devices()
        // 32 two-bit counters per word; sized by the data device (unknown through a metadata snapshot: grown).
        let limit = view.dataBlockCount
        // Started small and grown to the blocks really mapped: the size comes from the metadata,
        // which may be damaged (a huge count must not allocate or overflow before any check).
        var uses = [UInt64](repeating: 0, count: Int(min(limit, 1 << 20) / 32) + 1)
        for (id, _) in devices {
            try view.mappingTree(of: id).forEachLeaf { leaf in
                try leaf.forEachEntry64 { _, v in
                    let d = v >> 24
                    if limit > 0, d >= limit {
                        throw JobError("thin device \(id) maps data block \(d), beyond the data device (\(limit) blocks)")
                    }
                    let w = Int(d >> 5), shift = UInt64(2 * (d & 31))
                    if w >= uses.count { uses += [UInt64](repeating: 0, count: max(w + 1 - uses.count, uses.count / 2)) }
                    let c = (uses[w] >> shift) & 3
                    if c < 2 { uses[w] += 1 << shift }
                }
            }
        }
        var exclusive: [UInt64] = []
        for (id, _) in devices {
            var n: UInt64 = 0
            try view.mappingTree(of: id).forEachLeaf { leaf in
                leaf.forEachEntry64 { _, v in
                    let d = v >> 24
                    if (uses[Int(d >> 5)] >> UInt64(2 * (d & 31))) & 3 == 1 { n += 1 }
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
