#if canImport(Glibc)
import Glibc
#endif

extension JobError {
    /// A failed system call: the call, what it worked on and errno's text.
    static func system(_ call: String, _ what: String, errno e: Int32 = errno) -> JobError {
        JobError("\(call) \(what): \(String(cString: strerror(e)))")
    }
}

/// Runs a system call, retrying on EINTR; -1 becomes a `JobError` naming the call and `what`.
/// The one EINTR loop of this module (PoolCore has its own for its files).
@discardableResult
func sysCall<T: BinaryInteger>(_ call: String, _ what: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw JobError.system(call, what(), errno: e)
    }
}

/// Writes all of `bytes` to `fd` (short writes continued, EINTR retried).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, name: @autoclosure () -> String) throws {
    var rest = bytes
    while !rest.isEmpty {
        let n = try sysCall("write", name()) { Glibc.write(fd, rest.baseAddress, rest.count) }
        rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
    }
}
