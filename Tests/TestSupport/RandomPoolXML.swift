import Foundation

/// Seeded random pools in thin_dump's XML, for feeding Debian's 0.9.0 `thin_restore`.
///
/// A pool holds several devices: fresh thin devices and snapshot chains (a
/// snapshot of a snapshot of …). Each snapshot starts as its origin's exact
/// mapping set (same data blocks, same times), then both sides diverge:
/// some blocks are rewritten to newly allocated data blocks with the current
/// pool time, some are discarded, new blocks are written into holes. Mappings
/// come as contiguous runs (range mappings) and single blocks, with holes in
/// between, mixed times inside some runs, and data blocks laid out mostly
/// contiguously. Times stay below 2^24 and every data block below
/// `nr_data_blocks`, so `thin_check` passes on the restored image.
///
/// The generator is a model too: `Pool` keeps every device's mappings, so a
/// test can compute expected values independently of the code under test.
public enum RandomPoolXML {
    public struct Mapping: Equatable, Sendable {
        public var virtualBlock: UInt64
        public var dataBlock: UInt64
        public var time: UInt32

        public init(virtualBlock: UInt64, dataBlock: UInt64, time: UInt32) {
            self.virtualBlock = virtualBlock
            self.dataBlock = dataBlock
            self.time = time
        }
    }

    public struct Device: Sendable {
        public var id: UInt64
        public var transaction: UInt64
        public var creationTime: UInt32
        public var snapTime: UInt32
        /// Ascending by virtual block.
        public var mappings: [Mapping]
    }

    public struct Pool: Sendable {
        public var seed: UInt64
        public var time: UInt32
        public var transaction: UInt64
        public var version: UInt32
        /// Superblock flags: 0, or 1 (NEEDS_CHECK) now and then.
        public var flags: UInt32
        public var dataBlockSize: UInt32
        public var dataBlockCount: UInt64
        /// Ascending by id.
        public var devices: [Device]

        public var mappingCount: Int { devices.reduce(0) { $0 + $1.mappings.count } }

        /// The pool as thin_dump-style XML (input for thin_restore). Runs are split at
        /// random places, so the element structure differs from thin_dump's own output.
        public func xml() -> String {
            var rng = SeededRNG(seed: seed ^ 0x5EED_0F_0A11)
            var out = ""
            out.reserveCapacity(64 + mappingCount * 40)
            out += "<superblock uuid=\"\" time=\"\(time)\" transaction=\"\(transaction)\" flags=\"\(flags)\" version=\"\(version)\" data_block_size=\"\(dataBlockSize)\" nr_data_blocks=\"\(dataBlockCount)\">\n"
            for d in devices {
                // thin_restore recomputes mapped_blocks; give it a wrong value on purpose sometimes.
                let claimed = rng.next() % 4 == 0 ? 0 : d.mappings.count
                out += "  <device dev_id=\"\(d.id)\" mapped_blocks=\"\(claimed)\" transaction=\"\(d.transaction)\" creation_time=\"\(d.creationTime)\" snap_time=\"\(d.snapTime)\">\n"
                var i = 0
                let m = d.mappings
                while i < m.count {
                    var j = i + 1
                    let maxRun = rng.next() % 8 == 0 ? 1 + Int(rng.next() % 16) : Int.max
                    while j < m.count, j - i < maxRun, m[j].virtualBlock == m[j - 1].virtualBlock + 1,
                          m[j].dataBlock == m[j - 1].dataBlock + 1, m[j].time == m[i].time { j += 1 }
                    if j - i == 1 {
                        out += "    <single_mapping origin_block=\"\(m[i].virtualBlock)\" data_block=\"\(m[i].dataBlock)\" time=\"\(m[i].time)\"/>\n"
                    } else {
                        out += "    <range_mapping origin_begin=\"\(m[i].virtualBlock)\" data_begin=\"\(m[i].dataBlock)\" length=\"\(j - i)\" time=\"\(m[i].time)\"/>\n"
                    }
                    i = j
                }
                out += "  </device>\n"
            }
            out += "</superblock>\n"
            return out
        }

        /// Expected thin_ls EXCLUSIVE_BLOCKS per device: mappings whose data block appears
        /// in exactly one mapping across all devices.
        public func exclusiveCounts() -> [UInt64: Int] {
            var uses: [UInt64: Int] = [:]
            for d in devices { for m in d.mappings { uses[m.dataBlock, default: 0] += 1 } }
            var out: [UInt64: Int] = [:]
            for d in devices { out[d.id] = d.mappings.reduce(0) { $0 + (uses[$1.dataBlock] == 1 ? 1 : 0) } }
            return out
        }
    }

