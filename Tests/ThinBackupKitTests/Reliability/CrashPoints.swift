import Foundation
import PoolCore
@testable import ThinBackupKit
import TestSupport

/// Runs the built binary with a crash point (`THIN_BACKUP_FAULT`, see PoolCore's FaultInjection).
enum CrashPoints {
    static var binary: String { Repo.root + "/.build/debug/thin-backup" }

    /// Runs `arguments` with `fault` ("count:FILE", "kill:N", "fail:N", "hang:N", or nil for none):
    /// exit status, or 128 + the signal that ended the process.
    static func run(_ arguments: [String], fault: String?, stdin: Data? = nil) throws -> Tool.Result {
        try Tool.run(binary, arguments, stdin: stdin, environment: ["THIN_BACKUP_FAULT": fault])
    }

    /// The durability steps `arguments` takes, in order ("sync", "rename", "commit").
    static func steps(_ arguments: [String], in dir: TempDir) throws -> [String] {
        let file = dir.file("steps-\(UInt32.random(in: 0 ... .max))")
        let r = try run(arguments, fault: "count:\(file)")
        guard r.ok else { throw JobError("counting run failed: \(r.stderr)") }
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// A byte-for-byte copy of a pool folder (sparse data file kept sparse).
    static func copyPool(_ from: String, _ to: String) throws {
        let r = try Tool.run("cp", ["-a", "--sparse=always", from, to])
        guard r.ok else { throw JobError("cp: \(r.stderr)") }
    }

    /// Content digest recomputed from the device's bytes (nil when the device does not exist).
    static func deviceDigest(_ pool: String, _ dev: UInt64) throws -> Digest128? {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        guard try p.deviceExists(dev) else { return nil }
        return try p.contentDigest(of: dev, blockSize: p.blockSize)
    }
}

import Delta
