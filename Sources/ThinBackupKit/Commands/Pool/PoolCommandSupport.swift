import ArgumentParser
import Foundation
import PoolCore

/// `--pool DIR`, shared by the pool commands that change a pool.
public struct PoolDirOption: ParsableArguments {
    @Option(name: .long, help: "The pool folder (holding metadata, data and pool.json).")
    public var pool: String

    public init() {}

    /// Opens the pool; low-space events and open warnings become warning lines on stderr.
    func open() throws -> ThinPool {
        let p = try ThinPool(folder: pool)
        for w in p.warnings { ThinBackupMain.writeStderr("thin-backup: warning: \(w)\n") }
        p.onEvent = { e in ThinBackupMain.writeStderr("thin-backup: warning: \(e)\n") }
        return p
    }
}

/// A byte size: a number with an optional k/m/g/t suffix (powers of 1024), e.g. 64k, 100M, 1G.
public struct ByteSize: ExpressibleByArgument, Sendable {
    public let bytes: UInt64

    public init?(argument: String) {
        let s = argument.lowercased().replacingOccurrences(of: "ib", with: "").replacingOccurrences(of: "b", with: "")
        var mult: UInt64 = 1
        var digits = Substring(s)
        if let last = s.last, let m = ["k": UInt64(1) << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40][String(last)] {
            mult = m
            digits = digits.dropLast()
        }
        guard let n = UInt64(digits), n.multipliedReportingOverflow(by: mult).overflow == false else { return nil }
        bytes = n * mult
    }

    /// Shown in `--help` as the default: the largest exact unit, e.g. `64k`.
    public var defaultValueDescription: String {
        for (unit, shift) in [("t", 40), ("g", 30), ("m", 20), ("k", 10)] where bytes > 0 && bytes % (UInt64(1) << UInt64(shift)) == 0 {
            return "\(bytes >> UInt64(shift))\(unit)"
        }
        return "\(bytes)"
    }
}

extension ThinPool {
    /// Commits after a CLI command; a failure is reported as one line.
    func commitForCLI() throws {
        try commit()
    }
}

/// Refuses to replace an existing regular file unless `force` (devices, FIFOs and /dev/null are written in place).
func refuseOverwrite(_ path: String, force: Bool) throws {
    var isDir: ObjCBool = false
    guard !force, FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return }
    if isDir.boolValue { throw CommandFailure("\(path) is a folder") }
    let attrs = try? FileManager.default.attributesOfItem(atPath: path)
    if attrs?[.type] as? FileAttributeType == .typeRegular {
        throw CommandFailure("\(path) exists: pass --force to overwrite it")
    }
}