    /// A random pool with exactly `mappings` mapping entries in total (over all devices).
    public static func generate(seed: UInt64, mappings total: Int) -> Pool {
        var g = Generator(seed: seed, budget: total)
        return g.run()
    }

    private struct Generator {
        var rng: SeededRNG
        var budget: Int
        var time: UInt32 = 0
        var transaction: UInt64 = 0
        var nextData: UInt64 = 0
        var devices: [Device] = []

        init(seed: UInt64, budget: Int) {
            rng = SeededRNG(seed: seed)
            self.budget = budget
        }

        mutating func below(_ n: UInt64) -> UInt64 { n == 0 ? 0 : rng.next() % n }
        mutating func chance(_ percent: UInt64) -> Bool { below(100) < percent }

        /// A run of `n` fresh data blocks: mostly contiguous, sometimes scattered.
        mutating func allocate(_ n: Int) -> [UInt64] {
            if chance(10) { nextData += 1 + below(50) }  // leave a gap in the data device
            if chance(85) {
                let start = nextData
                nextData += UInt64(n)
                return (0..<UInt64(n)).map { start + $0 }
            }
            return (0..<n).map { _ in
                nextData += 1 + (chance(30) ? below(4) : 0)
                return nextData - 1
            }
        }

        /// Run lengths: many singles, many short runs, some long ones.
        mutating func runLength(max: Int) -> Int {
            let r = below(100)
            let n: Int
            if r < 35 { n = 1 } else if r < 80 { n = 2 + Int(below(15)) } else if r < 97 { n = 17 + Int(below(300)) } else { n = 300 + Int(below(3000)) }
            return Swift.max(1, Swift.min(n, max))
        }

        mutating func holeLength() -> UInt64 {
            let r = below(100)
            if r < 40 { return 0 }
            if r < 85 { return 1 + below(20) }
            if r < 98 { return 20 + below(2000) }
            return 10_000 + below(1_000_000)
        }

        /// Fresh runs placed in the holes of `existing` and past its end, `count` mappings in all.
        mutating func writeNew(_ count: Int, into existing: [Mapping], minTime: UInt32) -> [Mapping] {
            if count == 0 { return existing }
            var added: [Mapping] = []
            var placed = 0
            var cursor: UInt64 = existing.isEmpty ? below(chance(50) ? 10 : 5000) : 0
            var k = 0  // index into existing: first mapping with virtualBlock >= cursor
            while placed < count {
                cursor += holeLength()
                while k < existing.count, existing[k].virtualBlock < cursor { k += 1 }
                // Room before the next existing mapping.
                let room = k < existing.count ? existing[k].virtualBlock - cursor : UInt64.max
                if room == 0 {
                    cursor = existing[k].virtualBlock + 1
                    continue
                }
                let n = Int(Swift.min(UInt64(runLength(max: count - placed)), room))
                let data = allocate(n)
                // Later writes (after snapshots still to come) carry later times; the pool's
                // time is raised to the largest mapping time at the end.
                let maxTime = time + (chance(40) ? UInt32(below(4)) : 0)
                let runTime = maxTime - UInt32(below(UInt64(maxTime - minTime) + 1))
                let mixed = chance(15)
                for x in 0..<n {
                    let t = mixed ? maxTime - UInt32(below(UInt64(maxTime - minTime) + 1)) : runTime
                    added.append(Mapping(virtualBlock: cursor + UInt64(x), dataBlock: data[x], time: t))
                }
                placed += n
                cursor += UInt64(n)
                if existing.isEmpty == false, k >= existing.count, chance(50) { cursor += below(100) }
            }
            return merge(existing, added)
        }

        func merge(_ a: [Mapping], _ b: [Mapping]) -> [Mapping] {
            var out: [Mapping] = []
            out.reserveCapacity(a.count + b.count)
            var i = 0, j = 0
            while i < a.count || j < b.count {
                if j == b.count || (i < a.count && a[i].virtualBlock < b[j].virtualBlock) {
                    out.append(a[i]); i += 1
                } else {
                    out.append(b[j]); j += 1
                }
            }
            return out
        }

        /// Rewrites and discards some of `m` (the writes a live device sees after a snapshot).
        mutating func diverge(_ m: [Mapping], rewritePercent: UInt64, discardPercent: UInt64) -> [Mapping] {
            var out: [Mapping] = []
            out.reserveCapacity(m.count)
            var i = 0
            while i < m.count {
                let n = Swift.min(runLength(max: m.count - i), m.count - i)
                let r = below(100)
                if r < rewritePercent {
                    let data = allocate(n)
                    for x in 0..<n { out.append(Mapping(virtualBlock: m[i + x].virtualBlock, dataBlock: data[x], time: time)) }
                } else if r >= rewritePercent + discardPercent {
                    out.append(contentsOf: m[i..<(i + n)])
                }
                i += n
            }
            return out
        }

