import CSys
import Foundation
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// A program run to its end with a deadline: stdin from /dev/null, stdout and stderr both
/// drained as they come (poll), the child reaped with waitpid. Foundation's `Process` is not
/// used: in the live VM its SIGCHLD-driven monitor lost an `lvm` child's exit (the child a
/// zombie, `waitUntilExit` waiting for ever). A child that outlives its deadline is sent
/// SIGTERM, then SIGKILL, and reported as stalled — never waited on for ever.
struct ChildProcess {
    struct Result {
        var status: Int32
        var stdout: [UInt8]
        var stderr: [UInt8]
        var succeeded: Bool { status == 0 }
        /// stderr's last non-empty line (what a failing tool says last).
        var lastErrorLine: String {
            String(decoding: stderr, as: UTF8.self).split(separator: "\n")
                .last { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? "exit status \(status)"
        }
    }

    /// The child ran past its deadline and was killed.
    struct Stalled: Error {
        var seconds: Double
        var stderr: [UInt8]
    }

    /// Runs `path args…` with `environment`; throws `JobError` when it cannot start and
    /// `Stalled` when it does not end (and close its output) within `timeout` seconds.
    static func run(_ path: String, _ args: [String], environment: [String: String], timeout: Double) throws -> Result {
        let argv = ([path] + args).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in argv + envp { free(p) } }
        var pid: pid_t = 0, outFD: Int32 = -1, errFD: Int32 = -1
        var rc = csys_spawn(path, argv, envp, &pid, &outFD, &errFD)
        // ETXTBSY: a process forked elsewhere in this one (another thread) still shares a
        // descriptor that wrote the program until its own exec closes it; that passes within moments.
        var tries = 0
        while rc == ETXTBSY && tries < 20 {
            usleep(50_000)
            tries += 1
            rc = csys_spawn(path, argv, envp, &pid, &outFD, &errFD)
        }
        guard rc == 0 else { throw JobError.system("cannot run", path, errno: rc) }
        let deadline = monotonic() + timeout
        var out: [UInt8] = [], err: [UInt8] = []
        var open: [(fd: Int32, isOut: Bool)] = [(outFD, true), (errFD, false)]
        defer { for f in open { close(f.fd) } }
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            let left = deadline - monotonic()
            guard left > 0 else { return try stall(pid, timeout, err) }
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = try sysCall("poll", "the output of \(path)") { poll(&fds, nfds_t(fds.count), Int32(min(left, 1.0) * 1000) + 1) }
            for (i, p) in fds.enumerated().reversed() where p.revents != 0 {
                // A read error ends that pipe as its end does (EINTR is retried by sysCall).
                let r = (try? sysCall("read", path) { chunk.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) } }) ?? 0
                if r <= 0 {
                    close(p.fd)
                    open.remove(at: i)
                } else if open[i].isOut {
                    out += chunk[0 ..< r]
                } else {
                    err += chunk[0 ..< r]
                }
            }
        }
        // Output closed: the child is ending; reap it (still within the deadline).
        while true {
            var st: Int32 = 0
            if try sysCall("waitpid", path, { waitpid(pid, &st, WNOHANG) }) == pid { return Result(status: exitStatus(st), stdout: out, stderr: err) }
            if monotonic() >= deadline { return try stall(pid, timeout, err) }
            usleep(2000)
        }
    }

    /// SIGTERM, two seconds' grace, SIGKILL; reaps the child and throws `Stalled`.
    private static func stall(_ pid: pid_t, _ timeout: Double, _ err: [UInt8]) throws -> Result {
        kill(pid, SIGTERM)
        var st: Int32 = 0
        let graceEnd = monotonic() + 2
        while waitpid(pid, &st, WNOHANG) == 0 {
            if monotonic() >= graceEnd {
                kill(pid, SIGKILL)
                _ = try? sysCall("waitpid", "") { waitpid(pid, &st, 0) }
                break
            }
            usleep(10000)
        }
        throw Stalled(seconds: timeout, stderr: err)
    }

    /// The exit status, or 128 + the signal that ended the child.
    private static func exitStatus(_ st: Int32) -> Int32 {
        let sig = st & 0x7f
        return sig == 0 ? (st >> 8) & 0xff : 128 + sig
    }

    private static func monotonic() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
