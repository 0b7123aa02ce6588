import Delta
import Foundation
import PoolCore
#if canImport(Glibc)
import Glibc
#endif

/// Writes a stream to a file or to standard output ("-"), buffered in 1 MiB writes.
///
/// A regular file is written as `FILE.partial` and renamed to FILE by `finish()` after an fsync, so an
/// interrupted send never leaves a truncated stream under the final name.
public final class FileSink: ByteSink {
    public let path: String
    private let fd: Int32
    private let partialPath: String?
    private var buffer: [UInt8] = []
    private let capacity = 1 << 20
    private var closed = false
    public private(set) var bytesWritten: UInt64 = 0

    public init(path: String) throws {
        self.path = path
        var st = stat()
        let special = stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG
        if path == "-" {
            fd = 1
            partialPath = nil
        } else if special {
            // A device, FIFO or /dev/null: written in place (never renamed over).
            let f = open(path, O_WRONLY | O_CLOEXEC)
            guard f >= 0 else { throw JobError.system("open", path) }
            fd = f
            partialPath = nil
        } else {
            let p = path + ".partial"
            let f = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard f >= 0 else { throw JobError.system("open", p) }
            fd = f
            partialPath = p
        }
        buffer.reserveCapacity(capacity)
    }

    deinit {
        guard !closed, fd != 1 else { return }
        close(fd)
        if let p = partialPath { unlink(p) }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > capacity { try flush() }
        if bytes.count >= capacity {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ b: UnsafeRawBufferPointer) throws {
        try ThinBackupKit.writeAll(fd, b, name: path == "-" ? "standard output" : path)
        bytesWritten += UInt64(b.count)
    }

    public func finish() throws {
        try flush()
        guard let p = partialPath else {
            if fd != 1 && !closed { close(fd); closed = true }
            return
        }
        try FaultInjection.step(.sync)
        guard fsync(fd) == 0 else { throw JobError.system("fsync", p) }
        close(fd)
        closed = true
        try FaultInjection.step(.rename)
        guard rename(p, path) == 0 else { throw JobError.system("rename to \(path)", p) }
        // The rename is durable before anything that relies on the file (a catalog naming it).
        let dir = (path as NSString).deletingLastPathComponent
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// Reads a stream from a file or from standard input ("-"), from byte `startOffset` on
/// (a download restarted at a frame boundary; files only).
public final class FileSource: ByteSource {
    public let path: String
    private let fd: Int32
    public private(set) var bytesRead: UInt64 = 0
    /// Size of the file when known (not for pipes), for progress.
    public let size: UInt64?
    /// A regular file or block device (it can be read by offset); otherwise read sequentially to its end.
    public let isSeekable: Bool

    public init(path: String, startOffset: UInt64 = 0) throws {
        self.path = path
        if path == "-" {
            fd = 0
        } else {
            let f = open(path, O_RDONLY | O_CLOEXEC)
            guard f >= 0 else { throw JobError.system("open", path) }
            fd = f
            if startOffset > 0, lseek(f, off_t(startOffset), SEEK_SET) < 0 {
                let e = JobError.system("seek to \(startOffset) in", path)
                close(f)
                throw e
            }
        }
        var st = stat()
        let kind = fstat(fd, &st) == 0 ? st.st_mode & S_IFMT : 0
        if kind == S_IFDIR {
            close(fd)
            throw JobError("\(path) is a folder, not a file")
        }
        size = kind == S_IFREG ? UInt64(st.st_size) : nil
        isSeekable = path != "-" && (kind == S_IFREG || kind == S_IFBLK)
    }

    deinit { if fd > 2 { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if mappedAll { return 0 }
        let n = try sysCall("read", path == "-" ? "standard input" : path) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        bytesRead += UInt64(n)
        return n
    }

    /// The rest of the file was handed out mapped (`mapRest`): reads find its end.
    private var mappedAll = false

    /// A regular file's rest, mapped (a receive decodes it where it lies, copying nothing). The file
    /// must not shrink meanwhile: a stream file is written once and then only read.
    public func mapRest() -> FileMapping? {
        guard !mappedAll, path != "-", size != nil else { return nil }
        let at = lseek(fd, 0, SEEK_CUR)
        guard at >= 0, let m = FileMapping.rest(ofRegularFile: fd, from: UInt64(at)) else { return nil }
        mappedAll = true
        bytesRead += UInt64(m.bytes.count)
        return m
    }
}
