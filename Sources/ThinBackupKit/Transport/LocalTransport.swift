import Delta
import Foundation

/// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, name: String) throws {
    var rest = bytes
    while !rest.isEmpty {
        let n = Glibc.write(fd, rest.baseAddress, rest.count)
        if n < 0 {
            if errno == EINTR { continue }
            throw TransportError(.local, "write \(name): \(String(cString: strerror(errno)))")
        }
        rest = UnsafeRawBufferPointer(rebasing: rest.dropFirst(n))
    }
}
