import ArgumentParser
import Foundation
import PoolCore
import Testing
import TestSupport
@testable import ThinBackupKit

/// `merge --pool DIR --dev N --into ORIGIN`: a thin device over an external origin file has
/// exactly its mapped blocks written back into the origin (the kernel path is the same job with
/// the kernel's read as the check: Tests/VM/live/scenarios/50-origin-merge.sh).
@Suite("merge of a thin device into its external origin", .serialized)
struct OriginMergeIntoTests {
    static let bs = 65536
    static let blocks = 16

    /// The exit code and message `thin-backup ARGS` ends with (0, "" on success).
    func run(_ args: [String]) -> (code: Int32, message: String) {
        var command: any ParsableCommand
        do {
            command = try RootCommand.parseAsRoot(args)
        } catch {
            return ExitStatus.argumentParser(error)
        }
        do {
            try command.run()
            return (0, "")
        } catch {
            return ExitStatus.of(error)
        }
    }

    struct Fixture {
        let dir: TempDir
        let pool: String
        let origin: String
        /// What device 1 reads, built from the writes below (not by the code under test).
        var model: [UInt8]
    }

    /// Origin: 16 random blocks. Device 1 over it: new data at blocks 2-3, zeros written at 7,
    /// half of block 10 written (the pool copies the origin's block first), block 12 written
    /// then discarded (unmapped again: it reads the origin).
    func fixture(_ label: String, deviceBlocks: Int = blocks, originBlocks: Int = blocks) throws -> Fixture {
        let dir = TempDir(label)
        let origin = dir.file("origin.img")
        let originBytes = OriginMergeTests.pattern(41, originBlocks * Self.bs)
        try Data(originBytes).write(to: URL(fileURLWithPath: origin))
        let path = dir.file("pool")
        let p = try ThinPool.create(folder: path, dataSize: 8 << 20, blockSize: UInt64(Self.bs))
        try p.createThin(1, virtualSize: UInt64(deviceBlocks * Self.bs), originFile: origin)
        var model = originBytes + [UInt8](repeating: 0, count: max(0, deviceBlocks - originBlocks) * Self.bs)
        let newer = OriginMergeTests.pattern(42, 2 * Self.bs)
        try p.write(1, offset: UInt64(2 * Self.bs), newer)
        model.replaceSubrange(2 * Self.bs ..< 4 * Self.bs, with: newer)
        try p.write(1, offset: UInt64(7 * Self.bs), [UInt8](repeating: 0, count: Self.bs))
        model.replaceSubrange(7 * Self.bs ..< 8 * Self.bs, with: [UInt8](repeating: 0, count: Self.bs))
        let half = OriginMergeTests.pattern(43, Self.bs / 2)
        try p.write(1, offset: UInt64(10 * Self.bs), half)
        model.replaceSubrange(10 * Self.bs ..< 10 * Self.bs + Self.bs / 2, with: half)
        try p.write(1, offset: UInt64(12 * Self.bs), OriginMergeTests.pattern(44, Self.bs))
        try p.discard(1, blocks: 12 ..< 13)
        try p.commit()
        p.close()
        return Fixture(dir: dir, pool: path, origin: origin, model: model)
    }

    func mapped(_ pool: String, _ dev: UInt64) throws -> [UInt64] {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        var out: [UInt64] = []
        try p.currentView().live.forEachMapping(of: dev) { v, _ in out.append(v) }
        return out
    }

    @Test func theOriginReadsAsTheDeviceDidAndResetLeavesItEmpty() throws {
        let f = try fixture("omerge-ok")
        #expect(try OriginMergeTests().poolRead(f.pool, 1, f.dir) == f.model)
        #expect(try mapped(f.pool, 1) == [2, 3, 7, 10])
        let access = UserspacePool(folder: f.pool)
        let report = try runOriginMerge(OriginMergeRequest(pool: access, dev: 1, origin: f.origin))
        access.close()
        #expect(report.mappedBlocks == 4 && report.bytesWritten == UInt64(4 * Self.bs), "exactly the 4 mapped blocks are written")
        #expect(report.verifiedAgainst == "the pool's read of thin device 1")
        #expect(try fileBytes(f.origin) == f.model, "the origin holds the device's bytes")
        #expect(try mapped(f.pool, 1) == [2, 3, 7, 10], "without --reset the device keeps its blocks")
        #expect(try OriginMergeTests().poolRead(f.pool, 1, f.dir) == f.model)

        let again = run(["merge", "--pool", f.pool, "--dev", "1", "--into", f.origin, "--reset", "-q"])
        #expect(again.code == 0, "\(again.message)")
        #expect(try mapped(f.pool, 1).isEmpty, "--reset: no mapped block left")
        #expect(try OriginMergeTests().poolRead(f.pool, 1, f.dir) == f.model, "the empty device reads the updated origin")
        let p = try ThinPool(folder: f.pool, readOnly: true)
        #expect(try p.virtualSize(of: 1) == UInt64(Self.blocks * Self.bs))
        p.close()
        let check = try thinCheck(f.pool)
        #expect(check.ok, "thin_check: \(check.stderr)")
    }

