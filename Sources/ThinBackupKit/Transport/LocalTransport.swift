import Delta
import Foundation

/// Writes a stream to a file: into "<path>.partial", renamed over `path` by `finish()` after
/// fsync, so a stream cut short never sits under the final name.
final class FileByteSink: ByteSink {
    private let path: String
    private let temporary: String
    private var fd: Int32
    private var done = false

    init(path: String) throws {
        self.path = path
        temporary = path + ".partial"
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw TransportError(.local, "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
        if !done { unlink(temporary) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        try writeAll(fd, bytes, name: path)
    }

    func finish() throws {
        guard fsync(fd) == 0 else { throw TransportError(.local, "fsync \(temporary): \(String(cString: strerror(errno)))") }
        close(fd)
        fd = -1
        guard rename(temporary, path) == 0 else {
            throw TransportError(.local, "rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
        done = true
    }
}

/// Writes a stream to standard output.
final class StdoutByteSink: ByteSink {
    func write(_ bytes: UnsafeRawBufferPointer) throws { try writeAll(1, bytes, name: "stdout") }
    func finish() throws {}
}

/// Reads a stream from a file descriptor (a file, or stdin), optionally from an offset.
final class FDByteSource: ByteSource {
    private let fd: Int32
    private let owned: Bool
    private let name: String

    init(path: String, startOffset: UInt64 = 0) throws {
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TransportError(.local, "cannot open \(path): \(String(cString: strerror(errno)))") }
        owned = true
        name = path
        if startOffset > 0, lseek(fd, off_t(startOffset), SEEK_SET) < 0 {
            throw TransportError(.local, "cannot seek \(path) to \(startOffset)")
        }
    }

    init(stdin: ()) {
        fd = 0
        owned = false
        name = "stdin"
    }

    deinit { if owned { close(fd) } }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw TransportError(.local, "read \(name): \(String(cString: strerror(errno)))")
        }
    }
}

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
