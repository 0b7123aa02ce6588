#if canImport(Glibc)
import Glibc
#endif

/// Large working buffers (a frame pipeline slot's, the replaced blocks'), mapped on their own at a
/// 2 MiB boundary, their whole 2 MiB spans marked for transparent huge pages (`MADV_HUGEPAGE`;
/// honoured when the system's setting is `madvise` or `always`): first touched, a huge page costs
/// one fault instead of 512, and its unmapping one page instead of 512 (page faults and unmapping
/// were a quarter of a small receive's CPU). The part past the last whole 2 MiB keeps small pages,
/// so a frame a few bytes over 4 MiB does not zero a third huge page. Where huge pages are off,
/// it is an ordinary anonymous mapping.
enum PageBuffer {
    static let hugePage = 2 << 20
    static let page = 4096

    /// The mapped size for `count` bytes: whole pages.
    static func mappedSize(_ count: Int) -> Int {
        let n = max(count, 1)
        return (n + page - 1) / page * page
    }

    /// At least `count` bytes, zeroed, 2 MiB aligned; give back with `release`.
    static func allocate(_ count: Int) -> UnsafeMutableRawBufferPointer {
        let size = mappedSize(count)
        let (span, o) = size.addingReportingOverflow(hugePage)
        precondition(!o, "a buffer of \(count) bytes")
        guard let p = mmap(nil, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            fatalError("out of memory: cannot map \(span) bytes")
        }
        // Keep the aligned part; give the rest back.
        let start = UInt(bitPattern: p)
        let aligned = (start + UInt(hugePage) - 1) / UInt(hugePage) * UInt(hugePage)
        let head = Int(aligned - start)
        if head > 0 { munmap(p, head) }
        let tail = span - head - size
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        if tail > 0 { munmap(base + size, tail) }
        let huge = size / hugePage * hugePage
        if huge > 0 { _ = madvise(base, huge, MADV_HUGEPAGE) }
        return UnsafeMutableRawBufferPointer(start: base, count: count)
    }

    static func release(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress else { return }
        munmap(base, mappedSize(buffer.count))
    }
}
