import Foundation
@testable import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Runs our commands in-process and the oracle tools, for the read-side tests.
enum Read {
    static let allLsFields = PoolListing.Field.allCases.map(\.rawValue).joined(separator: ",")
    static let defaultLsFields = PoolListing.defaultFields.map(\.rawValue).joined(separator: ",")

    /// `thin-backup dump <args>` captured.
    static func dump(_ args: [String]) throws -> String {
        let out = TextOutput.memory()
        try Dump.parse(args).run(to: out)
        return out.text
    }

    /// Like `dump`, but returns the error's one-line description and whatever reached the output.
    static func dumpFailure(_ args: [String]) -> (error: String?, output: String) {
        let out = TextOutput.memory()
        do {
            try Dump.parse(args).run(to: out)
            return (nil, out.text)
        } catch {
            return (String(describing: error), out.text)
        }
    }

    static func ls(_ args: [String]) throws -> String {
        let out = TextOutput.memory()
        try PoolCommand.Ls.parse(args).run(to: out)
        return out.text
    }

    static func check(_ path: String) throws -> String {
        let out = TextOutput.memory()
        try PoolCommand.Check.parse(["--metadata", path]).run(to: out)
        return out.text
    }

    static func checkFailure(_ path: String) -> String? {
        do {
            _ = try check(path)
            return nil
        } catch {
            return String(describing: error)
        }
    }

    /// The data blocks thin_dump's XML maps (ranges expanded), and its nr_data_blocks.
    static func dataBlocks(inDump xml: String) -> (blocks: Set<UInt64>, nrDataBlocks: UInt64) {
        func attr(_ line: Substring, _ name: String) -> UInt64 {
            let r = line.range(of: " \(name)=\"")!
            let rest = line[r.upperBound...]
            return UInt64(rest[..<rest.firstIndex(of: "\"")!])!
        }
        var out = Set<UInt64>()
        var nr: UInt64 = 0
        for line in xml.split(separator: "\n") {
            if line.hasPrefix("<superblock ") { nr = attr(line, "nr_data_blocks") }
            else if line.contains("<single_mapping ") { out.insert(attr(line, "data_block")) }
            else if line.contains("<range_mapping ") {
                let d = attr(line, "data_begin"), n = attr(line, "length")
                for i in 0..<n { out.insert(d + i) }
            }
        }
        return (out, nr)
    }

    /// Device ids in a metadata file, read with thin_dump --skip-mappings (the oracle).
    static func deviceIDs(_ path: String, snap: Bool = false) throws -> [UInt64] {
        let r = try Tool.run("thin_dump", [path, "--skip-mappings"] + (snap ? ["-m"] : []))
        return r.stdout.split(separator: "\n").compactMap { line in
            guard let a = line.range(of: "dev_id=\"") else { return nil }
            let rest = line[a.upperBound...]
            return UInt64(rest[..<rest.firstIndex(of: "\"")!])
        }
    }
}

/// Byte-level surgery on a copy of a metadata image.
struct Surgery {
    let path: String

    func read(_ block: UInt64) throws -> [UInt8] {
        try FileMetadataDevice(path: path).readBlock(block)
    }

    func write(_ block: UInt64, _ bytes: [UInt8]) throws {
        let dev = try FileMetadataDevice(path: path, writable: true)
        try dev.writeBlock(block, bytes)
    }

    /// Applies `change` to block `block`, then reseals it as a `kind` block (nil: leave the checksum stale).
    func patch(_ block: UInt64, reseal kind: BlockKind?, _ change: (inout [UInt8]) -> Void) throws {
        var b = try read(block)
        change(&b)
        if let kind {
            // Keep whatever own-location the change wrote; only recompute the checksum.
            Checksum.seal(&b, kind: kind, location: b.le64(8))
        }
        try write(block, b)
    }

    func truncate(blocks: UInt64) throws {
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: blocks * 4096)
        try h.close()
    }
}
