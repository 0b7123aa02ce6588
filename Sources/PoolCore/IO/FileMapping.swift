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

    private let page: Int

    /// Maps `length` bytes at `offset` of `fd` (any offset: the mapping starts at the page below);
    /// nil when mmap refuses. `populate`: every page is mapped now (MAP_POPULATE), else as it is
    /// first read (the kernel is asked to read the file ahead).
    init?(fd: Int32, offset: UInt64, length: Int, populate: Bool = true) {
        page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = offset / UInt64(page) * UInt64(page)
        let lead = Int(offset - start)
        let (span, o) = length.addingReportingOverflow(lead)
        guard length > 0, !o, start <= UInt64(Int64.max),
              let p = mmap(nil, span, PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, off_t(start)),
              p != MAP_FAILED else { return nil }
        if !populate { _ = madvise(p, span, MADV_WILLNEED) }
        base = p
        self.length = span
        bytes = UnsafeRawBufferPointer(start: p + lead, count: length)
    }

    /// The rest of the regular file open as `fd`, from `offset` to its end as it is now, mapped page by
    /// page as it is read; nil for anything but a regular file with bytes past `offset`, or when
    /// mmap refuses. The file must not shrink while the mapping lives (see above).
    public static func rest(ofRegularFile fd: Int32, from offset: UInt64) -> FileMapping? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0, UInt64(st.st_size) > offset,
              UInt64(st.st_size) - offset <= UInt64(Int.max) else { return nil }
        return FileMapping(fd: fd, offset: offset, length: Int(UInt64(st.st_size) - offset), populate: false)
    }

    /// Drops the whole pages of `bytes[from..<end]` from this process's memory (the file's pages stay
    /// in the page cache, and are mapped again if read): a reader done with them no longer holds them
    /// resident.
    public func release(from: Int, below end: Int) {
        let lead = bytes.baseAddress! - UnsafeRawPointer(base)
        let clamp = { (x: Int) in lead + min(max(x, 0), self.bytes.count) }
        let lo = (clamp(from) + page - 1) / page * page, hi = clamp(end) / page * page
        guard hi > lo else { return }
        _ = madvise(base + lo, hi - lo, MADV_DONTNEED)
    }

    deinit { munmap(base, length) }
}
