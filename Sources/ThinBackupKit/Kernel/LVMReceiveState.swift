import Delta
import Foundation
import PoolCore

/// What a receive into an LVM thin pool keeps on the host: `STATE/pools/lvm-POOLUUID/receipts.json`
/// (the pool LV's UUID: a pool renamed keeps its state, another pool under the same name does not
/// find it). A version's receipt is keyed by its thin id and holds the LV's UUID: it is about
/// that volume only (never about whatever carries a name later; volumes are renamed as versions
/// come and go). `inProgress` lists the volumes receives created and have not completed: the
/// next receive removes those without a checkpoint, and finishes renaming those that completed.
struct LVMReceiveState: HostStateFile, Equatable {
    struct Version: Codable, Equatable {
        /// The LV's UUID when the receipt was recorded.
        var uuid: String
        var receipt: Receipt
        /// The volume name (without the VG) this version was received as; older versions are kept beside it.
        var volume: String
        /// Thin id of the version it was received onto (a snapshot of it), nil for a full stream.
        var base: UInt64?
        /// Order of receipt (higher: newer).
        var seq: UInt64
    }

    /// A volume a receive created: named `name` until complete, then `volume`.
    struct Pending: Codable, Equatable {
        var name: String
        /// Empty until `lvcreate` has answered.
        var uuid: String
        var thinID: UInt64?
        var volume: String
        var base: UInt64?
        /// The stream's device size (the LV may be larger: LVM rounds up to whole extents).
        var size: UInt64
    }

    var versions: [String: Version] = [:]
    var inProgress: [Pending] = []
    var seq: UInt64 = 0

    /// The version recorded for `lv`, when its thin id and UUID match the receipt's.
    func version(of lv: LogicalVolume) -> Version? {
        guard let id = lv.thinID, let v = versions[String(id)], v.uuid == lv.uuid else { return nil }
        return v
    }

    /// Records `receipt` for the volume `p` made (a new sequence number).
    mutating func record(_ receipt: Receipt, for p: Pending) {
        guard let id = p.thinID else { return }
        seq += 1
        versions[String(id)] = Version(uuid: p.uuid, receipt: receipt, volume: p.volume, base: p.base, seq: seq)
    }

    /// Thin ids of the complete versions received as `volume` to delete so that `keep` remain
    /// (the newest, which names `volume`, counted): the oldest go. `existing`: thin id → LV of
    /// every volume in the pool now (a version whose LV is gone or another is not counted).
    func pruned(volume: String, keep: Int, existing: [UInt64: LogicalVolume]) -> [UInt64] {
        let mine = versions.compactMap { (k, v) -> (UInt64, UInt64)? in
            guard v.volume == volume, v.receipt.partial == nil, let id = UInt64(k), existing[id]?.uuid == v.uuid else { return nil }
            return (id, v.seq)
        }
        return mine.sorted { $0.1 > $1.1 }.dropFirst(max(1, keep)).map(\.0)
    }

    // Names.

    /// The name a version has while it is received: `VOLUME-tbrecv`.
    static func receivingName(_ volume: String) -> String { volume + "-tbrecv" }

    /// The name an older version is kept under: `VOLUME-vTHINID`.
    static func keptName(_ volume: String, thinID: UInt64) -> String { "\(volume)-v\(thinID)" }

    /// LVM's rules for an LV name ThinBackup will create or rename to: letters, digits and
    /// `+_.-`, not starting with `-`, not `.`/`..`, no reserved `_…` suffix, at most 120 characters
    /// here (room for the suffixes above). Nil when fine, else why not.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "an empty name" }
        if name.count > 100 { return "longer than 100 characters (ThinBackup adds suffixes to it)" }
        if name.hasPrefix("-") { return "starts with '-'" }
        if name == "." || name == ".." || name == "snapshot" || name == "pvmove" { return "a name LVM reserves" }
        if name.contains(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "+_.-".contains($0))) }) {
            return "LVM names hold only letters, digits and +_.-"
        }
        for r in ["_cdata", "_cmeta", "_corig", "_mlog", "_mimage", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vorigin", "_vdata"]
        where name.contains(r) {
            return "contains \(r), which LVM reserves"
        }
        return nil
    }
}

/// One receive target's state file: every load and store goes through it. The thin id each
/// device's reads and writes go to (`route`, asked for on every record) is worked out from the
/// state once and kept until the next store, or until the volumes change (`forgetRoutes`).
final class LVMReceiveStateFile {
    let path: String
    private let loader: (String) throws -> LVMReceiveState
    private var routes: [UInt64: UInt64] = [:]

    init(_ path: String, loader: @escaping (String) throws -> LVMReceiveState = { try LVMReceiveState.load($0) }) {
        self.path = path
        self.loader = loader
    }

    func load() throws -> LVMReceiveState { try loader(path) }

    func store(_ s: LVMReceiveState) throws {
        routes = [:]
        try s.store(path)
    }

    /// The thin id of `dev`: `find` works it out from the state, once until the next store.
    func route(_ dev: UInt64, _ find: (LVMReceiveState) throws -> UInt64) throws -> UInt64 {
        if let id = routes[dev] { return id }
        let id = try find(load())
        routes[dev] = id
        return id
    }

    /// The volumes changed (made, renamed, removed): routes are worked out again.
    func forgetRoutes() { routes = [:] }
}
