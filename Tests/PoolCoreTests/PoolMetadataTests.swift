import Foundation
import Testing
@testable import PoolCore
import TestSupport

/// Oracle helpers: thin_check and thin_dump on a metadata file.
enum Oracle {
    static func check(_ path: String) throws -> Tool.Result {
        try Tool.run("thin_check", [path])
    }

    /// thin_dump's mappings per device: dev → [vblock: dataBlock], plus each device's header attributes.
    static func dump(_ path: String, metadataSnap: Bool = false) throws -> (devices: [UInt64: [UInt64: UInt64]], details: [UInt64: [String: UInt64]], root: [String: String]) {
        let r = try Tool.run("thin_dump", (metadataSnap ? ["-m"] : []) + [path])
        guard r.ok else { throw Failure("thin_dump failed: \(r.stderr)") }
        var devs: [UInt64: [UInt64: UInt64]] = [:]
        var details: [UInt64: [String: UInt64]] = [:]
        var root: [String: String] = [:]
        var cur: UInt64 = 0
        for line in r.stdout.split(separator: "\n") {
            let a = attrs(String(line))
            if line.contains("<superblock") { root = a }
            else if line.contains("<device ") {
                cur = UInt64(a["dev_id"]!)!
                devs[cur] = [:]
                details[cur] = a.compactMapValues { UInt64($0) }
            } else if line.contains("<single_mapping") {
                devs[cur]![UInt64(a["origin_block"]!)!] = UInt64(a["data_block"]!)!
            } else if line.contains("<range_mapping") {
                let o = UInt64(a["origin_begin"]!)!, d = UInt64(a["data_begin"]!)!, n = UInt64(a["length"]!)!
                for i in 0..<n { devs[cur]![o + i] = d + i }
            }
        }
        return (devs, details, root)
    }

    static func attrs(_ line: String) -> [String: String] {
        var out: [String: String] = [:]
        let parts = line.split(separator: "\"", omittingEmptySubsequences: false)
        var i = 0
        while i + 1 < parts.count {
            let key = parts[i].split(separator: " ").last.map { String($0).replacingOccurrences(of: "=", with: "") } ?? ""
            out[key] = String(parts[i + 1])
            i += 2
        }
        return out
    }
}

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}

@Suite struct PoolMetadataTests {
    @Test func formatCreateInsertCommitPassesThinCheck() throws {
        let dir = TempDir("pm")
        let path = dir.sparseFile("meta", size: 4 << 20)
        let dev = try FileMetadataDevice(path: path, writable: true)
        let md = try PoolMetadata(formatting: dev, dataBlockSectors: 128, dataBlocks: 5000)
        try md.createThin(1)
        try md.createThin(7)
        var expected: [UInt64: [UInt64: UInt64]] = [1: [:], 7: [:]]
        for v in stride(from: UInt64(0), to: 1200, by: 1) {
            let b = try md.allocateDataBlock()!
            try md.insertMapping(1, v * 3, BlockTime(dataBlock: b, time: 0))
            expected[1]![v * 3] = b
        }
        let b = try md.allocateDataBlock()!
        try md.insertMapping(7, 42, BlockTime(dataBlock: b, time: 0))
        expected[7]![42] = b
        try md.commit()
        let c = try Oracle.check(path)
        #expect(c.ok, "\(c.stdout)\(c.stderr)")
        let d = try Oracle.dump(path)
        #expect(d.devices == expected)
        #expect(d.details[1]?["mapped_blocks"] == 1200)
        #expect(d.root["nr_data_blocks"] == "5000")
    }
}
