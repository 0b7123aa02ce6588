import Foundation
import Testing
import TestSupport

/// The random-pool generator itself: exact sizes, thin_restore accepts it, thin_check passes,
/// and thin_dump reads back exactly the model's mappings.
@Suite struct RandomPoolTests {
    /// Parses thin_dump XML into per-device (vblock, dblock, time) lists (expanding ranges).
    static func dumpedMappings(_ xml: String) -> [UInt64: [RandomPoolXML.Mapping]] {
        var out: [UInt64: [RandomPoolXML.Mapping]] = [:]
        var dev: UInt64 = 0
        func attr(_ line: Substring, _ name: String) -> UInt64 {
            let r = line.range(of: " \(name)=\"")!
            let rest = line[r.upperBound...]
            return UInt64(rest[..<rest.firstIndex(of: "\"")!])!
        }
        for line in xml.split(separator: "\n") {
            let t = line.drop { $0 == " " }
            if t.hasPrefix("<device ") {
                dev = attr(t, "dev_id"); out[dev] = []
            } else if t.hasPrefix("<single_mapping ") {
                out[dev]!.append(.init(virtualBlock: attr(t, "origin_block"), dataBlock: attr(t, "data_block"), time: UInt32(attr(t, "time"))))
            } else if t.hasPrefix("<range_mapping ") {
                let v = attr(t, "origin_begin"), d = attr(t, "data_begin"), n = attr(t, "length"), tm = UInt32(attr(t, "time"))
                for i in 0..<n { out[dev]!.append(.init(virtualBlock: v + i, dataBlock: d + i, time: tm)) }
            }
        }
        return out
    }

    @Test(arguments: [(UInt64(1), 0), (2, 0), (3, 1), (4, 1), (5, 2), (6, 37), (7, 500), (8, 3000), (9, 20_000), (10, 100_000)])
    func restoresAndChecks(seed: UInt64, mappings: Int) throws {
        try Tool.requireThinTools()
        let pool = RandomPoolXML.generate(seed: seed, mappings: mappings)
        #expect(pool.mappingCount == mappings, "seed \(seed)")
        let dir = TempDir("randpool")
        defer { withExtendedLifetime(dir) {} }
        let meta = try RandomPool.restore(pool, into: dir)
        let check = try Tool.run("thin_check", [meta])
        #expect(check.ok, "seed \(seed): thin_check: \(check.stderr)")
        let dump = try Tool.run("thin_dump", [meta])
        try #require(dump.ok, "seed \(seed): thin_dump: \(dump.stderr)")
        let got = Self.dumpedMappings(dump.stdout)
        #expect(got.keys.sorted() == pool.devices.map(\.id), "seed \(seed)")
        for d in pool.devices {
            #expect(got[d.id] == d.mappings, "seed \(seed) device \(d.id)")
        }
        #expect(dump.stdout.contains("time=\"\(pool.time)\" transaction=\"\(pool.transaction)\""), "seed \(seed)")
    }

    @Test func generatorIsDeterministicAndVaried() {
        let a = RandomPoolXML.generate(seed: 42, mappings: 5000).xml()
        let b = RandomPoolXML.generate(seed: 42, mappings: 5000).xml()
        #expect(a == b)
        // Across seeds we see snapshots sharing data blocks, rewrites, singles and ranges.
        var shared = 0, ranges = 0, singles = 0, multiDevice = 0
        for seed in UInt64(100)..<UInt64(120) {
            let p = RandomPoolXML.generate(seed: seed, mappings: 2000)
            let x = p.xml()
            if x.contains("<range_mapping") { ranges += 1 }
            if x.contains("<single_mapping") { singles += 1 }
            if p.devices.count > 1 { multiDevice += 1 }
            let excl = p.exclusiveCounts()
            if p.devices.contains(where: { excl[$0.id]! < $0.mappings.count }) { shared += 1 }
        }
        #expect(shared >= 5 && ranges >= 15 && singles >= 15 && multiDevice >= 10,
                "shared \(shared) ranges \(ranges) singles \(singles) multi \(multiDevice)")
    }
}