        mutating func freshID() -> UInt64 {
            while true {
                let id = chance(70) ? below(64) : below(1 << 24)
                if !devices.contains(where: { $0.id == id }) { return id }
            }
        }

        mutating func run() -> Pool {
            let seed = rng.seed
            let deviceCount = budget == 0 ? Int(below(4)) : 1 + Int(below(6))
            transaction = below(5)
            if chance(20) { time = UInt32(below(100)) }
            for n in 0..<deviceCount {
                let left = deviceCount - n
                let share = left == 1 ? budget : Int(below(UInt64(budget) / UInt64(left) * 2 + 1))
                let snapOf = devices.isEmpty || chance(35) ? nil : Int(below(UInt64(devices.count)))
                transaction += below(3)
                if let o = snapOf {
                    time += 1
                    devices[o].snapTime = time
                    var m = devices[o].mappings
                    let cap = Swift.min(share, budget)
                    if m.count > cap { m.removeLast(m.count - cap) }  // keep the budget
                    m = diverge(m, rewritePercent: below(40), discardPercent: below(10))
                    m = writeNew(Swift.max(0, cap - m.count), into: m, minTime: time)
                    budget -= m.count
                    devices.append(Device(id: freshID(), transaction: transaction, creationTime: time, snapTime: time, mappings: m))
                    // The origin keeps being written too.
                    if chance(60), devices[o].mappings.count > 0 {
                        let before = devices[o].mappings.count
                        devices[o].mappings = diverge(devices[o].mappings, rewritePercent: below(30), discardPercent: below(5))
                        budget += before - devices[o].mappings.count
                    }
                } else {
                    let m = writeNew(Swift.min(share, budget), into: [], minTime: time)
                    budget -= m.count
                    devices.append(Device(id: freshID(), transaction: transaction, creationTime: time, snapTime: time, mappings: m))
                }
            }
            // Whatever budget is left (discards give some back) goes to the last device.
            if budget > 0, !devices.isEmpty {
                let last = devices.count - 1
                devices[last].mappings = writeNew(budget, into: devices[last].mappings, minTime: devices[last].creationTime)
                budget = 0
            }
            transaction += below(1000)
            devices.sort { $0.id < $1.id }
            for d in devices { for m in d.mappings where m.time > time { time = m.time } }
            let sizes: [UInt32] = [128, 128, 256, 1024, 2048, 65536]
            return Pool(seed: seed, time: time, transaction: transaction, version: chance(80) ? 2 : 1, flags: chance(10) ? 1 : 0,
                        dataBlockSize: sizes[Int(below(UInt64(sizes.count)))],
                        dataBlockCount: nextData + (chance(20) ? 0 : below(100_000)) + (nextData == 0 ? 1 : 0),
                        devices: devices)
        }
    }
}

/// Restored random pools: XML → thin_restore → a metadata file.
public enum RandomPool {
    public struct RestoreError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Metadata file size (bytes) comfortably holding `pool` as thin_restore lays it out.
    public static func metadataSize(for pool: RandomPoolXML.Pool) -> UInt64 {
        let leaves = UInt64(pool.mappingCount) / 60 + UInt64(pool.devices.count) * 4
        let dataBitmaps = pool.dataBlockCount / 16320 + 2
        let blocks = 256 + leaves * 2 + dataBitmaps * 2
        return Swift.max(4 << 20, (blocks * 4096 + (1 << 20) - 1) / (1 << 20) * (1 << 20))
    }

    /// Writes `pool`'s XML into `dir`, restores it into a fresh metadata file and returns its path.
    public static func restore(_ pool: RandomPoolXML.Pool, into dir: TempDir, name: String? = nil) throws -> String {
        let base = name ?? "pool-\(pool.seed)-\(pool.mappingCount)"
        let xmlPath = dir.file("\(base).xml")
        try pool.xml().write(toFile: xmlPath, atomically: false, encoding: .utf8)
        let meta = dir.sparseFile("\(base).meta", size: metadataSize(for: pool))
        let r = try Tool.run("thin_restore", ["-i", xmlPath, "-o", meta])
        guard r.ok else {
            throw RestoreError(description: "thin_restore failed for seed \(pool.seed) (\(pool.mappingCount) mappings): \(r.stderr)\(r.stdout)")
        }
        return meta
    }

    /// Generates a pool for `seed` with `mappings` mappings, restores it, returns the metadata path.
    public static func restore(seed: UInt64, mappings: Int, into dir: TempDir) throws -> String {
        try restore(RandomPoolXML.generate(seed: seed, mappings: mappings), into: dir)
    }
}
