#if canImport(Glibc)
import Glibc
#endif

/// Part of a regular file mapped read-only and shared: the page cache's own pages, so reading
/// the bytes copies nothing and touches no fresh memory (a pread into a new buffer makes the
/// kernel zero each of its pages first, then copy). Unmapped when released.
///
/// Only for regular files that nobody truncates while the mapping lives (a userspace pool's data
/// file, read under the pool's hold): a page past a shrunken end raises SIGBUS. Block devices are
/// never mapped (live devices are read with O_DIRECT). Immutable once made: any thread may read it.
public final class FileMapping: @unchecked Sendable {
    /// The bytes asked for.
    public let bytes: UnsafeRawBufferPointer
    private let base: UnsafeMutableRawPointer
    private let length: Int

    /// Maps `length` bytes at `offset` of `fd` (any offset: the mapping starts at the page below);
    /// nil when mmap refuses.
    init?(fd: Int32, offset: UInt64, length: Int) {
        let page = UInt64(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / page * page
        let lead = Int(offset - start)
        let (span, o) = length.addingReportingOverflow(lead)
        guard length > 0, !o, start <= UInt64(Int64.max),
              let p = mmap(nil, span, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, off_t(start)), p != MAP_FAILED else { return nil }
        base = p
        self.length = span
        bytes = UnsafeRawBufferPointer(start: p + lead, count: length)
    }

    deinit { munmap(base, length) }
}
