import Foundation
import Testing
@testable import ThinBackupKit

/// How `lvm` is run (`LVM.run` over `ChildProcess`), with stand-in `lvm` scripts: both pipes
/// drained while the child runs, stdin closed, every child reaped, a non-zero exit reported
/// with stderr's last line, and a child that never ends stopped at its deadline (in the VM,
/// Foundation's `Process` left `lvm` a zombie and waited for ever).
@Suite("Kernel pools: running lvm")
struct LVMCommandTests {
    /// A folder with an executable `lvm` script holding `body`.
    static func fakeLVM(_ body: String) throws -> (dir: String, lvm: String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-lvm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let lvm = dir + "/lvm"
        try ("#!/bin/sh\n" + body + "\n").write(toFile: lvm, atomically: true, encoding: .utf8)
        chmod(lvm, 0o755)
        return (dir, lvm)
    }

    @Test("more output on both pipes than a pipe holds: all of stdout comes back, no deadlock")
    func drainsBothPipes() throws {
        // 4000 lines of 100 bytes to each of stdout and stderr, interleaved (a pipe holds 64 KiB):
        // a reader that drains stdout before stderr would block the child on a full stderr pipe.
        let (dir, lvm) = try Self.fakeLVM("""
            i=0; line=$(printf '%099d' 0)
            while [ $i -lt 4000 ]; do echo "$line"; echo "$line" >&2; i=$((i + 1)); done
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = try LVM.run(["lvs"], lvm: lvm, timeout: 60)
        #expect(out.utf8.count == 400_000)
        #expect(out.split(separator: "\n").count == 4000)
    }

    @Test("a failing lvm: its last stderr line, the subcommand named")
    func failureLine() throws {
        let (dir, lvm) = try Self.fakeLVM("echo '  Volume group \"nosuch\" not found' >&2; echo '  Cannot process volume group nosuch' >&2; exit 5")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect {
            try LVM.run(["lvs", "nosuch"], lvm: lvm, timeout: 60)
        } throws: { error in
            "\(error)".contains("lvm lvs: Cannot process volume group nosuch")
        }
    }

    @Test("stdin is /dev/null: an lvm that reads stdin sees its end, never the caller's terminal")
    func stdinClosed() throws {
        let (dir, lvm) = try Self.fakeLVM("readlink /proc/self/fd/0; cat")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try LVM.run(["lvs"], lvm: lvm, timeout: 60) == "/dev/null\n")
    }

    @Test("an lvm that never ends: stopped at the deadline, reaped, the command named")
    func stalledIsKilled() throws {
        let (dir, lvm) = try Self.fakeLVM("echo $$ > \"$(dirname \"$0\")/pid\"; echo '  waiting for udev' >&2; exec sleep 600")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect {
            try LVM.run(["lvcreate", "-s", "vg/vol"], lvm: lvm, timeout: 1)
        } throws: { error in
            let s = "\(error)"
            return s.contains("`lvm lvcreate -s vg/vol` did not finish within 1 s") && s.contains("waiting for udev")
                && s.contains("THIN_BACKUP_LVM_TIMEOUT")
        }
        let pid = try #require(Int32(String(contentsOfFile: dir + "/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        // Reaped: no such process any more (a zombie would still answer kill 0).
        #expect(kill(pid, 0) == -1 && errno == ESRCH)
    }

    @Test("many short lvm runs in a row: every one returns with its own output and status")
    func manyRuns() throws {
        let (dir, lvm) = try Self.fakeLVM("echo \"$1\"; exit $2")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0 ..< 20 {
            let r = try ChildProcess.run(lvm, ["run\(i)", "\(i % 3)"], environment: [:], timeout: 60)
            #expect(r.stdout == Array("run\(i)\n".utf8) && r.status == Int32(i % 3))
        }
    }

    @Test("a program that does not exist: one line naming it")
    func missingProgram() throws {
        #expect {
            try LVM.run(["lvs"], lvm: "/nonexistent/lvm", timeout: 5)
        } throws: { error in
            "\(error)".contains("/nonexistent/lvm")
        }
    }
}