    /// Each refusal: exit 1, a line naming the problem, origin and device exactly as before.
    func expectRefused(_ f: Fixture, _ args: [String], _ words: String, dev: UInt64 = 1) throws {
        let before = try fileBytes(f.origin)
        let maps = try mapped(f.pool, dev)
        let r = run(args)
        #expect(r.code == 1, "exit \(r.code): \(r.message)")
        #expect(r.message.contains(words), "\(r.message)")
        #expect(!r.message.contains("\n"), "one line: \(r.message)")
        #expect(try fileBytes(f.origin) == before, "the origin is unchanged")
        #expect(try mapped(f.pool, dev) == maps, "the device is unchanged")
    }

    @Test func anotherFileThanTheDevicesOriginIsRefused() throws {
        let f = try fixture("omerge-other")
        let copy = f.dir.file("copy.img")
        try FileManager.default.copyItem(atPath: f.origin, toPath: copy)
        let before = try fileBytes(copy)
        try expectRefused(f, ["merge", "--pool", f.pool, "--dev", "1", "--into", copy], "reads its unmapped blocks from")
        #expect(try fileBytes(copy) == before)
    }

    @Test func aDeviceWithoutAnOriginIsRefused() throws {
        let f = try fixture("omerge-none")
        let p = try ThinPool(folder: f.pool)
        try p.createThin(2, virtualSize: UInt64(Self.blocks * Self.bs))
        try p.write(2, offset: 0, OriginMergeTests.pattern(45, Self.bs))
        try p.commit()
        p.close()
        try expectRefused(f, ["merge", "--pool", f.pool, "--dev", "2", "--into", f.origin], "has no external origin", dev: 2)
    }

    @Test func anotherDeviceOverTheSameOriginIsRefused() throws {
        let f = try fixture("omerge-snap")
        let p = try ThinPool(folder: f.pool)
        try p.snapshot(origin: 1, as: 5)
        try p.commit()
        p.close()
        try expectRefused(f, ["merge", "--pool", f.pool, "--dev", "1", "--into", f.origin], "thin devices 5 also read")
    }

    @Test func anOriginTooSmallForTheMappedBlocksIsRefused() throws {
        let f = try fixture("omerge-small", deviceBlocks: 20, originBlocks: 12)
        let p = try ThinPool(folder: f.pool)
        try p.write(1, offset: UInt64(15 * Self.bs), OriginMergeTests.pattern(46, Self.bs))
        try p.commit()
        p.close()
        try expectRefused(f, ["merge", "--pool", f.pool, "--dev", "1", "--into", f.origin], "past the end of")
    }

    /// A child process holding `path` open on its descriptor 3 (`redirect`: ">>" writes, "<" reads).
    func holder(_ path: String, _ redirect: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec 3\(redirect)'\(path)'; exec sleep 20"]
        try p.run()
        var tries = 0
        while (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(p.processIdentifier)/fd/3")) == nil, tries < 300 {
            usleep(10_000)
            tries += 1
        }
        return p
    }

    @Test func anOriginOpenForWritingIsRefusedNamingTheWriter() throws {
        let f = try fixture("omerge-writer")
        let writer = try holder(f.origin, ">>")
        let reader = try holder(f.origin, "<")
        defer { kill(reader.processIdentifier, SIGKILL); reader.waitUntilExit() }
        try expectRefused(f, ["merge", "--pool", f.pool, "--dev", "1", "--into", f.origin], "pid \(writer.processIdentifier)")
        kill(writer.processIdentifier, SIGKILL)
        writer.waitUntilExit()
        // Once the writer is gone (the reader stays), the merge goes through.
        let r = run(["merge", "--pool", f.pool, "--dev", "1", "--into", f.origin, "-q"])
        #expect(r.code == 0, "\(r.message)")
        #expect(try fileBytes(f.origin) == f.model)
    }

    @Test func streamAndPoolTogetherIsAUsageError() {
        let r = run(["merge", "--stream", "s.tbs", "--pool", "p", "--dev", "1", "--into", "o"])
        #expect(r.code == 64, "\(r.message)")
        let none = run(["merge", "--into", "o"])
        #expect(none.code == 64, "\(none.message)")
    }

    @Test func migrateWithoutADeviceIsAUsageErrorNamingDev() throws {
        let f = try fixture("omerge-migrate-usage")
        let r = run(["migrate", "--pool", f.pool, "--to", f.dir.file("elsewhere")])
        #expect(r.code == 64 && r.message.contains("--dev"), "\(r.code): \(r.message)")
    }

    @Test func runsAreSplitIntoPiecesInOrder() {
        let runs = [MappedRun(virtual: 0, data: 100, count: 5), MappedRun(virtual: 10, data: 7, count: 1)]
        #expect(mergePieces(runs, maxBlocks: 2) == [
            MappedRun(virtual: 0, data: 100, count: 2), MappedRun(virtual: 2, data: 102, count: 2),
            MappedRun(virtual: 4, data: 104, count: 1), MappedRun(virtual: 10, data: 7, count: 1),
        ])
        #expect(mergePieces(runs, maxBlocks: 0).count == 6, "0 is taken as 1 block per piece")
    }
}
