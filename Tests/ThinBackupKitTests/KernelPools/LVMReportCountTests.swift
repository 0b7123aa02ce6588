import Foundation
import Testing
@testable import ThinBackupKit

/// How many `lvm` commands the LVM side of each operation runs (`LVMPoolVolumes`, which
/// `LVMPoolAccess` goes through for every report, snapshot and removal), with a stand-in `lvm`
/// ($THIN_BACKUP_LVM) that logs each call and answers `lvs` with canned JSON reports: report N
/// after N volume-changing commands (lvcreate, lvremove, lvrename). One report when the pool is
/// opened; another only after an lvcreate of its own, before an lvremove by name, and after a
/// failed lvm command. A change that adds a report fails here.
/// (The environment is process-wide: this suite is serialized and restores it.)
@Suite("Kernel pools: lvm reports per LVM operation", .serialized)
struct LVMReportCountTests {
    /// One volume of a canned report (vg "vg", pool "pool").
    struct Vol {
        var name: String
        var segtype = "thin"
        var pool = "pool"
        var id: UInt64?
        var tags = ""
        var uuid: String { "uuid-\(name)" }
    }

    static let pool = Vol(name: "pool", segtype: "thin-pool", pool: "")
    static let thick = Vol(name: "thick", segtype: "linear", pool: "")

    static func json(_ vols: [Vol]) -> String {
        let lines = vols.map { v in
            "{\"vg_name\":\"vg\", \"lv_name\":\"\(v.name)\", \"lv_uuid\":\"\(v.uuid)\", \"segtype\":\"\(v.segtype)\", "
                + "\"pool_lv\":\"\(v.pool)\", \"thin_id\":\"\(v.id.map(String.init) ?? "")\", \"lv_size\":\"41943040\", "
                + "\"lv_attr\":\"Vwi---tz-k\", \"lv_tags\":\"\(v.tags)\", \"origin\":\"\"}"
        }
        return "{\"report\": [{\"lv\": [\n" + lines.joined(separator: ",\n") + "\n]}]}\n"
    }

