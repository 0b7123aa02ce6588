import PoolCore
#if canImport(Glibc)
import Glibc
#endif

extension JobError {
    /// A failed system call: the call, what it worked on and errno's text.
    static func system(_ call: String, _ what: String, errno e: Int32 = errno) -> JobError {
        JobError("\(call) \(what): \(String(cString: strerror(e)))")
    }
}

/// Writes all of `bytes` to `fd` (short writes continued, EINTR retried by PoolCore's `sysCall`).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, name: @autoclosure () -> String) throws {
    var rest = bytes
    while !rest.isEmpty {
        let n = try sysCall("write", name()) { Glibc.write(fd, rest.baseAddress, rest.count) }
        rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
    }
}
