import Foundation
@testable import PoolCore
import TestSupport

/// Where the kernel-fidelity tests find their inputs (made by scripts/kernel-tests.sh with
/// the project's VM harness, Tests/VM/fixture/fixture.sh) and how they run the built
/// `thin-backup`. The suites are enabled only when scripts/kernel-tests.sh sets these
/// variables (`.enabled(if:)`), so a plain `swift test` never boots a VM.
enum KernelEnv {
    static let env = ProcessInfo.processInfo.environment

    /// Folder of scenario outputs (`basic`, `large-s1`, ...), each a fixture.sh OUTDIR.
    static var fixturesRoot: String? { env["TB_KERNEL_FIXTURES"] }
    /// Folder where the take-over inputs are prepared (pools built by ThinBackup).
    static var prepareRoot: String? { env["TB_KERNEL_PREPARE"] }
    /// Folder of take-over results: `<name>/input` (prepared pool) and `<name>/out` (make-fixture OUTDIR).
    static var takeoverRoot: String? { env["TB_KERNEL_TAKEOVER"] }

    static let skipFixtures = "TB_KERNEL_FIXTURES not set: kernel fixture checks skipped (run scripts/kernel-tests.sh)"
    static let skipPrepare = "TB_KERNEL_PREPARE not set: no take-over pools prepared (run scripts/kernel-tests.sh)"
    static let skipTakeover = "TB_KERNEL_TAKEOVER not set: kernel take-over checks skipped (run scripts/kernel-tests.sh)"

    /// Scenario output folders (those holding a kfix-manifest/1 manifest), sorted.
    static var scenarios: [String] {
        guard let root = fixturesRoot else { return [] }
        return subfolders(of: root).filter { dir in
            (try? Manifest(path: "\(dir)/manifest.json"))?.string("format") == "kfix-manifest/1"
        }
    }

    /// Take-over case folders (those holding `out/manifest.json`), sorted.
    static var takeovers: [String] {
        guard let root = takeoverRoot else { return [] }
        return subfolders(of: root).filter { FileManager.default.fileExists(atPath: "\($0)/out/manifest.json") }
    }

    static func subfolders(of root: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.sorted().map { "\(root)/\($0)" }.filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && isDir.boolValue
        }
    }
}

/// A parsed manifest.json (kfix-manifest/1 or kfix-takeover-manifest/1).
struct Manifest {
    let root: [String: Any]

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw KernelTestError("\(path): not a JSON object")
        }
        root = obj
    }

    /// The value at a dotted path, e.g. `metadata_snapshot.held_root_block`.
    func value(_ path: String) -> Any? {
        var cur: Any? = root
        for part in path.split(separator: ".") {
            cur = (cur as? [String: Any])?[String(part)]
        }
        return cur is NSNull ? nil : cur
    }

    func string(_ path: String) -> String? { value(path) as? String }
    func int(_ path: String) -> Int? { (value(path) as? NSNumber)?.intValue }
    func bool(_ path: String) -> Bool? { (value(path) as? NSNumber)?.boolValue }
    func dict(_ path: String) -> [String: Any] { value(path) as? [String: Any] ?? [:] }
    func list(_ path: String) -> [[String: Any]] { value(path) as? [[String: Any]] ?? [] }
}

struct KernelTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// The built `thin-backup`.
enum CLI {
    /// $TB_BIN, else `thin-backup` beside the test bundle, else .build/debug/thin-backup.
    static let binary: String = {
        if let b = KernelEnv.env["TB_BIN"] { return b }
        let fm = FileManager.default
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for _ in 0 ..< 4 {
            let cand = dir.appendingPathComponent("thin-backup").path
            if fm.isExecutableFile(atPath: cand) { return cand }
            dir = dir.deletingLastPathComponent()
        }
        return "\(Repo.root)/.build/debug/thin-backup"
    }()

    nonisolated(unsafe) private static var helpCache: [String: String] = [:]
    private static let lock = NSLock()

    /// `thin-backup <path...> --help` output ("" when the binary is missing).
    static func help(_ path: [String]) -> String {
        let key = path.joined(separator: " ")
        lock.lock()
        if let h = helpCache[key] { lock.unlock(); return h }
        lock.unlock()
        let r = try? Tool.run(binary, path + ["--help"])
        let text = (r?.stdout ?? "") + (r?.stderr ?? "")
        lock.lock(); helpCache[key] = text; lock.unlock()
        return text
    }

    static func run(_ args: [String]) throws -> Tool.Result { try Tool.run(binary, args) }
}

/// sha256 of a byte stream, by piping it through `sha256sum` (no crypto package needed).
final class SHA256Pipe {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private(set) var count: UInt64 = 0

    init() throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum"]
        process.standardInput = input
        process.standardOutput = output
        try process.run()
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(bytes))
        count += UInt64(bytes.count)
    }

    func finish() throws -> String {
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: out, as: UTF8.self).prefix(64))
    }

    /// The sha256 of a thin device's `size` bytes as `reader` reads them, with the blocks in
    /// `overrides` (by virtual block) replaced by their bytes.
    static func device(_ reader: ThinDeviceReader, size: UInt64, overrides: [UInt64: [UInt8]] = [:]) throws -> String {
        let pipe = try SHA256Pipe()
        var v: UInt64 = 0
        try reader.read(size: size) { chunk in
            if let o = overrides[v] {
                try o.withUnsafeBytes { try pipe.write(UnsafeRawBufferPointer(rebasing: $0[0 ..< chunk.count])) }
            } else {
                try pipe.write(chunk)
            }
            v += 1
        }
        return try pipe.finish()
    }

    static func file(_ path: String) throws -> String {
        let r = try Tool.run("sha256sum", [path])
        guard r.ok else { throw KernelTestError("sha256sum \(path): \(r.stderr)") }
        return String(r.stdout.prefix(64))
    }
}

/// `<sha256> thinN <bytes>` lines (vm/sha256-*.txt) → [id: (sha, bytes)].
func readKernelHashes(_ path: String) throws -> [UInt64: (sha: String, bytes: UInt64)] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var out: [UInt64: (String, UInt64)] = [:]
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count >= 3, f[1].hasPrefix("thin"), let id = UInt64(f[1].dropFirst(4)), let n = UInt64(f[2]) else {
            continue
        }
        out[id] = (String(f[0]), n)
    }
    return out
}

/// First differing line of two texts, for a readable failure message.
func firstDifference(_ a: String, _ b: String) -> String {
    let la = a.split(separator: "\n", omittingEmptySubsequences: false)
    let lb = b.split(separator: "\n", omittingEmptySubsequences: false)
    for i in 0 ..< max(la.count, lb.count) {
        let x = i < la.count ? String(la[i]) : "<end>"
        let y = i < lb.count ? String(lb[i]) : "<end>"
        if x != y { return "line \(i + 1): got «\(x)» expected «\(y)»" }
    }
    return "identical"
}
