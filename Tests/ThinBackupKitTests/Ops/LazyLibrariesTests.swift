import Foundation
import Testing
import TestSupport

/// libcurl and libdevmapper are loaded on first use (dlopen in CCurlShim and CDevMapperShim): a
/// command that never talks HTTP or touches a kernel pool does not pay for loading them and the
/// libraries they link at every process start (docs/BENCHMARKS.md, process start).
@Suite("Process start: libcurl and libdevmapper on first use, libstdc++ static, packed relocations")
struct LazyLibrariesTests {
    @Test func theBinaryDoesNotLinkThem() throws {
        let r = try Tool.run("ldd", [try ThinBackupBinary.required()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("libc.so.6"), "ldd listed nothing: \(r.stdout)")
        for lib in ["libcurl", "libdevmapper", "libudev", "libselinux"] {
            #expect(!r.stdout.contains(lib), "the binary links \(lib): \(r.stdout)")
        }
    }

    /// libstdc++ is linked into the executable (Package.swift's linker script), so the loader neither
    /// maps nor relocates the shared one; zstd, sodium and sqlite3 stay shared (security updates).
    @Test func libstdcxxIsStaticTheOthersShared() throws {
        let r = try Tool.run("readelf", ["-d", try ThinBackupBinary.required()])
        #expect(r.status == 0, "\(r.stderr)")
        let needed = r.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.joined(separator: "\n")
        #expect(needed.contains("[libc.so.6]"), "readelf listed no NEEDED libc: \(r.stdout)")
        #expect(!needed.contains("libstdc++"), "the binary needs the shared libstdc++: \(needed)")
        for lib in ["libzstd.so", "libsodium.so", "libsqlite3.so"] {
            #expect(needed.contains(lib), "\(lib) is no longer shared: \(needed)")
        }
    }

    /// The relative relocations are packed (DT_RELR, `-z pack-relative-relocs`): the loader reads a
    /// few kilobytes of bitmaps at start instead of megabytes of RELA entries.
    @Test func relativeRelocationsArePacked() throws {
        let r = try Tool.run("readelf", ["-d", try ThinBackupBinary.required()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("(RELR)"), "no DT_RELR in the dynamic section: \(r.stdout)")
        #expect(!r.stdout.contains("(RELACOUNT)"), "relative relocations still stored as RELA: \(r.stdout)")
        #expect(r.stdout.contains("Flags: PIE"), "the executable is no longer position-independent: \(r.stdout)")
    }

    /// A kernel-pool command loads libdevmapper when it needs it: its error is libdevmapper's or
    /// the kernel's answer about the device, not a failure to load the library.
    @Test func aKernelPoolCommandLoadsLibdevmapper() throws {
        let r = try ThinBackupBinary.run(["pool", "ls", "--dm-pool", "tb-lazy-no-such-pool"])
        #expect(r.status != 0)
        #expect(r.stderr.hasPrefix("thin-backup: device-mapper info of tb-lazy-no-such-pool") || r.stderr.contains("tb-lazy-no-such-pool"),
                "\(r.stderr)")
        #expect(!r.stderr.contains("cannot load") && !r.stderr.contains("lacks dm_"), "\(r.stderr)")
    }
}
