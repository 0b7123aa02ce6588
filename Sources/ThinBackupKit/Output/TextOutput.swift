import Foundation

/// Where a command's text output goes: standard output (buffered), or a
/// string in tests.
public protocol TextOutput: AnyObject {
    func write(_ text: String) throws
    /// Writes out anything buffered.
    func flush() throws
}

/// Standard output, written in 64 KiB chunks so that a long listing costs few
/// system calls and a short one is written only when complete.
public final class StandardOutput: TextOutput {
    private var buffer: [UInt8] = []
    private let chunk = 1 << 16

    public init() { buffer.reserveCapacity(chunk + 1024) }

    public func write(_ text: String) throws {
        buffer.append(contentsOf: text.utf8)
        if buffer.count >= chunk { try flush() }
    }

    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try FileHandle.standardOutput.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Collects the output in memory (tests).
public final class StringOutput: TextOutput {
    public private(set) var text = ""
    public init() {}
    public func write(_ text: String) throws { self.text += text }
    public func flush() throws {}
}
