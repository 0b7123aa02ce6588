import ArgumentParser
import Delta
import Foundation
import Testing
import TestSupport
@testable import ThinBackupKit

/// Receiving into LVM without LVM (issue #13): the host state (receipts by thin id and LV UUID,
/// `--keep` by order of receipt), the names ThinBackup gives volumes, which volume a device is,
/// and the command lines (`receive --lv`, `restore --to-lv`, `serve --thin-pool`) refused before
/// anything runs. The LVM commands themselves run in VM scenario 65-lvm-receive.
@Suite("LVM receive: state, names, options")
struct LVMReceiveTests {
    static func receipt(_ n: UInt64, partial: Bool = false) -> Receipt {
        var r = Receipt(sourcePool: Digest128(high: 1, low: 2), source: SnapshotIdentity(device: n, creationTime: UInt32(n), snapshottedTime: 0, transactionID: 0),
                        streamID: Digest128(high: n, low: n), contentDigest: Digest128(high: 9, low: n), mappingDigest: Digest128(high: 8, low: n))
        if partial {
            r.partial = PartialReceive(header: StreamHeader(blockSize: 65536, virtualSize: 1 << 20, streamID: r.streamID, sourcePool: .zero, target: r.source),
                                       progress: StreamProgress(streamID: r.streamID), digest: .zero)
        }
        return r
    }

    static func lv(_ name: String, id: UInt64, uuid: String) -> LogicalVolume {
        LogicalVolume(vg: "vg", name: name, uuid: uuid, segtype: "thin", pool: "pool", thinID: id, size: 1 << 24,
                      attr: "Vwi---tz--", tags: [], origin: "")
    }

    static func pending(_ volume: String, id: UInt64, uuid: String, base: UInt64? = nil) -> LVMReceiveState.Pending {
        .init(name: LVMReceiveState.receivingName(volume), uuid: uuid, thinID: id, volume: volume, base: base, size: 1 << 24)
    }

    @Test("a receipt is about the volume with its thin id and UUID only")
    func receiptsByThinIDAndUUID() {
        var s = LVMReceiveState()
        s.record(Self.receipt(1), for: Self.pending("data", id: 5, uuid: "U5"))
        #expect(s.version(of: Self.lv("data", id: 5, uuid: "U5"))?.receipt == Self.receipt(1))
        #expect(s.version(of: Self.lv("data-v5", id: 5, uuid: "U5"))?.volume == "data", "a renamed volume keeps its receipt")
        #expect(s.version(of: Self.lv("data", id: 5, uuid: "OTHER")) == nil, "same thin id, another volume (re-created)")
        #expect(s.version(of: Self.lv("data", id: 6, uuid: "U5")) == nil, "the name alone never carries a receipt")
        var noID = Self.pending("data", id: 7, uuid: "U7")
        noID.thinID = nil
        s.record(Self.receipt(2), for: noID)
        #expect(s.versions.count == 1, "a volume lvcreate has not answered for gets no receipt")
    }

    @Test("--keep N removes the oldest versions of that volume, by order of receipt")
    func keepByOrderOfReceipt() {
        var s = LVMReceiveState()
        // Thin ids out of order on purpose: order is the receipt's, not the id's.
        for (n, id) in [(1, 9), (2, 4), (3, 12), (4, 6)] as [(UInt64, UInt64)] {
            s.record(Self.receipt(n), for: Self.pending("data", id: id, uuid: "U\(id)"))
        }
        s.record(Self.receipt(7), for: Self.pending("other", id: 20, uuid: "U20"))
        s.record(Self.receipt(8, partial: true), for: Self.pending("data", id: 21, uuid: "U21"))
        var existing: [UInt64: LogicalVolume] = [:]
        for id in [9, 4, 12, 6, 20, 21] as [UInt64] { existing[id] = Self.lv("x", id: id, uuid: "U\(id)") }
        #expect(s.pruned(volume: "data", keep: 2, existing: existing) == [4, 9])
        #expect(s.pruned(volume: "data", keep: 1, existing: existing) == [12, 4, 9])
        #expect(s.pruned(volume: "data", keep: 0, existing: existing) == [12, 4, 9], "the version just received always stays")
        #expect(s.pruned(volume: "data", keep: 9, existing: existing).isEmpty)
        #expect(s.pruned(volume: "other", keep: 1, existing: existing).isEmpty)
        existing[4] = Self.lv("x", id: 4, uuid: "RECREATED")
        existing[9] = nil
        #expect(s.pruned(volume: "data", keep: 1, existing: existing) == [12], "a version whose LV is gone or another is not removed")
    }

