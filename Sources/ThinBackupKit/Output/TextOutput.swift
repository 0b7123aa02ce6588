#if canImport(Glibc)
import Glibc
#endif

/// Buffered text output for commands: stdout in production, memory in tests.
///
/// Text is appended to a 1 MiB buffer and handed to the destination in large
/// writes, never a system call per line. `discard()` drops what was not yet
/// written, so a command that fails mid-way does not emit the unwritten tail.
public final class TextOutput {
    public enum Destination {
        /// A file descriptor (1 for stdout); written with write(2).
        case fileDescriptor(Int32)
        /// Kept in memory (`captured`), for tests.
        case memory
    }

    public let destination: Destination
    private var buffer: [UInt8] = []
    private let limit: Int
    /// Everything written so far (memory destination only).
    public private(set) var captured: [UInt8] = []

    public init(_ destination: Destination, bufferSize: Int = 1 << 20) {
        self.destination = destination
        limit = bufferSize
        buffer.reserveCapacity(bufferSize + 256)
    }

    /// Standard output.
    public static func standardOutput() -> TextOutput { TextOutput(.fileDescriptor(1)) }
    /// An in-memory output for tests.
    public static func memory() -> TextOutput { TextOutput(.memory) }

    /// The captured text (memory destination), after `flush()`.
    public var text: String { String(decoding: captured, as: UTF8.self) }

    @inline(__always)
    public func append(_ s: StaticString) {
        s.withUTF8Buffer { buffer.append(contentsOf: $0) }
    }

    @inline(__always)
    public func append(_ s: String) {
        var s = s
        s.withUTF8 { buffer.append(contentsOf: $0) }
    }

    @inline(__always)
    public func append(byte: UInt8) { buffer.append(byte) }

    /// Appends `v` in decimal without going through String.
    @inline(__always)
    public func append(decimal v: UInt64) {
        let start = buffer.count
        var x = v
        repeat {
            let q = x / 10
            buffer.append(UInt8(truncatingIfNeeded: x &- q &* 10) &+ 48)
            x = q
        } while x > 0
        buffer.withUnsafeMutableBufferPointer { b in
            var i = start, j = b.count - 1
            while i < j { b.swapAt(i, j); i += 1; j -= 1 }
        }
    }

    /// Writes out the buffer when it is full (call between records).
    @inline(__always)
    public func flushIfFull() throws {
        if buffer.count >= limit { try flush() }
    }

    /// Writes out everything buffered.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        switch destination {
        case .memory:
            captured.append(contentsOf: buffer)
        case let .fileDescriptor(fd):
            try buffer.withUnsafeBytes { try writeAll(fd, $0, name: "output") }
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Drops whatever is buffered and not yet written.
    public func discard() { buffer.removeAll(keepingCapacity: true) }
}

extension TextOutput {
    /// Appends `text` and writes the buffer out when it is full.
    public func write(_ text: String) throws {
        append(text)
        try flushIfFull()
    }
}