    /// A stand-in lvm in a new folder: `reports[N]` answers lvs after N changing commands;
    /// `failing`: a subcommand that fails (exit 5). Runs `body` with $THIN_BACKUP_LVM set to it,
    /// and returns the calls it logged (one line of arguments each).
    static func withFakeLVM(_ reports: [[Vol]], failing: String = "none", _ body: () throws -> Void) throws -> [String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-lvm-count-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, r) in reports.enumerated() { try json(r).write(toFile: "\(dir)/report\(i).json", atomically: true, encoding: .utf8) }
        let lvm = dir + "/lvm"
        try """
            #!/bin/sh
            D=$(dirname "$0")
            echo "$*" >> "$D/calls"
            [ "$1" = \(failing) ] && { echo "  \(failing) failed" >&2; exit 5; }
            case "$1" in
            lvs) n=$(grep -c '^lvcreate \\|^lvremove \\|^lvrename ' "$D/calls"); cat "$D/report$n.json" ;;
            lvcreate|lvremove|lvrename|lvchange) ;;
            *) echo "unexpected: $1" >&2; exit 3 ;;
            esac

            """.write(toFile: lvm, atomically: true, encoding: .utf8)
        chmod(lvm, 0o755)
        try ProcessEnvironment.with(["THIN_BACKUP_LVM": lvm], body)
        let calls = (try? String(contentsOfFile: dir + "/calls", encoding: .utf8)) ?? ""
        return calls.split(separator: "\n").map(String.init)
    }

    static func verbs(_ calls: [String]) -> [String] { calls.map { String($0.split(separator: " ").first ?? "") } }

    static let report = "lvs --reportformat json --units b --nosuffix -a -o vg_name,lv_name,lv_uuid,segtype,pool_lv,thin_id,lv_size,lv_attr,lv_tags,origin vg"

    @Test("backup --lv (incremental): one report to open, one after its lvcreate, one before its lvremove")
    func backupIncremental() throws {
        let vol = Vol(name: "vol", id: 1)
        let base = Vol(name: "vol-tb-20261201020000", id: 2, tags: "thin-backup,tb-origin-uuid-vol")
        let snap = Vol(name: "vol-tb-20261202020000", id: 3, tags: "thin-backup,tb-origin-uuid-vol")
        let now = try #require(WorkflowClock.parse("2026-12-02T02:00:00Z"))
        var made: UInt64?
        let calls = try Self.withFakeLVM([[Self.pool, vol, base, Self.thick], [Self.pool, vol, base, snap, Self.thick]]) {
            // What runBackup asks of LVMPoolAccess, in its order: open (--lv), the volume's thin
            // id, the snapshot, its size (send, then the catalog's record), the old base deleted.
            let v = try LVMPoolVolumes(lv: "vg/vol")
            let dev = try #require(v.volume?.thinID)
            let origin = try #require(try v.byThinID()[dev])
            made = try v.snapshot(of: origin, at: now)
            for _ in 0 ..< 2 { #expect(try v.byThinID()[3]?.size == 41_943_040) }
            try v.removeSnapshot(2)
            #expect(try v.byThinID()[2] == nil)  // the removal applied to the report
        }
        #expect(made == 3)
        #expect(Self.verbs(calls) == ["lvs", "lvcreate", "lvs", "lvs", "lvremove"], "\(calls)")
        #expect(calls.filter { $0.hasPrefix("lvs") }.allSatisfy { $0 == Self.report })
        #expect(calls[1] == "lvcreate -q -s -n vol-tb-20261202020000 --addtag thin-backup --addtag tb-origin-uuid-vol vg/vol")
        #expect(calls[4] == "lvremove -q -f vg/vol-tb-20261201020000")
    }

    @Test("backup --lv (full), send --lv: two reports and one; the snapshot's free name comes from the opening report")
    func backupFullAndSend() throws {
        let vol = Vol(name: "vol", id: 1)
        let users = Vol(name: "vol-tb-20261202020000", id: 2)  // the user's, with the snapshot's name: untouched
        let snap = Vol(name: "vol-tb-20261202020000-2", id: 3, tags: "thin-backup,tb-origin-uuid-vol")
        let now = try #require(WorkflowClock.parse("2026-12-02T02:00:00Z"))
        let calls = try Self.withFakeLVM([[Self.pool, vol, users], [Self.pool, vol, users, snap]]) {
            let v = try LVMPoolVolumes(lv: "vg/vol")
            let origin = try #require(v.volume)
            #expect(try v.snapshot(of: origin, at: now) == 3)
            for _ in 0 ..< 2 { #expect(try v.byThinID()[3] != nil) }
        }
        #expect(Self.verbs(calls) == ["lvs", "lvcreate", "lvs"], "\(calls)")
        #expect(calls[1].contains("-n vol-tb-20261202020000-2 "))
        // send --lv VG/SNAP: the volume's thin id and size from the one report.
        let sendCalls = try Self.withFakeLVM([[Self.pool, vol, snap]]) {
            let v = try LVMPoolVolumes(lv: "vg/vol-tb-20261202020000-2")
            #expect(v.volume?.thinID == 3)
            #expect(try v.byThinID()[3]?.size == 41_943_040)
        }
        #expect(sendCalls == [Self.report])
    }

    @Test("--thin-pool, --lv VG/NEW --thin-pool, merge's origin check, pool ls/dump/delta: one report each")
    func readersOneReport() throws {
        let vol = Vol(name: "vol", id: 1)
        let calls = try Self.withFakeLVM([[Self.pool, vol]]) {
            let p = try LVMPoolVolumes(thinPool: "vg/pool")
            #expect(p.volume == nil && p.poolLV.name == "pool")
            #expect(try p.byThinID().keys.sorted() == [1])
            let n = try LVMPoolVolumes(lv: "vg/new", inPool: "vg/pool")
            #expect(n.volume == nil && n.volumeName == "new")
            let m = try LVMPoolVolumes(lv: "vg/vol")
            #expect(try m.byThinID()[1]?.name == "vol")
            #expect(try !m.report().contains { $0.name == "golden" && $0.isThin })  // merge: the origin is no thin volume
        }
        #expect(calls == [Self.report, Self.report, Self.report])
    }

    @Test("refusals: a name without VG reads no report; a missing or thick volume, one")
    func refusals() throws {
        let calls = try Self.withFakeLVM([[Self.pool, Self.thick]]) {
            #expect(throws: (any Error).self) { try LVMPoolVolumes(lv: "vol") }
            #expect(throws: (any Error).self) { try LVMPoolVolumes(lv: "vg/nosuch") }
            #expect { try LVMPoolVolumes(lv: "vg/thick") } throws: { "\($0)".contains("not a thin volume") }
            #expect { try LVMPoolVolumes(thinPool: "vg/thick") } throws: { "\($0)".contains("not a thin pool") }
        }
        #expect(calls == [Self.report, Self.report, Self.report])
    }

    @Test("removal: the name comes from a report read now (not the opening one); an untagged volume refused, nothing removed")
    func removalReadsNow() throws {
        let vol = Vol(name: "vol", id: 1)
        let calls = try Self.withFakeLVM([[Self.pool, vol, Vol(name: "vol-tb-x", id: 2, tags: "thin-backup")]]) {
            let v = try LVMPoolVolumes(lv: "vg/vol")
            #expect { try v.removeSnapshot(1) } throws: { "\($0)".contains("vg/vol (thin id 1) is not a snapshot thin-backup made") }
            try v.removeSnapshot(9)  // none with that thin id: nothing to do
        }
        #expect(Self.verbs(calls) == ["lvs", "lvs", "lvs"], "\(calls)")
    }

    @Test("a failed lvcreate: the report is forgotten, the next use reads one")
    func failedCommandForgets() throws {
        let vol = Vol(name: "vol", id: 1)
        let now = try #require(WorkflowClock.parse("2026-12-02T02:00:00Z"))
        let calls = try Self.withFakeLVM([[Self.pool, vol], [Self.pool, vol]], failing: "lvcreate") {
            let v = try LVMPoolVolumes(lv: "vg/vol")
            let origin = try #require(v.volume)
            #expect { try v.snapshot(of: origin, at: now) } throws: { "\($0)".contains("lvcreate failed") }
            #expect(try v.byThinID()[1] != nil)
            #expect(try v.byThinID()[1] != nil)
        }
        #expect(Self.verbs(calls) == ["lvs", "lvcreate", "lvs"], "\(calls)")
    }

    @Test("a receive target takes the report over and hands it back: no report of its own")
    func handOver() throws {
        let vol = Vol(name: "vol", id: 1)
        let calls = try Self.withFakeLVM([[Self.pool, vol]]) {
            let v = try LVMPoolVolumes(lv: "vg/vol")
            let r = v.take()
            #expect(r?.count == 2)
            v.keep(r)
            #expect(try v.byThinID()[1] != nil)
            _ = v.take()
            #expect(try v.byThinID()[1] != nil)  // none kept: one read now
        }
        #expect(calls == [Self.report, Self.report])
    }
}
