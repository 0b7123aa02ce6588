import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

@Suite("--version: one version, shown by --version, serve and --json")
struct VersionTests {
    @Test func versionIsSemanticVersion() {
        let parts = ThinBackupVersion.current.split(separator: ".", omittingEmptySubsequences: false)
        #expect(parts.count == 3 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) },
                "\(ThinBackupVersion.current) is not MAJOR.MINOR.PATCH (the .deb version is taken from it)")
    }

    @Test func versionFlagPrintsTheConstant() throws {
        let r = try ThinBackupBinary.run(["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "thin-backup \(ThinBackupVersion.current)\n")
    }

    /// package-deb.sh reads the version from the one constant, not a second copy.
    @Test func packageScriptReadsTheConstant() throws {
        let r = try Tool.run("bash", [Repo.root + "/scripts/package-deb.sh", "--print-version"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == ThinBackupVersion.current + "\n")
    }

    /// Every --json summary carries "version" beside its own keys (which stay as they were).
    @Test func jsonSummaryCarriesVersion() throws {
        struct Sample: Encodable { var id = 7; var kind = "full" }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let text = String(decoding: try enc.encode(VersionedReport(Sample())), as: UTF8.self)
        #expect(text == #"{"id":7,"kind":"full","version":"\#(ThinBackupVersion.current)"}"#)

        let dir = TempDir("tb-version")
        let pool = dir.file("pool")
        let p = try ThinPool.create(folder: pool, dataSize: 4 << 20)
        try p.createThin(1, virtualSize: 1 << 20)
        try p.write(1, offset: 0, [UInt8](repeating: 9, count: 4096))
        try p.commit()
        p.close()
        let r = try ThinBackupBinary.run(["backup", "--pool", pool, "--dev", "1", "--repo", dir.file("repo"), "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(obj?["version"] as? String == ThinBackupVersion.current)
        #expect(obj?["kind"] as? String == "full")
    }
}

@Suite("serve: the startup log line names the version, in JSON when asked")
struct ServeStartupLogTests {
    @Test func startupLineCarriesVersion() throws {
        let dir = TempDir("tb-serve-log")
        try "tok\n".write(toFile: dir.file("token"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.file("spool"), withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try ThinBackupBinary.required())
        p.arguments = ["serve", "--spool", dir.file("spool"), "--listen", "127.0.0.1:0", "--token-file", dir.file("token"),
                       "--port-file", dir.file("port"), "--log-format", "json"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        var port: String?
        for _ in 0..<200 where port == nil {
            port = (try? String(contentsOfFile: dir.file("port"), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if port == nil { usleep(50_000) }
        }
        // SIGKILL: children of the test runner inherit a mask blocking SIGTERM.
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let first = text.split(separator: "\n").first.map(String.init) ?? ""
        let obj = try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: String]
        #expect(obj?["message"] == "thin-backup \(ThinBackupVersion.current) listening on 127.0.0.1:\(port ?? "?")", "\(text)")
        #expect(obj?["level"] == "info" && obj?["label"] == "thin-backup.serve")
    }
}

@Suite("--version alone is answered before ArgumentParser runs, with ArgumentParser's own text")
struct VersionFastPathTests {
    /// The fast path prints exactly what ArgumentParser prints for `--version` (its CleanExit
    /// message), so the shortcut cannot drift from the parsed answer.
    @Test func fastPathMatchesArgumentParser() throws {
        let fast = try #require(ThinBackupMain.versionFastPath(["--version"]))
        var parsed: String?
        do {
            _ = try RootCommand.parseAsRoot(["--version"])
        } catch {
            parsed = RootCommand.message(for: error)
            #expect(RootCommand.exitCode(for: error) == .success)
        }
        #expect(parsed == fast)
        #expect(fast == "thin-backup \(ThinBackupVersion.current)")
    }

    /// Anything but `--version` alone goes to ArgumentParser as before.
    @Test func otherArgumentsAreParsed() {
        for args in [[], ["--help"], ["--version", "--help"], ["send", "--version"], ["--versio"], ["help"]] {
            #expect(ThinBackupMain.versionFastPath(args) == nil, "\(args)")
        }
    }
}
