#if canImport(Glibc)
import Glibc
#endif
internal import CSys
import Foundation

/// A regular file or block device read and written by offset (pread/pwrite).
///
/// This is the only type in PoolCore that holds a file descriptor.
public final class RandomAccessFile: @unchecked Sendable {
    public let path: String
    public let writable: Bool
    private let fd: Int32
    private var closed = false

    /// True when opened with O_DIRECT: block devices are (live devices: the kernel's
    /// dm-thin reads and writes below the page cache, so cached pages can be stale).
    let isDirect: Bool

    /// Opens `path`; `create` makes a new regular file if none exists.
    ///
    /// A block device is opened with O_DIRECT, and for writing also with O_EXCL: the kernel
    /// refuses that while device-mapper (or a mount, or another exclusive opener) holds the
    /// device, and so does this initializer, with `.deviceInUse` naming the holders.
    public convenience init(path: String, writable: Bool, create: Bool = false) throws(MetadataError) {
        try self.init(path: path, writable: writable, create: create, direct: nil)
    }

    /// `direct`: nil opens block devices with O_DIRECT (the default); true forces O_DIRECT
    /// (tests of the aligned path on a regular file).
    init(path: String, writable: Bool, create: Bool, direct: Bool?) throws(MetadataError) {
        self.path = path
        self.writable = writable
        var flags = writable ? O_RDWR : O_RDONLY
        if create { flags |= O_CREAT }
        flags |= O_CLOEXEC
        var st = stat()
        let block = stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFBLK
        if block && writable { flags |= O_EXCL }
        isDirect = direct ?? block
        if isDirect { flags |= csys_O_DIRECT }
        do {
            fd = try sysCall("open", path) { open(path, flags, 0o644) }
        } catch let .io(_, e, _) where block && writable && e == EBUSY {
            throw .deviceInUse(path: path, holders: BlockDeviceHolders.names(of: st.st_rdev))
        }
    }

    deinit { if !closed { _ = Glibc.close(fd) } }

    public func close() {
        if !closed { _ = Glibc.close(fd); closed = true }
    }

    /// Size in bytes: st_size for a regular file, BLKGETSIZE64 for a block device.
    public func size() throws(MetadataError) -> UInt64 {
        var st = stat()
        _ = try sysCall("fstat", path) { fstat(fd, &st) }
        if (st.st_mode & S_IFMT) == S_IFBLK {
            var sz: UInt64 = 0
            _ = try sysCall("ioctl(BLKGETSIZE64)", path) { csys_block_device_size(fd, &sz) }
            return sz
        }
        return UInt64(st.st_size)
    }

    public var isBlockDevice: Bool {
        var st = stat()
        guard fstat(fd, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFBLK
    }

    /// `length` bytes from `offset` of a regular file, mapped read-only (`FileMapping`); nil for a
    /// block device or a file opened O_DIRECT (their reads bypass the page cache), a range that
    /// reaches past the end of the file, or when mmap refuses: read those with pread.
    public func mapForReading(offset: UInt64, length: Int) -> FileMapping? {
        guard !isDirect, length > 0, !closed else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let (end, o) = offset.addingReportingOverflow(UInt64(length))
        guard !o, end <= UInt64(st.st_size) else { return nil }
        return FileMapping(fd: fd, offset: offset, length: length)
    }

    /// The size of a regular file whose allocated storage covers it (st_blocks × 512 ≥ st_size), nil
    /// for a sparse file, a block device or when fstat fails. Such a file has no holes worth asking
    /// for: reading it all costs no more than asking (SEEK_HOLE on tmpfs visits every cached page up
    /// to the next hole, 12 ms for a dense 550 MB file). Blocks a file system counts beyond the data
    /// (xfs preallocation, extent-tree blocks) may hide a small hole: it is read, and reads as zeros.
    public var allocatedSize: UInt64? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size > 0, st.st_blocks >= 0 else { return nil }
        let (allocated, o) = UInt64(st.st_blocks).multipliedReportingOverflow(by: 512)
        return !o && allocated >= UInt64(st.st_size) ? UInt64(st.st_size) : nil
    }

    /// How many whole blocks of `blockSize` bytes from `offset` on (at most `count`, at least 1) are
    /// a hole of a sparse file (`hole`: they read as zeros and hold no storage) or are not (at least
    /// one byte of each is data): SEEK_DATA and SEEK_HOLE, which leave the reads (pread) alone. A
    /// block part hole, part data is data. Where the file system cannot tell, and for a block
    /// device, everything is data; past the end of the file is hole (it reads as zeros).
    ///
    /// `dataUntil` (for data only, when known): every block that starts from `offset` up to this byte
    /// offset holds data, also beyond `count` blocks — the file system's next hole. A caller reading
    /// a dense file chunk by chunk asks once, not once a chunk (SEEK_HOLE on tmpfs walks the page
    /// cache from `offset` to the hole: asked per chunk, a dense file cost time quadratic in its size).
    /// A range that does not fit in a file offset is data, unknown.
    public func extent(at offset: UInt64, blockSize: UInt64, count: UInt64) -> (hole: Bool, blocks: UInt64, dataUntil: UInt64?) {
        precondition(blockSize > 0 && count > 0)
        let (span, o1) = blockSize.multipliedReportingOverflow(by: count)
        let (end, o2) = offset.addingReportingOverflow(span)
        guard !o1, !o2, end <= UInt64(Int64.max) else { return (false, count, nil) }
        /// The first data byte at or after `at`, nil when there is none (ENXIO); `at` itself when unknown.
        func data(_ at: UInt64) -> UInt64? {
            let d = lseek(fd, off_t(at), csys_SEEK_DATA)
            if d < 0 { return errno == ENXIO ? nil : at }
            return UInt64(d)
        }
        guard let first = data(offset) else { return (true, count, nil) }
        if first >= offset + blockSize { return (true, min(count, (min(first, end) - offset) / blockSize), nil) }
        // The first block holds data: the run ends at the first block wholly inside a hole. Every
        // block that starts before the hole found overlaps data (the holes passed were shorter than a block).
        var pos = first
        while true {
            let h = lseek(fd, off_t(pos), csys_SEEK_HOLE)
            if h < 0 { return (false, count, nil) }
            if UInt64(h) >= end { return (false, count, UInt64(h)) }
            let blocks = (UInt64(h) - offset + blockSize - 1) / blockSize
            if blocks >= count { return (false, count, nil) }
            let start = offset + blocks * blockSize
            guard let next = data(start) else { return (false, blocks, nil) }
            if next >= start + blockSize { return (false, blocks, nil) }
            pos = next
        }
    }

