import Foundation
import PoolCore
import Testing
@testable import ThinBackupKit
import TestSupport

/// SIGINT/SIGTERM during `send` release the metadata snapshot it reserved; one left by a killed
/// (SIGKILL) send is reclaimed by the next run with a line saying so; one reserved by someone else stays.
@Suite struct InterruptTests {
    static var binary: String { Repo.root + "/.build/debug/thin-backup" }

    /// Starts `send` into a FIFO nobody reads: it reserves the snapshot, then blocks opening the FIFO.
    /// Returns once the pool records the reservation (no sleeps standing in for it).
    func blockedSend(_ src: SourceChain, _ dir: TempDir) throws -> (Process, Pipe) {
        let fifo = dir.file("fifo-\(UInt32.random(in: 0 ... .max))")
        #expect(mkfifo(fifo, 0o600) == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = ["send", "--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", fifo, "--quiet"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        var held = false
        for _ in 0..<1200 where !held {
            // The send holds the pool's lock: read its sidecar, where the reservation is recorded.
            if let side = try? PoolSidecar.load("\(src.path)/pool.json"), let json = side.annotations?[SnapshotOwner.annotation],
               let owner = try? JSONDecoder().decode(SnapshotOwner.self, from: Data(json.utf8)) {
                held = owner.block != nil
            }
            if !held { usleep(50_000) }
        }
        #expect(held, "send never reserved the metadata snapshot")
        return (p, err)
    }

    func heldSnapshot(_ pool: String) throws -> (UInt64?, SnapshotOwner?) {
        let p = try ThinPool(folder: pool, readOnly: true)
        defer { p.close() }
        return (p.heldMetadataSnapshot, SnapshotOwner.recorded(in: p))
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func signalReleasesTheSnapshot(_ sig: Int32) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("intr")
        let src = try SourceChain(seed: 3, rounds: 1)
        let (p, err) = try blockedSend(src, dir)
        kill(p.processIdentifier, sig)
        p.waitUntilExit()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == sig, "ended \(p.terminationReason) \(p.terminationStatus)")
        #expect(stderr.contains("interrupted by \(sig == SIGTERM ? "SIGTERM" : "SIGINT")"), "\(stderr)")
        #expect(stderr.contains("release the metadata snapshot"), "\(stderr)")
        let (held, owner) = try heldSnapshot(src.path)
        #expect(held == nil)
        #expect(owner == nil)
        #expect(try thinCheck(src.path).ok)
        // The next send needs no -m.
        let again = try Tool.run(Self.binary, ["send", "--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", dir.file("s"), "--quiet"])
        #expect(again.ok, "\(again.stderr)")
    }

    @Test func snapshotLeftByAKilledSendIsReclaimed() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("intr")
        let src = try SourceChain(seed: 4, rounds: 1)
        let (p, _) = try blockedSend(src, dir)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let (held, owner) = try heldSnapshot(src.path)
        let block = try #require(held, "SIGKILL runs no cleanup: the snapshot stays held")
        #expect(owner?.pid == p.processIdentifier && owner?.block == block && owner?.command == "send")

        let next = try Tool.run(Self.binary, ["send", "--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", dir.file("s"), "--quiet"])
        #expect(next.ok, "\(next.stderr)")
        #expect(next.stderr.contains("reclaimed the metadata snapshot at block \(block) left by `send` (pid \(p.processIdentifier)"),
                "\(next.stderr)")
        #expect(try heldSnapshot(src.path).0 == nil)
        #expect(try thinCheck(src.path).ok)
    }

    @Test func someoneElsesSnapshotIsNeverReleased() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build first: \(Self.binary)")
        let dir = TempDir("intr")
        let src = try SourceChain(seed: 5, rounds: 1)
        let reserve = try Tool.run(Self.binary, ["pool", "reserve-metadata-snap", "--pool", src.path])
        #expect(reserve.ok, "\(reserve.stderr)")
        let block = try #require(try heldSnapshot(src.path).0)
        let send = try Tool.run(Self.binary, ["send", "--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", dir.file("s"), "--quiet"])
        #expect(send.status == 1)
        #expect(send.stderr.contains("already held") && send.stderr.contains("not reserved by thin-backup"), "\(send.stderr)")
        #expect(try heldSnapshot(src.path).0 == block)

        // A live owner (this test process, recorded as if it were a send) is refused as busy, not reclaimed.
        let pool = try ThinPool(folder: src.path)
        var me = SnapshotOwner.current("send")
        me.block = block
        try me.record(in: pool)
        try pool.commit()
        pool.close()
        let busy = try Tool.run(Self.binary, ["send", "--pool", src.path, "--snap", "\(src.snapshots[0])", "--to", dir.file("s"), "--quiet"])
        #expect(busy.status == 75, "\(busy.stderr)")
        #expect(busy.stderr.contains("still running"), "\(busy.stderr)")
        #expect(try heldSnapshot(src.path).0 == block)
    }

    @Test func cleanupRunsOnceWhicheverPathComesFirst() {
        let intr = Interrupts()
        nonisolated(unsafe) var runs: [String] = []
        let a = intr.register("a") { runs.append("a") }
        let b = intr.register("b") { runs.append("b") }
        _ = intr.register("c") { runs.append("c") }
        b.dismiss()
        #expect(intr.pending == ["a", "c"])
        a.run()
        intr.runAll()
        a.run()
        #expect(runs == ["a", "c"])
        #expect(intr.pending.isEmpty)
    }
}
