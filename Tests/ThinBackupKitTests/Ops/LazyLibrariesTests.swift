import Foundation
import Testing
import TestSupport

/// libcurl and libdevmapper are loaded on first use (dlopen in CCurlShim and CDevMapperShim): a
/// command that never talks HTTP or touches a kernel pool does not pay for loading them and the
/// libraries they link at every process start (docs/BENCHMARKS.md, process start).
@Suite("Process start: libcurl and libdevmapper are loaded on first use")
struct LazyLibrariesTests {
    @Test func theBinaryDoesNotLinkThem() throws {
        let r = try Tool.run("ldd", [try ThinBackupBinary.required()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("libc.so.6"), "ldd listed nothing: \(r.stdout)")
        for lib in ["libcurl", "libdevmapper", "libudev", "libselinux"] {
            #expect(!r.stdout.contains(lib), "the binary links \(lib): \(r.stdout)")
        }
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