    @Test("stored atomically and read back; a damaged file is one clear error")
    func roundTrip() throws {
        let dir = TempDir("lvm-receive-state")
        let path = dir.file("receipts.json")
        #expect(try LVMReceiveState.load(path) == LVMReceiveState())
        var s = LVMReceiveState()
        s.record(Self.receipt(1), for: Self.pending("data", id: 5, uuid: "U5"))
        s.inProgress = [Self.pending("data", id: 6, uuid: "U6", base: 5)]
        try s.store(path)
        #expect(try LVMReceiveState.load(path) == s)
        try Data("[".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: JobError.self) { try LVMReceiveState.load(path) }
    }

    @Test("the thin id a device's I/O goes to: the state file read once, not per record, and again after every store")
    func routesKeptUntilAStore() throws {
        let dir = TempDir("lvm-receive-routes")
        final class Count { var loads = 0 }
        let count = Count()
        let file = LVMReceiveStateFile(dir.file("receipts.json")) { count.loads += 1; return try LVMReceiveState.load($0) }
        // The route as LVMReceivingPool works it out: the new version while one is received, else the volume (thin id 5).
        let route = { (s: LVMReceiveState) -> UInt64 in s.inProgress.first { $0.volume == "data" }?.thinID ?? 5 }
        var s = LVMReceiveState()
        s.inProgress = [Self.pending("data", id: 6, uuid: "U6", base: 5)]
        try file.store(s)
        for _ in 0..<100 { #expect(try file.route(0, route) == 6) }
        #expect(count.loads == 1, "a hundred records, one read of the state file")
        // Completed (renamed into place): a route kept past this store would write into the old version.
        s.inProgress = []
        try file.store(s)
        #expect(try file.route(0, route) == 5)
        #expect(count.loads == 2)
        file.forgetRoutes()
        #expect(try file.route(0, route) == 5 && count.loads == 3, "volumes changed: worked out again")
        #expect(try file.route(1, { _ in 9 }) == 9 && count.loads == 4, "each device its own route")
    }

    @Test("names: the new version, kept versions; names LVM would refuse")
    func names() {
        #expect(LVMReceiveState.receivingName("data") == "data-tbrecv")
        #expect(LVMReceiveState.keptName("data", thinID: 12) == "data-v12")
        for good in ["data", "vm-100-disk-0", "a.b+c_d"] { #expect(LVMReceiveState.nameProblem(good) == nil, "\(good)") }
        for bad in ["", "-x", "..", "a/b", "a b", "é", "x_tmeta", "snapshot", String(repeating: "a", count: 101)] {
            #expect(LVMReceiveState.nameProblem(bad) != nil, "\(bad)")
        }
    }

    @Test("which volume a device is: --lv names one (device 0), --thin-pool alone numbers them tb-D")
    func naming() throws {
        let one = LVMReceiveNaming.volume("data")
        #expect(try one.volumeName(0, vg: "vg") == "data")
        #expect(one.device(ofVolume: "data") == 0)
        #expect(one.device(ofVolume: "data-v3") == nil)
        do {
            _ = try one.volumeName(7, vg: "vg")
            Issue.record("--as 7 into one volume was taken")
        } catch let e as JobError {
            #expect(e.code == .usage && e.message.contains("vg/data is one volume"), "\(e.message)")
        }
        let numbered = LVMReceiveNaming.numbered
        #expect(try numbered.volumeName(7, vg: "vg") == "tb-7")
        #expect(numbered.device(ofVolume: "tb-7") == 7)
        for other in ["tb-07", "tb-7-v3", "tb-", "tb-x", "data", "tb-7-tbrecv"] { #expect(numbered.device(ofVolume: other) == nil, "\(other)") }
    }

    @Test("--lv with --thin-pool names a volume of that pool (created by a receive); other pools with them are refused")
    func poolOptions() throws {
        #expect(try PoolOptions.parse(["--lv", "vg/new", "--thin-pool", "vg/pool"]).selection == .lvInPool(lv: "vg/new", pool: "vg/pool"))
        #expect(try PoolOptions.parse(["--lv", "vg/data"]).selection == .lv("vg/data"))
        #expect(throws: (any Error).self) { try PoolOptions.parse(["--lv", "vg/new", "--dm-pool", "p"]) }
        #expect(throws: (any Error).self) { try PoolOptions.parse(["--thin-pool", "vg/pool", "--pool", "/p"]) }
    }

    @Test("restore --to-lv needs --thin-pool, no other target and no --as")
    func restoreOptions() throws {
        let base = ["--repo", "/r", "--dev", "1"]
        #expect(try RestoreCommand.parse(base + ["--to-lv", "vg/new", "--thin-pool", "vg/pool"]).toLV == "vg/new")
        for bad in [["--to-lv", "vg/new"], ["--thin-pool", "vg/pool", "--to", "/x"], ["--to-lv", "vg/new", "--thin-pool", "vg/pool", "--to", "/x"],
                    ["--to-lv", "vg/new", "--thin-pool", "vg/pool", "--as", "3"], ["--to-lv", "vg/new", "--thin-pool", "vg/pool", "--to-dm-pool", "p"]] {
            #expect(throws: (any Error).self, "\(bad)") { try RestoreCommand.parse(base + bad) }
        }
    }

    @Test("serve into LVM takes --thin-pool, not --lv")
    func serveOptions() throws {
        let base = ["--listen", "127.0.0.1:0", "--token-file", "/t"]
        #expect(throws: (any Error).self) { try ServeCommand.parse(base + ["--lv", "vg/data"]) }
        #expect(throws: (any Error).self) { try ServeCommand.parse(base + ["--lv", "vg/data", "--thin-pool", "vg/pool"]) }
        _ = try ServeCommand.parse(base + ["--thin-pool", "vg/pool"])
    }

    /// A pool that names its devices `name` (as LVMReceivingPool does), or as every other pool does;
    /// `held`: the receipts it holds (devices that exist).
    final class Stub: ReceiveTarget {
        let name: String?
        let held: [UInt64: Receipt]
        init(name: String?, held: [UInt64: Receipt] = [:]) { (self.name, self.held) = (name, held) }
        let blockSize = 65536
        func deviceExists(_ dev: UInt64) throws -> Bool { held[dev] != nil }
        func createThin(_ dev: UInt64, virtualSize: UInt64) throws {}
        func createSnapshot(_ dev: UInt64, of origin: UInt64, virtualSize: UInt64) throws {}
        func virtualSize(of dev: UInt64) throws -> UInt64 { 0 }
        func write(_ dev: UInt64, offset: UInt64, _ bytes: UnsafeRawBufferPointer) throws {}
        func read(_ dev: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {}
        func discard(_ dev: UInt64, bytes: Range<UInt64>) throws {}
        func mappingDigest(of dev: UInt64) throws -> Digest128 { .zero }
        func receipts() throws -> [UInt64: Receipt] { held }
        func setReceipt(_ receipt: Receipt?, for dev: UInt64) throws {}
        func commitReceive() throws {}
        func abortReceive() throws {}
        func devices() throws -> [UInt64] { held.keys.sorted() }
        func deleteReceived(_ dev: UInt64) throws {}
        func close() {}
        func describe(_ dev: UInt64) -> String { name ?? plainDeviceName(dev) }
    }

    @Test("the refusals a receive into LVM says name the volume, not a device number")
    func refusalsNameTheVolume() {
        let id = SnapshotIdentity(device: 3, creationTime: 1, snapshottedTime: 0, transactionID: 0)
        #expect("\(named(ReplayError.deviceExists(0), Stub(name: "vg/data")))" .contains("vg/data already exists"))
        #expect("\(named(ReplayError.baseModified(local: 0, base: id), Stub(name: "vg/data")))".contains("vg/data (base"))
        #expect("\(named(ReplayError.baseNotFound(base: id, target: id), Stub(name: "vg/data")))".contains("never received"))
        #expect(named(ReplayError.deviceExists(4), Stub(name: nil)) as? ReplayError == .deviceExists(4), "a plain pool's refusal is unchanged")
    }

    @Test("a new receive onto a volume whose checkpointed receive is pending: says so and names --resume, not 'already exists'")
    func pendingReceiveRefusal() {
        let pending = Stub(name: "vg/data", held: [0: Self.receipt(2, partial: true)])
        let token = Self.receipt(2, partial: true).partial!.progress.token
        let e = "\(receiveFailure(ReplayError.deviceExists(0), pending, target: 0))"
        #expect(e.contains("an interrupted receive into vg/data is pending") && e.contains("receive --resume")
            && e.contains("send --resume-from \(token)"), "\(e)")
        #expect(!e.contains("already exists"), "\(e)")
        // Without a pending receive it is the plain refusal; any other error keeps its words and says it can resume.
        let done = Stub(name: "vg/data", held: [0: Self.receipt(2)])
        #expect("\(receiveFailure(ReplayError.deviceExists(0), done, target: 0))".contains("vg/data already exists"))
        let other = "\(receiveFailure(ReplayError.sourceEnded, pending, target: 0))"
        #expect(other.contains("the stream source ended early; receive of vg/data can resume: receive --resume"), "\(other)")
        // Another device's pending receive is not this refusal's (serve --thin-pool: one pool, many volumes).
        let elsewhere = "\(receiveFailure(ReplayError.deviceExists(3), Stub(name: nil, held: [3: Self.receipt(3), 5: Self.receipt(5, partial: true)]), target: nil))"
        #expect(elsewhere.contains("thin device 3 already exists"), "\(elsewhere)")
    }
}