    /// Reads exactly `buffer.count` bytes at `offset`; returns how many were read before end of file.
    @discardableResult
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MetadataError) -> Int {
        if isDirect && !DirectIO.aligned(buffer.baseAddress, buffer.count, offset) {
            return try DirectIO.readUnaligned(self, into: buffer, at: offset)
        }
        return try preadFully(into: buffer, at: offset)
    }

    /// pread until `buffer` is full or the end of the file.
    func preadFully(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(MetadataError) -> Int {
        var done = 0
        while done < buffer.count {
            let n = try sysCall("pread", path) {
                pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Buffered writes from several threads take turns here (`writeInTurn`).
    private let turns = NSLock()

    /// `write` for threads that write the same file at once: buffered writes to a file hold its inode
    /// lock in the kernel, where a second writer spins on a core for as long as the first copies; here
    /// it sleeps instead, and the core is free for other work (the writes were one at a time anyway).
    /// O_DIRECT writes do not wait for each other and go straight through.
    public func writeInTurn(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(MetadataError) {
        if isDirect { return try write(buffer, at: offset) }
        turns.lock()
        defer { turns.unlock() }
        try write(buffer, at: offset)
    }

    /// Writes all of `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(MetadataError) {
        if isDirect && !DirectIO.aligned(buffer.baseAddress, buffer.count, offset) {
            return try DirectIO.writeUnaligned(self, buffer, at: offset)
        }
        try pwriteFully(buffer, at: offset)
    }

    func pwriteFully(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(MetadataError) {
        var done = 0
        while done < buffer.count {
            let n = try sysCall("pwrite", path) {
                pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            }
            done += n
        }
    }

    /// Durably stores what was written (fdatasync). `faultStep`: the sync is a numbered
    /// `THIN_BACKUP_FAULT` step (which syncs are steps is behaviour: tests kill and fail at them).
    public func sync(faultStep: Bool = true) throws(MetadataError) {
        if faultStep { try FaultInjection.step(.sync) }
        _ = try sysCall("fdatasync", path) { fdatasync(fd) }
    }

    /// Starts writing the range back to the device without waiting (sync_file_range WRITE), so
    /// that a later `sync` finds it mostly on disk already. Not a durability step: best effort,
    /// errors ignored (a file system or device that cannot do it is flushed by `sync` as before).
    public func startWriteback(offset: UInt64, length: UInt64) {
        _ = csys_start_writeback(fd, off_t(offset), off_t(length))
    }

    /// Grows or shrinks a regular file to `size` bytes.
    public func truncate(to size: UInt64) throws(MetadataError) {
        _ = try sysCall("ftruncate", path) { ftruncate(fd, off_t(size)) }
    }

    /// Drops this file's clean pages from the page cache (posix_fadvise DONTNEED), so the
    /// next reads come from the device. Metadata written by the kernel (dm-bufio) bypasses
    /// the block device's page cache; pages cached by an earlier read would be stale.
    func dropCachedPages() {
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
    }

    /// Takes an advisory lock (flock) without waiting; false when another open file holds
    /// a conflicting one. Released by `close()`.
    public func tryLock(exclusive: Bool) -> Bool {
        flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0
    }

    /// `tryLock`, retried for up to `seconds`. A lock held only for a moment is not taken
    /// for a user: a child this process is spawning (between fork and exec) still shares
    /// every open file, and with it a lock that was just released by `close()`.
    public func tryLock(exclusive: Bool, waitingUpTo seconds: Double) -> Bool {
        let tries = max(1, Int(seconds * 100))
        for i in 0..<tries {
            if tryLock(exclusive: exclusive) { return true }
            if i + 1 < tries { usleep(10_000) }
        }
        return false
    }

    /// Passes a discard down: punches a hole in a regular file, BLKDISCARD on a block device.
    public func discard(offset: UInt64, length: UInt64) throws(MetadataError) {
        if isBlockDevice {
            _ = try sysCall("ioctl(BLKDISCARD)", path) { csys_block_discard(fd, offset, length) }
        } else {
            _ = try sysCall("fallocate(PUNCH_HOLE)", path) { csys_punch_hole(fd, off_t(offset), off_t(length)) }
        }
    }
}
