import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// Runs `thin-backup delta` in-process and thin_delta (the oracle) beside it.
enum DeltaRunner {
    /// Our output for `arguments` (after `delta`).
    static func ours(_ arguments: [String]) throws -> String {
        let command = try DeltaCommand.parse(arguments)
        let out = TextOutput.memory()
        try command.run(to: out)
        return out.text
    }

    /// thin_delta 0.9.0's output; fails the test if it fails.
    static func oracle(_ path: String, _ a: UInt64, _ b: UInt64, _ extra: [String] = []) throws -> String {
        let r = try Tool.run("thin_delta", ["--snap1", "\(a)", "--snap2", "\(b)"] + extra + [path])
        guard r.ok else { throw ModelFailure("thin_delta \(a) \(b) \(extra) \(path): \(r.stderr)") }
        return r.stdout
    }

    /// thin_delta's plain output without its `<same …/>` lines.
    static func withoutSame(_ plain: String) -> String {
        plain.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("    <same ") }.joined(separator: "\n")
    }

    /// thin_delta's verbose output without its `<same>` groups, neighbouring groups of one kind joined.
    static func verboseWithoutSame(_ verbose: String) -> String {
        var lines: [Substring] = []
        var inSame = false
        for line in verbose.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "    <same>" { inSame = true; continue }
            if line == "    </same>" { inSame = false; continue }
            if inSame { continue }
            // "</k>" directly followed by "<k>": one group.
            if line.hasPrefix("    <"), !line.hasPrefix("    </"), let last = lines.last,
               last == "    </" + line.dropFirst(5) {
                lines.removeLast()
                continue
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Device ids of a metadata file, through thin_dump (-m: of the held snapshot).
    static func devices(_ path: String, metadataSnap: Bool = false) throws -> [UInt64] {
        let r = try Tool.run("thin_dump", (metadataSnap ? ["-m"] : []) + [path])
        guard r.ok else { throw ModelFailure("thin_dump \(path): \(r.stderr)") }
        return r.stdout.split(separator: "\n").compactMap { line -> UInt64? in
            guard let range = line.range(of: "<device dev_id=\"") else { return nil }
            return UInt64(line[range.upperBound...].prefix { $0 != "\"" })
        }
    }
}

struct ModelFailure: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}
