#if canImport(Glibc)
import Glibc
#endif

/// Runs a system call, retrying on EINTR, and turns -1 into a typed error naming the call and
/// `detail` (what it worked on). The one EINTR loop of the project: ThinBackupKit uses it too.
@inlinable
public func sysCall<T: BinaryInteger>(_ name: String, _ detail: @autoclosure () -> String, _ body: () -> T) throws(MetadataError) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw MetadataError.io(call: name, errno: e, detail: detail())
    }
}
