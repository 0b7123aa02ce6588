import Delta
import Foundation

/// Reads a stream file from an offset (a download restarted at a frame boundary); FileSource
/// (FileTransport.swift) reads from the start.
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
