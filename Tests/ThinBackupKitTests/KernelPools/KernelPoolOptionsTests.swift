import ArgumentParser
import Testing
@testable import ThinBackupKit

/// `--dm-pool`, `--thin-pool` and `--lv` name a pool like `--pool` does: one kind at a time,
/// and a pool that is not there is one clear line naming it.
@Suite("Kernel pools: naming them on the command line")
struct KernelPoolOptionsTests {
    @Test("two kinds of pool at once are a usage error")
    func oneKind() {
        for args in [["--dm-pool", "p", "--pool", "/x"], ["--lv", "vg/lv", "--dm-pool", "p"],
                     ["--thin-pool", "vg/pool", "--metadata", "/m"],
                     // --lv with --thin-pool names a volume of that pool (receive creates it): same volume group only.
                     ["--lv", "vga/a", "--thin-pool", "vgb/pool"]] {
            #expect(throws: (any Error).self, "\(args)") { _ = try PoolOptions.parse(args) }
        }
        #expect((try? PoolOptions.parse(["--dm-pool", "p"]))?.isGiven == true)
    }

    @Test("a dm pool that does not exist: one line naming it")
    func missingPool() throws {
        let o = try PoolOptions.parse(["--dm-pool", "tb-no-such-pool-\(UInt32.random(in: 0 ... .max))"])
        do {
            _ = try o.open()
            Issue.record("opened a pool that does not exist")
        } catch {
            let line = "\(error)"
            #expect(line.contains(o.dmPool!) && !line.contains("\n"), "\(line)")
        }
    }
}
