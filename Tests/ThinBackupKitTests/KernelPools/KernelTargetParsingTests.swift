import Foundation
import Testing
@testable import ThinBackupKit

/// The kernel's thin-pool/thin table and status lines (formats from the kernel's
/// Documentation/admin-guide/device-mapper/thin-provisioning.rst, lines as Debian's 6.1
/// kernel printed them in the VM) and lvm's JSON report.
@Suite("Kernel pools: dm table/status and lvs report parsing")
struct KernelTargetParsingTests {
    @Test("thin-pool table: devices, block size, low water mark, features")
    func poolTable() throws {
        let t = DMTarget.lines("0 1048576 thin-pool 254:0 254:1 128 64 1 skip_block_zeroing\n")
        #expect(t.count == 1)
        let p = try #require(ThinPoolTable(t[0]))
        #expect(p.metadataDevice == "254:0" && p.dataDevice == "254:1")
        #expect(p.blockSectors == 128 && p.lowWaterMark == 64 && p.lengthSectors == 1_048_576)
        #expect(p.features == ["skip_block_zeroing"])
        #expect(ThinPoolTable(DMTarget(start: 0, length: 8, type: "linear", params: "254:0 0")) == nil)
    }

    @Test("thin-pool status: held root, modes, needs_check, refusals")
    func poolStatus() throws {
        let held = try #require(ThinPoolStatus(DMTarget.lines(
            "0 1048576 thin-pool 2 25/16384 300/8192 17 rw discard_passdown queue_if_no_space - 1024")[0]))
        #expect(held.transactionID == 2 && held.usedMetadataBlocks == 25 && held.totalMetadataBlocks == 16384)
        #expect(held.usedDataBlocks == 300 && held.totalDataBlocks == 8192)
        #expect(held.heldRoot == 17 && held.mode == .rw && !held.needsCheck && held.refusal == nil)

        let none = try #require(ThinPoolStatus(DMTarget.lines(
            "0 1048576 thin-pool 0 11/16384 0/8192 - rw discard_passdown queue_if_no_space - 1024")[0]))
        #expect(none.heldRoot == nil)

        let ro = try #require(ThinPoolStatus(DMTarget.lines(
            "0 1048576 thin-pool 0 11/16384 0/8192 - ro discard_passdown queue_if_no_space needs_check 1024")[0]))
        #expect(ro.mode == .ro && ro.needsCheck)
        #expect(ro.refusal?.contains("needs_check") == true)

        let full = try #require(ThinPoolStatus(DMTarget.lines(
            "0 1048576 thin-pool 0 11/16384 8192/8192 - out_of_data_space discard_passdown error_if_no_space - 1024")[0]))
        #expect(full.mode == .outOfDataSpace && full.refusal?.contains("out of data space") == true)

        let failed = try #require(ThinPoolStatus(DMTarget(start: 0, length: 8, type: "thin-pool", params: "Fail")))
        #expect(failed.mode == .failed && failed.refusal != nil)
        #expect(ThinPoolStatus(DMTarget(start: 0, length: 8, type: "thin-pool", params: "x 1/2 3/4 - rw")) == nil)
    }

    @Test("thin table: pool, id, external origin; several targets")
    func thinTable() throws {
        let ts = DMTarget.lines("0 262144 thin 254:2 7\n262144 8 thin 254:2 9 254:5\n")
        #expect(ts.count == 2)
        let a = try #require(ThinTable(ts[0]))
        #expect(a.poolDevice == "254:2" && a.deviceID == 7 && a.externalOrigin == nil && a.lengthSectors == 262_144)
        let b = try #require(ThinTable(ts[1]))
        #expect(b.deviceID == 9 && b.externalOrigin == "254:5")
        // Sizes in bytes from sector counts: checked, nil beyond 8 EiB (no trap at 2^64 sectors).
        #expect(a.sizeBytes == 128 << 20)
        let huge = DMTarget.lines("0 18446744073709551615 thin 254:2 7\n0 18014398509481984 thin 254:2 8\n0 18014398509481985 thin 254:2 9\n")
        #expect(huge.compactMap { ThinTable($0) }.map(\.sizeBytes) == [nil, 1 << 63, nil])
    }

    @Test("LVM: dm names double hyphens; the JSON report of thin volumes and a pool")
    func lvm() throws {
        #expect(LogicalVolume.dmName(vg: "my-vg", lv: "data-1") == "my--vg-data--1")
        let json = """
            {
                  "report": [
                      {
                          "lv": [
                              {"vg_name":"my-vg", "lv_name":"pool", "lv_uuid":"AbC", "segtype":"thin-pool", "pool_lv":"", "thin_id":"", "lv_size":"268435456", "lv_attr":"twi-aotz--", "lv_tags":"", "origin":""},
                              {"vg_name":"my-vg", "lv_name":"[pool_tmeta]", "lv_uuid":"DeF", "segtype":"linear", "pool_lv":"", "thin_id":"", "lv_size":"4194304", "lv_attr":"ewi-ao----", "lv_tags":"", "origin":""},
                              {"vg_name":"my-vg", "lv_name":"vol", "lv_uuid":"GhI", "segtype":"thin", "pool_lv":"pool", "thin_id":"1", "lv_size":"134217728", "lv_attr":"Vwi-a-tz--", "lv_tags":"", "origin":""},
                              {"vg_name":"my-vg", "lv_name":"vol-tb1", "lv_uuid":"JkL", "segtype":"thin", "pool_lv":"pool", "thin_id":"2", "lv_size":"134217728", "lv_attr":"Vwi---tz-k", "lv_tags":"thin-backup,tb-of-GhI", "origin":"vol"}
                          ]
                      }
                  ]
              }
            """
        let lvs = try LVM.parse(json)
        #expect(lvs.count == 4)
        #expect(lvs[0].isThinPool && lvs[0].poolTargetName == "my--vg-pool-tpool")
        #expect(!lvs[1].isThin && lvs[1].thinID == nil)
        #expect(lvs[2].isThin && lvs[2].thinID == 1 && lvs[2].size == 134_217_728 && lvs[2].isActive && lvs[2].pool == "pool")
        #expect(lvs[3].tags == ["thin-backup", "tb-of-GhI"] && !lvs[3].isActive && lvs[3].origin == "vol")
        #expect(throws: (any Error).self) { try LVM.parse("{\"report\": [{\"lv\": [{\"lv_name\": \"x\"}]}]}") }
    }

    @Test("LVM: a backup snapshot is named by the time given (backup's --now), in UTC; -2, -3, … when taken")
    func snapshotName() throws {
        // 2026-12-10T02:00:00Z, and a time in the first second after it (still the same name).
        let t = try #require(WorkflowClock.parse("2026-12-10T02:00:00Z"))
        #expect(LVMPoolAccess.snapshotName(of: "vol2", at: t, taken: []) == "vol2-tb-20261210020000")
        #expect(LVMPoolAccess.snapshotName(of: "vol2", at: t.addingTimeInterval(0.9), taken: ["vol2"]) == "vol2-tb-20261210020000")
        #expect(LVMPoolAccess.snapshotName(of: "vol2", at: t, taken: ["vol2-tb-20261210020000"]) == "vol2-tb-20261210020000-2")
        #expect(LVMPoolAccess.snapshotName(of: "vol2", at: t, taken: ["vol2-tb-20261210020000", "vol2-tb-20261210020000-2"])
            == "vol2-tb-20261210020000-3")
    }
}
